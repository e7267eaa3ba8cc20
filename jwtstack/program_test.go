package jwtstack_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/juwan/jwt-secret/internal/mocks"
	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type stackRun struct {
	engine  *mocks.Engine
	urns    map[string]*mocks.Captured
	outputs map[string]*mocks.Captured
	current *mocks.Captured
	err     error
}

// runStack runs the whole program on mocks with config given by short key.
func runStack(t *testing.T, stackName string, values map[string]string, secretKeys ...string) *stackRun {
	t.Helper()
	config := map[string]string{}
	for k, v := range values {
		config[jwtstack.FullKey(k)] = v
	}
	fullSecretKeys := []string{}
	for _, k := range secretKeys {
		fullSecretKeys = append(fullSecretKeys, jwtstack.FullKey(k))
	}

	run := &stackRun{urns: map[string]*mocks.Captured{}, outputs: map[string]*mocks.Captured{}}
	run.engine, run.err = mocks.Run(t, jwtstack.Project, stackName, config, fullSecretKeys, func(ctx *pulumi.Context) error {
		cfg, _, err := jwtstack.ParseConfig(ctx, ctx.Stack(), today)
		if err != nil {
			return err
		}
		stack, err := jwtstack.NewStack(ctx, cfg, jwtstack.Deployed{})
		if err != nil {
			return err
		}
		run.urns["provider"] = mocks.Capture(stack.Provider.URN())
		run.urns["key"] = mocks.Capture(stack.Key.URN())
		run.urns["slot0"] = mocks.Capture(stack.Key.Slots[0].URN())
		run.urns["secret"] = mocks.Capture(stack.Key.Secret.URN())
		run.urns["access"] = mocks.Capture(stack.Access.URN())
		run.urns["role"] = mocks.Capture(stack.Access.Role.URN())
		if binding, ok := stack.Access.RoleBindings["user-rpc"]; ok {
			run.urns["binding"] = mocks.Capture(binding.URN())
			run.urns["consumer"] = mocks.Capture(stack.Consumers[0].URN())
			run.urns["patch"] = mocks.Capture(stack.Consumers[0].Patch.URN())
		}
		run.current = mocks.Capture(stack.Key.CurrentKey)
		for name, value := range stack.Outputs {
			run.outputs[name] = mocks.Capture(pulumi.ToOutput(value))
		}
		return nil
	})
	return run
}

func TestStackURNsArePinned(t *testing.T) {
	run := runStack(t, "dev", nil)
	require.NoError(t, run.err)

	const prefix = "urn:pulumi:dev::juwan-jwt-secret::"
	want := map[string]string{
		"provider": "pulumi:providers:kubernetes::cluster",
		"key":      "juwan:jwt:SigningKey::jwt-key",
		"slot0":    "juwan:jwt:SigningKey$random:index/randomPassword:RandomPassword::jwt-key-slot-0",
		"secret":   "juwan:jwt:SigningKey$kubernetes:core/v1:Secret::jwt-key-secret",
		"access":   "juwan:jwt:KeyAccess::jwt-access",
		"role":     "juwan:jwt:KeyAccess$kubernetes:rbac.authorization.k8s.io/v1:Role::jwt-access-role",
		"binding":  "juwan:jwt:KeyAccess$kubernetes:rbac.authorization.k8s.io/v1:RoleBinding::jwt-access-binding-user-rpc",
		"consumer": "juwan:jwt:KeyConsumer::consumer-user-rpc",
		"patch":    "juwan:jwt:KeyConsumer$kubernetes:apps/v1:DeploymentPatch::consumer-user-rpc-patch",
	}
	for name, urn := range want {
		assert.Equal(t, prefix+urn, string(run.urns[name].Value().(pulumi.URN)), name)
	}
}

func TestStackProviderOwnsSecretMutability(t *testing.T) {
	run := runStack(t, "dev", nil)
	require.NoError(t, run.err)

	provider, ok := run.engine.Resource("cluster")
	require.True(t, ok)
	assert.Equal(t, "pulumi:providers:kubernetes", provider.Type)
	assert.Equal(t, true, provider.Inputs["enableSecretMutable"].V, "Secrets must be updated in place")
	assert.Equal(t, true, provider.Inputs["enableServerSideApply"].V, "patches need server-side apply")

	for _, name := range run.engine.Names() {
		r, _ := run.engine.Resource(name)
		if strings.HasPrefix(r.Type, "kubernetes:") {
			assert.Contains(t, r.Provider, "::cluster::", "%s must use the program's provider", name)
		}
	}
}

func TestStackRegistersEveryResource(t *testing.T) {
	run := runStack(t, "dev", nil)
	require.NoError(t, run.err)
	assert.Equal(t, []string{
		"cluster",
		"consumer-envoy-gateway", "consumer-envoy-gateway-patch",
		"consumer-user-rpc", "consumer-user-rpc-patch",
		"jwt-access", "jwt-access-binding-envoy-gateway", "jwt-access-binding-user-rpc",
		"jwt-access-role", "jwt-access-sa-envoy-gateway", "jwt-access-sa-user-rpc",
		"jwt-key", "jwt-key-secret", "jwt-key-slot-0", "jwt-key-slot-1", "jwt-key-slot-2",
	}, run.engine.Names())

	// Patches wait for the Secret and the RoleBindings.
	patch, _ := run.engine.Resource("consumer-user-rpc-patch")
	dependencies := strings.Join(patch.DependsOn, " ")
	assert.Contains(t, dependencies, "jwt-key-secret")
	assert.Contains(t, dependencies, "jwt-access-binding-user-rpc")
}

func TestStackOutputsHoldNoKeyMaterial(t *testing.T) {
	run := runStack(t, "dev", map[string]string{"keyGeneration": "3"})
	require.NoError(t, run.err)
	key := run.current.Value().(string)
	require.Len(t, key, 64)

	values := map[string]any{}
	for name, captured := range run.outputs {
		values[name] = captured.Value()
		assert.False(t, captured.Secret(), "output %s names things and needs no secrecy", name)
	}
	encoded, err := json.Marshal(values)
	require.NoError(t, err)
	assert.NotContains(t, string(encoded), key)

	assert.Equal(t, map[string]any{
		"namespace":          "juwan",
		"secretName":         "jwt-secret",
		"secretDataKeys":     []string{"secret-key", "previous-secret-key", "next-secret-key", "jwks.json"},
		"keySlotLengths":     []int{64, 64, 64},
		"keyGeneration":      3,
		"roleName":           "jwt-secret-reader",
		"readers":            []string{"system:serviceaccount:juwan:envoy-gateway", "system:serviceaccount:juwan:user-rpc"},
		"patchedDeployments": []string{"juwan/user-rpc", "juwan/envoy-gateway"},
		"fieldManager":       "juwan-jwt-secret",
	}, values)
}

func TestStackAnnotationsHoldNoKeyMaterial(t *testing.T) {
	run := runStack(t, "dev", map[string]string{"keyGeneration": "7"})
	require.NoError(t, run.err)
	key := run.current.Value().(string)

	for _, name := range []string{"consumer-user-rpc-patch", "consumer-envoy-gateway-patch"} {
		patch, _ := run.engine.Resource(name)
		inputs, err := json.Marshal(patch.Inputs.Mappable())
		require.NoError(t, err)
		assert.NotContains(t, string(inputs), key, name)
		assert.NotContains(t, string(inputs), key[:16], name)
		assert.Contains(t, string(inputs), `"jwt.juwan.io/key-generation":"7"`, name)
	}
}

func TestStackProtectsKeyInProd(t *testing.T) {
	run := runStack(t, "prod", map[string]string{"protect": "true", "maxKeyAgeDays": "90", "keyRotatedAt": "2026-12-01"})
	require.NoError(t, run.err)
	for _, name := range []string{"jwt-key-slot-0", "jwt-key-slot-1", "jwt-key-slot-2", "jwt-key-secret",
		"jwt-access", "jwt-access-role", "jwt-access-sa-user-rpc", "jwt-access-binding-user-rpc",
		"consumer-user-rpc", "consumer-user-rpc-patch", "consumer-envoy-gateway-patch"} {
		r, _ := run.engine.Resource(name)
		assert.True(t, r.Protect, "%s must be protected in prod", name)
	}

	dev := runStack(t, "dev", nil)
	require.NoError(t, dev.err)
	secret, _ := dev.engine.Resource("jwt-key-secret")
	assert.False(t, secret.Protect, "dev keys can be destroyed")
}

func TestStackInvalidConfigRegistersNothing(t *testing.T) {
	run := runStack(t, "dev", map[string]string{"keyLength": "12"})
	require.Error(t, run.err)
	assert.Contains(t, run.err.Error(), `juwan-jwt-secret:keyLength: invalid value "12"`)
	assert.Empty(t, run.engine.Names(), "no resource may be registered before the config is valid")
}

func TestProgramInvalidConfigRegistersNothing(t *testing.T) {
	engine, err := mocks.Run(t, jwtstack.Project, "prod", nil, nil, jwtstack.Program)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "juwan-jwt-secret:protect")
	assert.Empty(t, engine.Names())
}

func TestStackLegacyKeyIsPrevious(t *testing.T) {
	const legacy = "legacy-signing-key-from-the-hand-applied-secret-0123"
	run := runStack(t, "dev", map[string]string{"legacyKey": legacy}, "legacyKey")
	require.NoError(t, run.err)

	secret, _ := run.engine.Resource("jwt-key-secret")
	require.True(t, secret.Inputs["stringData"].IsSecret())
	data := secret.Inputs["stringData"].SecretValue().Element.ObjectValue()
	previous := data["previous-secret-key"]
	if previous.IsSecret() {
		previous = previous.SecretValue().Element
	}
	assert.Equal(t, legacy, previous.StringValue())
}

func TestStackCustomConsumer(t *testing.T) {
	run := runStack(t, "dev", map[string]string{
		"consumers": `[{"deployment":"billing","container":"app","env":{"current":"SIGNING_KEY"}}]`,
	})
	require.NoError(t, run.err)
	_, ok := run.engine.Resource("consumer-billing-patch")
	assert.True(t, ok)
	_, ok = run.engine.Resource("jwt-access-sa-billing")
	assert.True(t, ok)
	_, ok = run.engine.Resource("consumer-user-rpc-patch")
	assert.False(t, ok)
}
