package mocks

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Captured is the resolved value of an output, read after the run.
type Captured struct {
	done   chan struct{}
	value  any
	output pulumi.Output
}

// Value returns the resolved value. It waits up to 10 s, because an output
// that depends on no resource may resolve after the run has ended.
func (c *Captured) Value() any {
	select {
	case <-c.done:
		return c.value
	case <-time.After(10 * time.Second):
		return nil
	}
}

// Secret reports whether the output is a Pulumi secret.
func (c *Captured) Secret() bool {
	return pulumi.IsSecret(c.output)
}

// Capture records the value of output once it resolves. Call it inside the
// program, before the run ends.
func Capture(output pulumi.Output) *Captured {
	c := &Captured{output: output, done: make(chan struct{})}
	var once sync.Once
	output.ApplyT(func(v any) any {
		once.Do(func() {
			c.value = v
			close(c.done)
		})
		return v
	})
	return c
}

// Run runs program on a new Engine for project and stack, with config as
// the stack config (full keys) and secretKeys as the keys set with --secret.
func Run(t *testing.T, project, stack string, config map[string]string, secretKeys []string, program pulumi.RunFunc) (*Engine, error) {
	t.Helper()
	return RunOn(t, New(), project, stack, config, secretKeys, program)
}

// RunOn is Run on a given engine, for example one with StackOutputs set.
func RunOn(t *testing.T, engine *Engine, project, stack string, config map[string]string, secretKeys []string, program pulumi.RunFunc) (*Engine, error) {
	t.Helper()
	encodedConfig, err := json.Marshal(config)
	if err != nil {
		t.Fatalf("unable to encode config: %v", err)
	}
	encodedSecretKeys, err := json.Marshal(secretKeys)
	if err != nil {
		t.Fatalf("unable to encode secret keys: %v", err)
	}
	t.Setenv(pulumi.EnvConfig, string(encodedConfig))
	t.Setenv(pulumi.EnvConfigSecretKeys, string(encodedSecretKeys))

	err = pulumi.RunErr(program, pulumi.WithMocks(project, stack, engine))
	return engine, err
}
