package tests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/juwan/jwt-secret/components"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// handAppliedKey is the key of the hand-applied Secret.
const handAppliedKey = "hand-applied-signing-key-0123456789-abcdefghijklmnop"

// TestMigration takes over a setup created with `kubectl apply` without
// invalidating tokens signed with its key.
func TestMigration(t *testing.T) {
	ctx := runContext(t)
	resetBackend(t)
	createHandAppliedSetup(t)
	oldToken := signHS256(t, handAppliedKey, `{"sub":"user-42"}`)

	w := newWorkspace(t, "Pulumi.local.yaml")
	d := w.open(t, "local", runbookNow)

	t.Run("up without migrate is refused", func(t *testing.T) {
		_, err := d.Preview(runContext(t))
		require.Error(t, err, "a first up would replace the hand-applied key")
		assert.Contains(t, err.Error(), "Secret juwan/jwt-secret already exists and was not created by this program")
		assert.Contains(t, err.Error(), "jwtctl --stack local migrate")
		assert.Equal(t, handAppliedKey, string(getSecret(t).Data["secret-key"]))
	})

	t.Run("migrate imports the live key", func(t *testing.T) {
		migration, err := d.Migrate(ctx)
		require.NoError(t, err)
		assert.True(t, migration.Found)
		assert.True(t, migration.ImportedKey)
		assert.True(t, migration.RemovedLastApplied)
		assert.ElementsMatch(t, []string{
			"Secret jwt-secret", "Role jwt-secret-reader",
			"ServiceAccount user-rpc", "RoleBinding jwt-secret-reader-user-rpc",
			"ServiceAccount envoy-gateway", "RoleBinding jwt-secret-reader-envoy-gateway",
		}, migration.Adopted)
		assert.NotContains(t, w.output.String(), handAppliedKey)

		secret := getSecret(t)
		assert.NotContains(t, secret.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
		assert.Equal(t, handAppliedKey, string(secret.Data["secret-key"]), "migrate changes no key")
		stackFile := readFileOrEmpty(t, w.dir+"/Pulumi.local.yaml")
		assert.Contains(t, stackFile, "juwan-jwt-secret:legacyKey")
		assert.NotContains(t, stackFile, handAppliedKey, "the imported key is stored encrypted")
	})

	t.Run("up keeps the old key accepted", func(t *testing.T) {
		_, err := d.Up(runContext(t))
		require.NoError(t, err)

		secret := getSecret(t)
		assert.NotEqual(t, handAppliedKey, string(secret.Data["secret-key"]))
		assert.Equal(t, handAppliedKey, string(secret.Data["previous-secret-key"]))
		assert.True(t, verifyHS256(t, oldToken, []string{string(secret.Data["secret-key"]), string(secret.Data["previous-secret-key"])}),
			"user-rpc's keys must verify a token signed before the migration")

		var set components.JSONWebKeySet
		require.NoError(t, json.Unmarshal(secret.Data["jwks.json"], &set))
		var jwksKeys []string
		kids := []string{}
		for _, k := range set.Keys {
			raw, err := base64.RawURLEncoding.DecodeString(k.Key)
			require.NoError(t, err)
			jwksKeys = append(jwksKeys, string(raw))
			kids = append(kids, k.KeyID)
		}
		assert.Equal(t, []string{"1", "2", "legacy"}, kids)
		assert.True(t, verifyHS256(t, oldToken, jwksKeys), "Envoy's JWKS must verify a token signed before the migration")
		assert.False(t, verifyHS256(t, signHS256(t, "some-other-key-0123456789-0123456789", `{}`), jwksKeys), "the check can fail")

		role, err := cluster.clients.RbacV1().Roles("juwan").Get(ctx, "jwt-secret-reader", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"jwt-secret"}}},
			role.Rules, "the hand-applied list grant is gone")
	})

	t.Run("objects are managed by the stack", func(t *testing.T) {
		state, err := d.CLI(ctx, "stack", "export")
		require.NoError(t, err)
		for _, name := range []string{"jwt-key-secret", "jwt-access-role", "jwt-access-sa-user-rpc", "jwt-access-binding-envoy-gateway"} {
			assert.Contains(t, state, "::"+name+`"`, name)
		}
		preview, err := d.Preview(runContext(t))
		require.NoError(t, err)
		assertOnlySame(t, opTypeCounts(preview.ChangeSummary))
	})

	t.Run("first rotation drops the legacy key", func(t *testing.T) {
		require.NoError(t, d.Stack.SetConfig(ctx, "juwan-jwt-secret:keyGeneration", autoValue("2")))
		_, err := d.Up(runContext(t))
		require.NoError(t, err)
		secret := getSecret(t)
		assert.NotContains(t, string(secret.Data["previous-secret-key"]), handAppliedKey)
		assert.NotContains(t, string(secret.Data["jwks.json"]), base64.RawURLEncoding.EncodeToString([]byte(handAppliedKey)))
		assert.Contains(t, w.output.String(), "legacyKey is ignored")
	})

	require.NoError(t, d.Destroy(runContext(t)))
}

// createHandAppliedSetup creates the old objects as `kubectl apply` does:
// with its field manager and its last-applied-configuration annotation,
// which for the Secret holds the key.
func createHandAppliedSetup(t *testing.T) {
	t.Helper()
	ctx := runContext(t)
	create := metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"}
	lastApplied := func(manifest string) map[string]string {
		return map[string]string{"kubectl.kubernetes.io/last-applied-configuration": manifest}
	}

	secretManifest := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"jwt-secret","namespace":"juwan"},"stringData":{"secret-key":"` + handAppliedKey + `"}}`
	_, err := cluster.clients.CoreV1().Secrets("juwan").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "jwt-secret", Namespace: "juwan", Annotations: lastApplied(secretManifest)},
		Data:       map[string][]byte{"secret-key": []byte(handAppliedKey)},
	}, create)
	require.NoError(t, err)

	for _, name := range []string{"user-rpc", "envoy-gateway"} {
		_, err := cluster.clients.CoreV1().ServiceAccounts("juwan").Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "juwan", Annotations: lastApplied(`{"kind":"ServiceAccount"}`)},
		}, create)
		require.NoError(t, err)
		_, err = cluster.clients.RbacV1().RoleBindings("juwan").Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "jwt-secret-reader-" + name, Namespace: "juwan"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "jwt-secret-reader"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "juwan"}},
		}, create)
		require.NoError(t, err)
	}

	// The old Role was too broad: it allowed listing every Secret.
	_, err = cluster.clients.RbacV1().Roles("juwan").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "jwt-secret-reader", Namespace: "juwan"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}},
	}, create)
	require.NoError(t, err)
}

// signHS256 returns a compact JWS of payload signed with key.
func signHS256(t *testing.T, key, payload string) string {
	t.Helper()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := base64.RawURLEncoding.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(header + "." + body))
	return header + "." + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// verifyHS256 reports whether any of keys verifies token, as a verifier
// that accepts the current and the previous key does.
func verifyHS256(t *testing.T, token string, keys []string) bool {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	for _, key := range keys {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if hmac.Equal(signature, mac.Sum(nil)) {
			return true
		}
	}
	return false
}
