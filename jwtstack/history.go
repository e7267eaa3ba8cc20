package jwtstack

import (
	"fmt"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// deployedStateName is the logical name of the stack's reference to its
// own last deployment.
const deployedStateName = "deployed-state"

// stackReferenceTimeout bounds the read of the last deployment's outputs.
const stackReferenceTimeout = 2 * time.Minute

// DeployedGeneration returns the key generation of the stack's last
// deployment, read from its own outputs through a StackReference, and
// false if the stack has not been deployed yet.
func DeployedGeneration(ctx *pulumi.Context) (int, bool, error) {
	name := fmt.Sprintf("%s/%s/%s", ctx.Organization(), ctx.Project(), ctx.Stack())
	reference, err := pulumi.NewStackReference(ctx, deployedStateName, &pulumi.StackReferenceArgs{Name: pulumi.String(name)})
	if err != nil {
		return 0, false, fmt.Errorf("unable to read the last deployment of stack %s: %w", name, err)
	}

	values := make(chan any, 1)
	reference.GetOutput(pulumi.String("keyGeneration")).ApplyT(func(v any) any {
		values <- v
		return v
	})
	var value any
	select {
	case value = <-values:
	case <-time.After(stackReferenceTimeout):
		return 0, false, fmt.Errorf("unable to read the last deployment of stack %s: timed out after %s", name, stackReferenceTimeout)
	}

	switch v := value.(type) {
	case nil:
		return 0, false, nil
	case float64:
		return int(v), true, nil
	case int:
		return v, true, nil
	case string:
		generation, err := strconv.Atoi(v)
		if err != nil {
			return 0, false, fmt.Errorf("unable to read the last deployment of stack %s: keyGeneration output %q is not an integer", name, v)
		}
		return generation, true, nil
	default:
		return 0, false, fmt.Errorf("unable to read the last deployment of stack %s: keyGeneration output has type %T", name, value)
	}
}

// CheckGenerationStep rejects a generation that does not follow the
// deployed one by zero or one step. Going back, or forward by two or more,
// regenerates the slot that holds the current key, so every token signed
// with it would stop verifying.
func CheckGenerationStep(deployed, configured int) error {
	if configured == deployed || configured == deployed+1 {
		return nil
	}
	reason := fmt.Sprintf("the last deployment is at generation %d, and going back replaces the key that signs live tokens", deployed)
	if configured > deployed {
		reason = fmt.Sprintf("the last deployment is at generation %d, and a jump of more than one replaces both keys, so live tokens stop verifying; to revoke every token, rotate twice in a row instead", deployed)
	}
	return &ConfigError{Problems: []string{fmt.Sprintf("%s: invalid value %q: %s; fix: %s",
		FullKey(KeyKeyGeneration), strconv.Itoa(configured), reason, setCommand(KeyKeyGeneration, strconv.Itoa(deployed+1)))}}
}
