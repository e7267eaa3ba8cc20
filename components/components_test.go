package components_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/juwan/jwt-secret/components"
	"github.com/juwan/jwt-secret/internal/mocks"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plain returns the Go value of a property, with secrets unwrapped.
func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsObject():
		m := map[string]any{}
		for k, e := range v.ObjectValue() {
			m[string(k)] = plain(e)
		}
		return m
	case v.IsArray():
		a := []any{}
		for _, e := range v.ArrayValue() {
			a = append(a, plain(e))
		}
		return a
	default:
		return v.Mappable()
	}
}

// field walks a property map along a dotted path.
func field(t *testing.T, m resource.PropertyMap, path string) resource.PropertyValue {
	t.Helper()
	current := resource.NewObjectProperty(m)
	for _, part := range strings.Split(path, ".") {
		if current.IsSecret() {
			current = current.SecretValue().Element
		}
		require.True(t, current.IsObject(), "%s: %q is not an object", path, part)
		next, ok := current.ObjectValue()[resource.PropertyKey(part)]
		require.True(t, ok, "%s: %q is missing", path, part)
		current = next
	}
	return current
}

func runComponents(t *testing.T, program pulumi.RunFunc) *mocks.Engine {
	t.Helper()
	engine, err := mocks.Run(t, "juwan-jwt-secret", "test", nil, nil, program)
	require.NoError(t, err)
	return engine
}

func TestKeyAccessRoleRule(t *testing.T) {
	engine := runComponents(t, func(ctx *pulumi.Context) error {
		_, err := components.NewKeyAccess(ctx, "jwt-access", &components.KeyAccessArgs{
			Namespace: "juwan", SecretName: "jwt-secret", RoleName: "jwt-secret-reader",
			ServiceAccounts: []string{"user-rpc", "envoy-gateway", "user-rpc"},
		})
		return err
	})

	role, ok := engine.Resource("jwt-access-role")
	require.True(t, ok)
	assert.Equal(t, "kubernetes:rbac.authorization.k8s.io/v1:Role", role.Type)
	assert.Equal(t, map[string]any{"pulumi.com/patchForce": "true"}, plain(field(t, role.Inputs, "metadata.annotations")))
	assert.Equal(t, "jwt-secret-reader", plain(field(t, role.Inputs, "metadata.name")))
	assert.Equal(t, "juwan", plain(field(t, role.Inputs, "metadata.namespace")))
	assert.Equal(t, []any{map[string]any{
		"apiGroups":     []any{""},
		"resources":     []any{"secrets"},
		"verbs":         []any{"get"},
		"resourceNames": []any{"jwt-secret"},
	}}, plain(role.Inputs["rules"]))
}

func TestKeyAccessServiceAccountsAndBindings(t *testing.T) {
	var readers *mocks.Captured
	engine := runComponents(t, func(ctx *pulumi.Context) error {
		access, err := components.NewKeyAccess(ctx, "jwt-access", &components.KeyAccessArgs{
			Namespace: "juwan", SecretName: "jwt-secret", RoleName: "jwt-secret-reader",
			ServiceAccounts: []string{"user-rpc", "envoy-gateway", "user-rpc"},
		})
		if err != nil {
			return err
		}
		readers = mocks.Capture(access.Readers)
		return nil
	})

	serviceAccounts := engine.ByType("kubernetes:core/v1:ServiceAccount")
	require.Len(t, serviceAccounts, 2, "a ServiceAccount listed twice is created once")
	for _, name := range []string{"envoy-gateway", "user-rpc"} {
		sa, ok := engine.Resource("jwt-access-sa-" + name)
		require.True(t, ok, name)
		assert.Equal(t, name, plain(field(t, sa.Inputs, "metadata.name")))
		assert.Equal(t, "juwan", plain(field(t, sa.Inputs, "metadata.namespace")))

		binding, ok := engine.Resource("jwt-access-binding-" + name)
		require.True(t, ok, name)
		assert.Equal(t, "jwt-secret-reader-"+name, plain(field(t, binding.Inputs, "metadata.name")))
		assert.Equal(t, "juwan", plain(field(t, binding.Inputs, "metadata.namespace")))
		assert.Equal(t, map[string]any{
			"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "jwt-secret-reader",
		}, plain(binding.Inputs["roleRef"]))
		assert.Equal(t, []any{map[string]any{
			"kind": "ServiceAccount", "name": name, "namespace": "juwan",
		}}, plain(binding.Inputs["subjects"]))
	}
	assert.Len(t, engine.ByType("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"), 2)
	assert.Equal(t, []string{
		"system:serviceaccount:juwan:envoy-gateway",
		"system:serviceaccount:juwan:user-rpc",
	}, readers.Value())
}

func newUserRPCConsumer(ctx *pulumi.Context, generation int) error {
	_, err := components.NewKeyConsumer(ctx, "consumer-user-rpc", &components.KeyConsumerArgs{
		Namespace: "juwan", SecretName: "jwt-secret",
		Deployment: "user-rpc", Container: "user-rpc", ServiceAccount: "user-rpc",
		Env:        &components.EnvBinding{CurrentKeyVar: "JWT_SECRET_KEY", PreviousKeyVar: "JWT_PREVIOUS_SECRET_KEY", NextKeyVar: "JWT_NEXT_SECRET_KEY"},
		Generation: generation,
	})
	return err
}

func TestKeyConsumerEnvFromSecretKeyRef(t *testing.T) {
	engine := runComponents(t, func(ctx *pulumi.Context) error { return newUserRPCConsumer(ctx, 3) })

	patch, ok := engine.Resource("consumer-user-rpc-patch")
	require.True(t, ok)
	assert.Equal(t, "kubernetes:apps/v1:DeploymentPatch", patch.Type)
	assert.Equal(t, "user-rpc", plain(field(t, patch.Inputs, "metadata.name")))
	assert.Equal(t, "juwan", plain(field(t, patch.Inputs, "metadata.namespace")))
	assert.Equal(t, map[string]any{"pulumi.com/patchFieldManager": "juwan-jwt-secret"},
		plain(field(t, patch.Inputs, "metadata.annotations")))
	assert.Equal(t, "user-rpc", plain(field(t, patch.Inputs, "spec.template.spec.serviceAccountName")))

	containers := plain(field(t, patch.Inputs, "spec.template.spec.containers")).([]any)
	require.Len(t, containers, 1)
	container := containers[0].(map[string]any)
	assert.Equal(t, "user-rpc", container["name"])
	assert.Equal(t, []any{
		map[string]any{"name": "JWT_SECRET_KEY", "valueFrom": map[string]any{
			"secretKeyRef": map[string]any{"name": "jwt-secret", "key": "secret-key"}}},
		map[string]any{"name": "JWT_PREVIOUS_SECRET_KEY", "valueFrom": map[string]any{
			"secretKeyRef": map[string]any{"name": "jwt-secret", "key": "previous-secret-key"}}},
		map[string]any{"name": "JWT_NEXT_SECRET_KEY", "valueFrom": map[string]any{
			"secretKeyRef": map[string]any{"name": "jwt-secret", "key": "next-secret-key"}}},
	}, container["env"])
	for _, env := range container["env"].([]any) {
		assert.NotContains(t, env.(map[string]any), "value", "an env var must never carry the key as a literal value")
	}
	assert.NotContains(t, container, "volumeMounts")
	assert.NotContains(t, plain(field(t, patch.Inputs, "spec.template.spec")), "volumes")
}

func TestKeyConsumerReadOnlyVolume(t *testing.T) {
	engine := runComponents(t, func(ctx *pulumi.Context) error {
		_, err := components.NewKeyConsumer(ctx, "consumer-envoy-gateway", &components.KeyConsumerArgs{
			Namespace: "juwan", SecretName: "jwt-secret",
			Deployment: "envoy-gateway", Container: "envoy", ServiceAccount: "envoy-gateway",
			File:       &components.FileBinding{MountPath: "/etc/jwt", Mode: 0o400, VolumeName: "jwt-secret"},
			Generation: 1,
		})
		return err
	})

	patch, ok := engine.Resource("consumer-envoy-gateway-patch")
	require.True(t, ok)
	podSpec := plain(field(t, patch.Inputs, "spec.template.spec")).(map[string]any)
	assert.Equal(t, "envoy-gateway", podSpec["serviceAccountName"])
	assert.Equal(t, []any{map[string]any{
		"name":   "jwt-secret",
		"secret": map[string]any{"secretName": "jwt-secret", "defaultMode": float64(256)},
	}}, podSpec["volumes"])

	container := podSpec["containers"].([]any)[0].(map[string]any)
	assert.Equal(t, "envoy", container["name"])
	assert.Equal(t, []any{map[string]any{"name": "jwt-secret", "mountPath": "/etc/jwt", "readOnly": true}}, container["volumeMounts"])
	assert.NotContains(t, container["volumeMounts"].([]any)[0], "subPath", "a subPath mount never sees rotated files")
	assert.NotContains(t, container, "env")
}

func TestKeyConsumerAnnotationIsGeneration(t *testing.T) {
	annotations := map[int]any{}
	for _, generation := range []int{1, 2} {
		engine := runComponents(t, func(ctx *pulumi.Context) error { return newUserRPCConsumer(ctx, generation) })
		patch, _ := engine.Resource("consumer-user-rpc-patch")
		annotations[generation] = plain(field(t, patch.Inputs, "spec.template.metadata.annotations"))
	}
	assert.Equal(t, map[string]any{"jwt.juwan.io/key-generation": "1"}, annotations[1])
	assert.Equal(t, map[string]any{"jwt.juwan.io/key-generation": "2"}, annotations[2])
}

func TestKeyConsumerNeedsBinding(t *testing.T) {
	_, err := mocks.Run(t, "juwan-jwt-secret", "test", nil, nil, func(ctx *pulumi.Context) error {
		_, err := components.NewKeyConsumer(ctx, "consumer-x", &components.KeyConsumerArgs{
			Namespace: "juwan", SecretName: "jwt-secret", Deployment: "x", Container: "x", ServiceAccount: "x", Generation: 1,
		})
		return err
	})
	assert.ErrorContains(t, err, "unable to patch Deployment juwan/x: it needs an env binding, a file binding or both")
}

// signingKey runs a SigningKey at generation and returns the engine and the
// captured current and previous keys.
func signingKey(t *testing.T, generation int, legacy string) (*mocks.Engine, *mocks.Captured, *mocks.Captured) {
	t.Helper()
	var current, previous *mocks.Captured
	engine := runComponents(t, func(ctx *pulumi.Context) error {
		args := &components.SigningKeyArgs{
			Namespace: "juwan", SecretName: "jwt-secret", SlotLengths: [3]int{64, 64, 64}, Generation: generation,
		}
		if legacy != "" {
			args.LegacyKey = pulumi.ToSecret(pulumi.String(legacy)).(pulumi.StringOutput)
		}
		key, err := components.NewSigningKey(ctx, "jwt-key", args)
		if err != nil {
			return err
		}
		current, previous = mocks.Capture(key.CurrentKey), mocks.Capture(key.PreviousKey)
		return nil
	})
	return engine, current, previous
}

// slotKey returns the key the mock generated for a slot.
func slotKey(t *testing.T, engine *mocks.Engine, slot int) string {
	t.Helper()
	r, ok := engine.Resource("jwt-key-slot-" + string(rune('0'+slot)))
	require.True(t, ok)
	return r.Outputs["result"].SecretValue().Element.StringValue()
}

func TestSigningKeySlots(t *testing.T) {
	engine, _, _ := signingKey(t, 1, "")

	for slot := range components.SlotCount {
		r, ok := engine.Resource("jwt-key-slot-" + string(rune('0'+slot)))
		require.True(t, ok)
		assert.Equal(t, "random:index/randomPassword:RandomPassword", r.Type)
		assert.Equal(t, float64(64), plain(r.Inputs["length"]))
		assert.Equal(t, true, plain(r.Inputs["special"]))
		assert.Equal(t, "-_", plain(r.Inputs["overrideSpecial"]))
		assert.False(t, r.Protect)
		key := slotKey(t, engine, slot)
		assert.Len(t, key, 64)
		assert.Regexp(t, `^[A-Za-z0-9_-]+$`, key)
	}
}

func TestSigningKeyRotationTable(t *testing.T) {
	type state struct {
		keepers                 [3]string
		slotKeys                [3]string
		current, previous, next string
		data                    map[string]any
	}
	states := map[int]state{}
	for _, generation := range []int{1, 2, 3} {
		engine, current, previous := signingKey(t, generation, "")
		var s state
		for slot := range 3 {
			r, _ := engine.Resource("jwt-key-slot-" + string(rune('0'+slot)))
			s.keepers[slot] = plain(field(t, r.Inputs, "keepers.generation")).(string)
			s.slotKeys[slot] = slotKey(t, engine, slot)
		}
		s.current, s.previous = current.Value().(string), previous.Value().(string)
		secret, _ := engine.Resource("jwt-key-secret")
		s.data = plain(secret.Inputs["stringData"]).(map[string]any)
		s.next = s.data["next-secret-key"].(string)
		states[generation] = s
	}

	// Generation 1: slot 1 is current and slot 2 next; there is no older
	// key, so the previous key is the current one.
	assert.Equal(t, [3]string{"0", "1", "2"}, states[1].keepers)
	assert.Equal(t, states[1].slotKeys[1], states[1].current)
	assert.Equal(t, states[1].slotKeys[2], states[1].next)
	assert.Equal(t, states[1].current, states[1].previous)

	// 1 -> 2: only slot 0 is regenerated, now holding generation 3. The old
	// next key becomes current and the old current key previous.
	assert.Equal(t, [3]string{"3", "1", "2"}, states[2].keepers)
	assert.NotEqual(t, states[1].slotKeys[0], states[2].slotKeys[0])
	assert.Equal(t, states[1].slotKeys[1], states[2].slotKeys[1])
	assert.Equal(t, states[1].slotKeys[2], states[2].slotKeys[2])
	assert.Equal(t, states[1].next, states[2].current, "pods that had not restarted already accept the new current key")
	assert.Equal(t, states[1].current, states[2].previous)
	assert.Equal(t, states[2].slotKeys[0], states[2].next)

	// 2 -> 3: only slot 1 is regenerated.
	assert.Equal(t, [3]string{"3", "4", "2"}, states[3].keepers)
	assert.Equal(t, states[2].slotKeys[0], states[3].slotKeys[0])
	assert.NotEqual(t, states[2].slotKeys[1], states[3].slotKeys[1])
	assert.Equal(t, states[2].slotKeys[2], states[3].slotKeys[2])
	assert.Equal(t, states[2].next, states[3].current)
	assert.Equal(t, states[2].current, states[3].previous)

	// The Secret carries exactly the slots' keys.
	for generation, s := range states {
		assert.Equal(t, s.current, s.data["secret-key"], "generation %d", generation)
		assert.Equal(t, s.previous, s.data["previous-secret-key"], "generation %d", generation)
	}

	// The same generation twice yields the same inputs: a second `up` is a no-op.
	again, _, _ := signingKey(t, 2, "")
	for slot := range 3 {
		assert.Equal(t, states[2].slotKeys[slot], slotKey(t, again, slot))
	}
}

func TestSigningKeySecretData(t *testing.T) {
	engine, current, previous := signingKey(t, 2, "")

	secret, ok := engine.Resource("jwt-key-secret")
	require.True(t, ok)
	assert.Equal(t, "kubernetes:core/v1:Secret", secret.Type)
	assert.Equal(t, "jwt-secret", plain(field(t, secret.Inputs, "metadata.name")))
	assert.Equal(t, "juwan", plain(field(t, secret.Inputs, "metadata.namespace")))
	assert.Equal(t, "Opaque", plain(secret.Inputs["type"]))
	assert.Equal(t, map[string]any{"pulumi.com/patchForce": "true"}, plain(field(t, secret.Inputs, "metadata.annotations")),
		"the only annotation takes over a hand-applied Secret; none carries key material")

	// The SDK sends a map whose values are secrets as one secret map.
	stringData := secret.Inputs["stringData"]
	require.True(t, stringData.IsSecret(), "stringData must reach the engine as a Pulumi secret")
	data := stringData.SecretValue().Element.ObjectValue()
	assert.ElementsMatch(t, []resource.PropertyKey{"secret-key", "previous-secret-key", "next-secret-key", "jwks.json"}, data.StableKeys())
	assert.True(t, secret.Outputs["data"].IsSecret(), "the data the API server returns must stay secret")

	var set components.JSONWebKeySet
	require.NoError(t, json.Unmarshal([]byte(plain(data["jwks.json"]).(string)), &set))
	require.Len(t, set.Keys, 3)
	assert.Equal(t, "2", set.Keys[0].KeyID)
	assert.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(current.Value().(string))), set.Keys[0].Key)
	assert.Equal(t, "3", set.Keys[1].KeyID)
	assert.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(plain(data["next-secret-key"]).(string))), set.Keys[1].Key)
	assert.Equal(t, "1", set.Keys[2].KeyID)
	assert.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(previous.Value().(string))), set.Keys[2].Key)
	for _, k := range set.Keys {
		assert.Equal(t, "oct", k.KeyType)
		assert.Equal(t, "HS256", k.Algorithm)
	}

	assert.True(t, current.Secret(), "the current key output must be secret")
	assert.True(t, previous.Secret(), "the previous key output must be secret")
}

func TestSigningKeyFirstGenerationJWKS(t *testing.T) {
	engine, current, _ := signingKey(t, 1, "")
	secret, _ := engine.Resource("jwt-key-secret")

	var set components.JSONWebKeySet
	require.NoError(t, json.Unmarshal([]byte(plain(secret.Inputs["stringData"]).(map[string]any)["jwks.json"].(string)), &set))
	require.Len(t, set.Keys, 2, "generation 1 has the current and the next key")
	assert.Equal(t, "1", set.Keys[0].KeyID)
	assert.Equal(t, "2", set.Keys[1].KeyID)
	assert.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(current.Value().(string))), set.Keys[0].Key)
}

func TestSigningKeyLegacyKeyIsPrevious(t *testing.T) {
	const legacy = "old-key-signed-with-before-migration-0123456789"
	engine, _, previous := signingKey(t, 1, legacy)
	assert.Equal(t, legacy, previous.Value())
	assert.True(t, previous.Secret())

	secret, _ := engine.Resource("jwt-key-secret")
	data := plain(secret.Inputs["stringData"]).(map[string]any)
	assert.Equal(t, legacy, data["previous-secret-key"])
	var set components.JSONWebKeySet
	require.NoError(t, json.Unmarshal([]byte(data["jwks.json"].(string)), &set))
	require.Len(t, set.Keys, 3)
	assert.Equal(t, "legacy", set.Keys[2].KeyID)
	assert.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(legacy)), set.Keys[2].Key)

	// From generation 2 on, the legacy key is gone.
	_, _, previous2 := signingKey(t, 2, legacy)
	assert.NotEqual(t, legacy, previous2.Value())
}

func TestSigningKeyProtect(t *testing.T) {
	engine := runComponents(t, func(ctx *pulumi.Context) error {
		_, err := components.NewSigningKey(ctx, "jwt-key", &components.SigningKeyArgs{
			Namespace: "juwan", SecretName: "jwt-secret", SlotLengths: [3]int{64, 64, 64}, Generation: 1, Protect: true,
		})
		return err
	})
	for _, name := range []string{"jwt-key-slot-0", "jwt-key-slot-1", "jwt-key-slot-2", "jwt-key-secret"} {
		r, ok := engine.Resource(name)
		require.True(t, ok, name)
		assert.True(t, r.Protect, "%s must be protected", name)
	}
}

func TestSigningKeyRejectsGenerationZero(t *testing.T) {
	_, err := mocks.Run(t, "juwan-jwt-secret", "test", nil, nil, func(ctx *pulumi.Context) error {
		_, err := components.NewSigningKey(ctx, "jwt-key", &components.SigningKeyArgs{
			Namespace: "juwan", SecretName: "jwt-secret", SlotLengths: [3]int{64, 64, 64}, Generation: 0,
		})
		return err
	})
	assert.ErrorContains(t, err, "generation 0 is below 1")
}

func TestKeyConsumerOwnsDeprecatedServiceAccount(t *testing.T) {
	engine := runComponents(t, func(ctx *pulumi.Context) error { return newUserRPCConsumer(ctx, 1) })
	patch, _ := engine.Resource("consumer-user-rpc-patch")
	assert.Equal(t, "user-rpc", plain(field(t, patch.Inputs, "spec.template.spec.serviceAccount")),
		"the patch must own the field the API server copies serviceAccountName into")
}

func TestKeyConsumerForceConflictsIsOptIn(t *testing.T) {
	for _, force := range []bool{false, true} {
		engine := runComponents(t, func(ctx *pulumi.Context) error {
			_, err := components.NewKeyConsumer(ctx, "consumer-user-rpc", &components.KeyConsumerArgs{
				Namespace: "juwan", SecretName: "jwt-secret", Deployment: "user-rpc", Container: "user-rpc", ServiceAccount: "user-rpc",
				Env: &components.EnvBinding{CurrentKeyVar: "JWT_SECRET_KEY"}, Generation: 1, ForceConflicts: force,
			})
			return err
		})
		patch, _ := engine.Resource("consumer-user-rpc-patch")
		annotations := plain(field(t, patch.Inputs, "metadata.annotations")).(map[string]any)
		if force {
			assert.Equal(t, "true", annotations["pulumi.com/patchForce"])
		} else {
			assert.NotContains(t, annotations, "pulumi.com/patchForce", "no silent force by default")
		}
	}
}
