package main

import (
	"context"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packForStack builds the pack the way policyx does on ConfigureStack: from
// a pulumi.Context that carries the stack name and no engine connection.
func packForStack(t *testing.T, stack string) policyx.PolicyPack {
	t.Helper()
	ctx, err := pulumi.NewContext(context.Background(), pulumi.RunInfo{
		Project: "juwan-jwt-secret",
		Stack:   stack,
	})
	require.NoError(t, err)
	pack, err := NewPolicyPack(ctx)
	require.NoError(t, err)
	return pack
}

// resourcePolicies returns the pack's resource policies by name.
func resourcePolicies(t *testing.T, pack policyx.PolicyPack) map[string]policyx.ResourceValidationPolicy {
	t.Helper()
	policies := map[string]policyx.ResourceValidationPolicy{}
	for _, p := range pack.Policies() {
		resourcePolicy, ok := p.(policyx.ResourceValidationPolicy)
		require.True(t, ok, "policy %s is not a resource validation policy", p.Name())
		policies[p.Name()] = resourcePolicy
	}
	return policies
}

func TestPolicyPackMetadata(t *testing.T) {
	pack := packForStack(t, "prod")

	assert.Equal(t, PackName, pack.Name())
	assert.Equal(t, "1.0.0", pack.Version().String())
	var names []string
	for _, p := range pack.Policies() {
		names = append(names, p.Name())
		assert.Equal(t, policyx.EnforcementLevelMandatory, p.EnforcementLevel(), "policy %s", p.Name())
		assert.Contains(t, p.Description(), "Fix: ", "policy %s", p.Name())
		assert.Nil(t, p.ConfigSchema(), "policy %s", p.Name())
	}
	assert.Equal(t, []string{
		"rbac-secret-rules-use-resource-names",
		"rbac-secret-rules-no-list-watch",
		"env-key-material-from-secret",
		"secret-volumes-read-only",
		"secrets-protected-in-production",
	}, names)
}

func TestPolicyPackStackFromContext(t *testing.T) {
	secret := engineResource(t, "kubernetes:core/v1:Secret", "jwt-key-secret", fixture(t, "secret-jwt-secret.json"), false)

	prod := resourcePolicies(t, packForStack(t, "prod"))[ProtectedInProductionPolicy]
	messages := validate(t, prod, secret)
	require.Len(t, messages, 1)
	assert.Contains(t, messages[0], `stack "prod" is a production stack`)

	dev := resourcePolicies(t, packForStack(t, "dev"))[ProtectedInProductionPolicy]
	assert.Empty(t, validate(t, dev, secret))
}

func TestPolicyPackProgramOnProd(t *testing.T) {
	policies := resourcePolicies(t, packForStack(t, "prod"))

	for _, r := range programResources {
		t.Run(r.name, func(t *testing.T) {
			res := engineResource(t, r.typeToken, r.name, fixture(t, r.file), true)
			for name, p := range policies {
				assert.Empty(t, validate(t, p, res), "policy %s", name)
			}
		})
	}
}

func TestPolicyPackProgramOnProdUnprotected(t *testing.T) {
	policies := resourcePolicies(t, packForStack(t, "prod"))

	for _, r := range programResources {
		t.Run(r.name, func(t *testing.T) {
			res := engineResource(t, r.typeToken, r.name, fixture(t, r.file), false)
			for name, p := range policies {
				messages := validate(t, p, res)
				if name == ProtectedInProductionPolicy && r.keyHolding {
					assert.Len(t, messages, 1, "policy %s", name)
					continue
				}
				assert.Empty(t, messages, "policy %s", name)
			}
		})
	}
}

func TestEngineResourceKeepsSecretsAndUnknowns(t *testing.T) {
	secret := engineResource(t, "kubernetes:core/v1:Secret", "jwt-key-secret", fixture(t, "secret-jwt-secret.json"), true)
	stringData := secret.Properties.Get("stringData")
	assert.True(t, stringData.Secret(), "stringData is a secret in the program's Secret")
	assert.True(t, stringData.IsMap())
	assert.True(t, secret.Options.Protect)

	pending := engineResource(t, roleType, "pending", `{"rules": `+unknownJSON+`}`, false)
	assert.True(t, pending.Properties.Get("rules").IsComputed())

	// The program's patches carry defaultMode 0400 as the JSON number 256.
	patch := engineResource(t, deploymentPatchType, "consumer-envoy-gateway-patch",
		fixture(t, "deployment-patch-envoy-gateway.json"), false)
	spec, ok := podSpecOf(patch)
	require.True(t, ok)
	assert.Equal(t, "spec.template.spec", spec.path)
	volumes := elements(field(spec.value, "volumes"))
	require.Len(t, volumes, 1)
	assert.Equal(t, property.New(256.0), field(volumes[0], "secret", "defaultMode"))
}

// TestPulumiPolicyYAML loads the project file the way the CLI does before
// it starts the pack from this folder.
func TestPulumiPolicyYAML(t *testing.T) {
	project, err := workspace.LoadPolicyPack("PulumiPolicy.yaml")
	require.NoError(t, err)
	assert.Equal(t, "go", project.Runtime.Name())
	require.NotNil(t, project.Description)
	assert.Contains(t, *project.Description, "juwan JWT signing key")
}
