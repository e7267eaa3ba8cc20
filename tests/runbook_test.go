package tests

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/juwan/jwt-secret/components"
	"github.com/juwan/jwt-secret/internal/controlplane"
	"github.com/juwan/jwt-secret/internal/driver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var runbookNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// TestRunbook deploys the local stack, checks what the API server stored,
// rotates the key, checks again, and destroys, in that order.
func TestRunbook(t *testing.T) {
	ctx := runContext(t)
	resetBackend(t)
	before := map[string]*appsv1.Deployment{
		"user-rpc":      waitRolledOut(t, "user-rpc"),
		"envoy-gateway": waitRolledOut(t, "envoy-gateway"),
	}

	w := newWorkspace(t, "Pulumi.local.yaml")
	d := w.open(t, driver.LocalStack, runbookNow)
	var keys struct{ first, second, third string }

	t.Run("up patches fresh Deployments", func(t *testing.T) {
		started := time.Now()
		result, err := d.Up(runContext(t))
		require.NoError(t, err)
		t.Logf("first up took %s", time.Since(started).Round(time.Second))
		assert.Equal(t, "succeeded", result.Summary.Result)

		userRPC := getDeployment(t, "user-rpc")
		spec := userRPC.Spec.Template.Spec
		assert.Equal(t, "user-rpc", spec.ServiceAccountName)
		assert.Equal(t, "1", userRPC.Spec.Template.Annotations[components.GenerationAnnotation])
		container := findContainer(t, spec, "user-rpc")
		assert.Contains(t, container.Env, corev1.EnvVar{Name: "JWT_SECRET_KEY", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "jwt-secret"}, Key: "secret-key"}}})
		assert.Contains(t, container.Env, corev1.EnvVar{Name: "JWT_PREVIOUS_SECRET_KEY", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "jwt-secret"}, Key: "previous-secret-key"}}})
		assert.Contains(t, container.Env, corev1.EnvVar{Name: "JWT_NEXT_SECRET_KEY", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "jwt-secret"}, Key: "next-secret-key"}}})

		envoy := getDeployment(t, "envoy-gateway")
		envoySpec := envoy.Spec.Template.Spec
		assert.Equal(t, "envoy-gateway", envoySpec.ServiceAccountName)
		assert.Equal(t, "1", envoy.Spec.Template.Annotations[components.GenerationAnnotation])
		var volume *corev1.Volume
		for i := range envoySpec.Volumes {
			if envoySpec.Volumes[i].Name == "jwt-secret" {
				volume = &envoySpec.Volumes[i]
			}
		}
		require.NotNil(t, volume, "the jwt-secret volume is missing")
		require.NotNil(t, volume.Secret)
		assert.Equal(t, "jwt-secret", volume.Secret.SecretName)
		require.NotNil(t, volume.Secret.DefaultMode)
		assert.Equal(t, int32(256), *volume.Secret.DefaultMode, "mode 0400")
		mount := findMount(t, findContainer(t, envoySpec, "envoy"), "/etc/jwt")
		assert.True(t, mount.ReadOnly)
		assert.Empty(t, mount.SubPath)
		assert.Equal(t, "jwt-secret", mount.Name)

		// Nothing the backend's manifest set is lost or doubled.
		for name, old := range before {
			now := getDeployment(t, name)
			assertKeepsEverything(t, old.Spec.Template.Spec, now.Spec.Template.Spec)
		}

		// The patches waited for the rollout; the controller agrees.
		waitRolledOut(t, "user-rpc")
		waitRolledOut(t, "envoy-gateway")

		secret := getSecret(t)
		keys.first = string(secret.Data["secret-key"])
		require.Len(t, keys.first, 64)
		assert.Equal(t, keys.first, string(secret.Data["previous-secret-key"]), "generation 1 has no older key")
	})

	t.Run("access review allows only get on the Secret", func(t *testing.T) {
		for _, user := range []string{"user-rpc", "envoy-gateway"} {
			allowed, err := driver.AllowedVerbs(ctx, cluster.clients, components.ServiceAccountUser("juwan", user), "juwan", "jwt-secret")
			require.NoError(t, err)
			assert.Equal(t, []string{"get"}, allowed, user)

			other, err := driver.AllowedVerbs(ctx, cluster.clients, components.ServiceAccountUser("juwan", user), "juwan", "db-credentials")
			require.NoError(t, err)
			assert.Empty(t, other, "%s must not read another Secret", user)
		}
		for _, user := range []string{"default", "billing"} {
			allowed, err := driver.AllowedVerbs(ctx, cluster.clients, components.ServiceAccountUser("juwan", user), "juwan", "jwt-secret")
			require.NoError(t, err)
			assert.Empty(t, allowed, "ServiceAccount %s must not read the key", user)
		}
	})

	t.Run("second up and preview change nothing", func(t *testing.T) {
		result, err := d.Up(runContext(t))
		require.NoError(t, err)
		assertOnlySame(t, result.Summary.ResourceChanges)

		preview, err := d.Preview(runContext(t), optpreview.ExpectNoChanges())
		require.NoError(t, err)
		assertOnlySame(t, opTypeCounts(preview.ChangeSummary))
	})

	t.Run("rotation keeps the old key and rolls every consumer", func(t *testing.T) {
		secretBefore := getSecret(t)
		nextBefore := string(secretBefore.Data["next-secret-key"])
		require.Len(t, nextBefore, 64)
		replicaSetsBefore := map[string]string{
			"user-rpc":      currentReplicaSet(t, "user-rpc"),
			"envoy-gateway": currentReplicaSet(t, "envoy-gateway"),
		}

		require.NoError(t, d.Stack.SetConfig(ctx, "juwan-jwt-secret:keyGeneration", auto.ConfigValue{Value: "2"}))
		started := time.Now()
		_, err := d.Up(runContext(t))
		require.NoError(t, err)
		t.Logf("rotation up took %s", time.Since(started).Round(time.Second))

		secret := getSecret(t)
		assert.Equal(t, secretBefore.UID, secret.UID, "the Secret is updated in place")
		keys.second = string(secret.Data["secret-key"])
		assert.NotEqual(t, keys.first, keys.second)
		assert.Equal(t, keys.first, string(secret.Data["previous-secret-key"]), "the old current key is now the previous key")
		assert.Equal(t, nextBefore, keys.second,
			"the new current key was the next key, so pods that have not restarted yet accept tokens from pods that have")
		keys.third = string(secret.Data["next-secret-key"])
		assert.NotContains(t, []string{keys.first, keys.second}, keys.third)

		var set components.JSONWebKeySet
		require.NoError(t, json.Unmarshal(secret.Data["jwks.json"], &set))
		require.Len(t, set.Keys, 3)
		assert.Equal(t, "2", set.Keys[0].KeyID)
		assert.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(keys.second)), set.Keys[0].Key)
		assert.Equal(t, "3", set.Keys[1].KeyID)
		assert.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(keys.third)), set.Keys[1].Key)
		assert.Equal(t, "1", set.Keys[2].KeyID)
		assert.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(keys.first)), set.Keys[2].Key)

		for name, oldReplicaSet := range replicaSetsBefore {
			deployment := waitRolledOut(t, name)
			assert.Equal(t, "2", deployment.Spec.Template.Annotations[components.GenerationAnnotation], name)
			assert.NotEqual(t, oldReplicaSet, currentReplicaSet(t, name), "%s must roll a new ReplicaSet", name)
		}
	})

	t.Run("a generation jump or step back fails preview", func(t *testing.T) {
		before := clusterSnapshot(t)
		for _, generation := range []string{"4", "1"} {
			require.NoError(t, d.Stack.SetConfig(ctx, "juwan-jwt-secret:keyGeneration", auto.ConfigValue{Value: generation}))
			_, err := d.Preview(runContext(t))
			require.Error(t, err, "generation %s", generation)
			assert.Contains(t, err.Error(), `juwan-jwt-secret:keyGeneration: invalid value "`+generation+`": the last deployment is at generation 2`)
			assert.Contains(t, err.Error(), "fix: pulumi config set juwan-jwt-secret:keyGeneration 3 --stack local")
		}
		require.NoError(t, d.Stack.SetConfig(ctx, "juwan-jwt-secret:keyGeneration", auto.ConfigValue{Value: "2"}))
		assert.Equal(t, before, clusterSnapshot(t), "a rejected preview changes nothing")
	})

	t.Run("audit log records the ServiceAccount's get", func(t *testing.T) {
		config := rest.CopyConfig(cluster.RESTConfig)
		config.Impersonate = rest.ImpersonationConfig{
			UserName: components.ServiceAccountUser("juwan", "user-rpc"),
			Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:juwan", "system:authenticated"},
		}
		asUserRPC, err := kubernetes.NewForConfig(config)
		require.NoError(t, err)
		_, err = asUserRPC.CoreV1().Secrets("juwan").Get(ctx, "jwt-secret", metav1.GetOptions{})
		require.NoError(t, err, "user-rpc must be able to get the key")
		_, err = asUserRPC.CoreV1().Secrets("juwan").List(ctx, metav1.ListOptions{})
		assert.True(t, apierrors.IsForbidden(err), "user-rpc must not list Secrets: %v", err)

		require.Eventually(t, func() bool {
			return auditLogHas(t, "get", components.ServiceAccountUser("juwan", "user-rpc"))
		}, 15*time.Second, 250*time.Millisecond, "no audit event for user-rpc's get of jwt-secret")
	})

	t.Run("the key appears nowhere in plaintext", func(t *testing.T) {
		require.NotEmpty(t, keys.third)
		secrets := []string{keys.first, keys.second, keys.third}

		outputs, err := d.Outputs(ctx)
		require.NoError(t, err)
		encodedOutputs, err := json.Marshal(outputs)
		require.NoError(t, err)

		// The Automation API's export decrypts secrets, so read what the
		// CLI exports and what the backend stores on disk.
		exported, err := d.CLI(ctx, "stack", "export")
		require.NoError(t, err)
		stored := readBackendFiles(t, w.stateDir)

		var annotations []string
		for _, name := range []string{"user-rpc", "envoy-gateway"} {
			deployment := getDeployment(t, name)
			encoded, err := json.Marshal([]any{deployment.Annotations, deployment.Spec.Template.Annotations, deployment.Spec.Template.Spec})
			require.NoError(t, err)
			annotations = append(annotations, string(encoded))
		}
		secretAnnotations, err := json.Marshal(getSecret(t).ObjectMeta)
		require.NoError(t, err)

		auditLog, err := os.ReadFile(cluster.AuditLogPath)
		require.NoError(t, err)

		places := map[string]string{
			"engine output":              w.output.String(),
			"stack outputs":              string(encodedOutputs),
			"stack export":               exported,
			"backend files":              stored,
			"Deployments":                strings.Join(annotations, "\n"),
			"Secret metadata":            string(secretAnnotations),
			"audit log":                  string(auditLog),
			"stack file in the work dir": readFileOrEmpty(t, w.dir+"/Pulumi.local.yaml"),
		}
		for place, text := range places {
			require.NotEmpty(t, text, place)
			for _, key := range secrets {
				assert.False(t, strings.Contains(text, key), "the key leaks into the %s", place)
				assert.False(t, strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(key))), "the base64 key leaks into the %s", place)
				assert.False(t, strings.Contains(text, base64.RawURLEncoding.EncodeToString([]byte(key))), "the JWKS form of the key leaks into the %s", place)
			}
		}
	})

	t.Run("Secret is encrypted at rest in etcd", func(t *testing.T) {
		raw, err := controlplane.ReadEtcdValue(ctx, cluster.EtcdURL, "/registry/secrets/juwan/jwt-secret")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(raw), "k8s:enc:secretbox:v1:"), "raw etcd value starts with %q", string(raw[:min(len(raw), 24)]))
		for _, key := range []string{keys.first, keys.second} {
			assert.False(t, strings.Contains(string(raw), key), "the raw etcd value contains the key")
		}
	})

	t.Run("destroy leaves the Deployments without the project's fields", func(t *testing.T) {
		require.NoError(t, d.Destroy(runContext(t)))

		_, err := cluster.clients.CoreV1().Secrets("juwan").Get(ctx, "jwt-secret", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the Secret is deleted: %v", err)
		_, err = cluster.clients.RbacV1().Roles("juwan").Get(ctx, "jwt-secret-reader", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the Role is deleted: %v", err)

		for name, old := range before {
			deployment := getDeployment(t, name)
			spec := deployment.Spec.Template.Spec
			assert.NotContains(t, deployment.Spec.Template.Annotations, components.GenerationAnnotation, name)
			assert.NotEqual(t, name, spec.ServiceAccountName, "%s must not point at a deleted ServiceAccount", name)
			assert.NotEqual(t, name, spec.DeprecatedServiceAccount, "%s must not point at a deleted ServiceAccount", name)
			for _, volume := range spec.Volumes {
				assert.False(t, volume.Secret != nil && volume.Secret.SecretName == "jwt-secret", "%s still mounts the deleted Secret", name)
			}
			for _, container := range spec.Containers {
				for _, env := range container.Env {
					assert.False(t, env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil && env.ValueFrom.SecretKeyRef.Name == "jwt-secret",
						"%s/%s still reads env %s from the deleted Secret", name, container.Name, env.Name)
				}
			}
			assertKeepsEverything(t, old.Spec.Template.Spec, spec)
			waitRolledOut(t, name)
		}
	})
}

func findMount(t *testing.T, container corev1.Container, path string) corev1.VolumeMount {
	t.Helper()
	for _, m := range container.VolumeMounts {
		if m.MountPath == path {
			return m
		}
	}
	require.Failf(t, "mount missing", "no mount at %s in container %s", path, container.Name)
	return corev1.VolumeMount{}
}

// assertKeepsEverything checks that every container, env var, mount and
// volume of old is still in now, exactly once and unchanged.
func assertKeepsEverything(t *testing.T, old, now corev1.PodSpec) {
	t.Helper()
	assert.Equal(t, containerNames(old), containerNames(now), "containers")
	for _, oldContainer := range old.Containers {
		container := findContainer(t, now, oldContainer.Name)
		assert.Equal(t, oldContainer.Image, container.Image)
		assert.Equal(t, oldContainer.Ports, container.Ports)
		for _, env := range oldContainer.Env {
			assert.Equal(t, 1, countEnv(container.Env, env.Name), "env %s of %s", env.Name, container.Name)
			assert.Contains(t, container.Env, env)
		}
		for _, mount := range oldContainer.VolumeMounts {
			assert.Contains(t, container.VolumeMounts, mount)
		}
		assertUnique(t, container.Env, func(e corev1.EnvVar) string { return e.Name })
		assertUnique(t, container.VolumeMounts, func(m corev1.VolumeMount) string { return m.MountPath })
	}
	for _, volume := range old.Volumes {
		assert.Contains(t, now.Volumes, volume)
	}
	assertUnique(t, now.Volumes, func(v corev1.Volume) string { return v.Name })
}

func containerNames(spec corev1.PodSpec) []string {
	var names []string
	for _, c := range spec.Containers {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

func countEnv(env []corev1.EnvVar, name string) int {
	count := 0
	for _, e := range env {
		if e.Name == name {
			count++
		}
	}
	return count
}

func assertUnique[T any](t *testing.T, items []T, key func(T) string) {
	t.Helper()
	seen := map[string]bool{}
	for _, item := range items {
		k := key(item)
		assert.False(t, seen[k], "%q appears twice", k)
		seen[k] = true
	}
}

func assertOnlySame(t *testing.T, changes *map[string]int) {
	t.Helper()
	require.NotNil(t, changes)
	for op, count := range *changes {
		// "read" is the program's StackReference to its own last
		// deployment: it reads state and changes nothing.
		assert.Contains(t, []string{"same", "read"}, op, "%d resources would %s", count, op)
	}
}

func opTypeCounts(summary map[apitype.OpType]int) *map[string]int {
	counts := map[string]int{}
	for op, count := range summary {
		counts[string(op)] = count
	}
	return &counts
}

// currentReplicaSet returns the ReplicaSet of the Deployment's current
// revision.
func currentReplicaSet(t *testing.T, name string) string {
	t.Helper()
	deployment := getDeployment(t, name)
	revision := deployment.Annotations["deployment.kubernetes.io/revision"]
	replicaSets, err := cluster.clients.AppsV1().ReplicaSets("juwan").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, rs := range replicaSets.Items {
		for _, owner := range rs.OwnerReferences {
			if owner.UID == deployment.UID && rs.Annotations["deployment.kubernetes.io/revision"] == revision {
				return rs.Name
			}
		}
	}
	require.Failf(t, "no current ReplicaSet", "Deployment %s revision %s", name, revision)
	return ""
}

// auditLogHas reports whether the audit log has a completed event of verb
// on the Secret jwt-secret by user (also as an impersonated user).
func auditLogHas(t *testing.T, verb, user string) bool {
	t.Helper()
	file, err := os.Open(cluster.AuditLogPath)
	require.NoError(t, err)
	defer file.Close()

	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		var event struct {
			Stage            string                     `json:"stage"`
			Level            string                     `json:"level"`
			Verb             string                     `json:"verb"`
			User             struct{ Username string }  `json:"user"`
			ImpersonatedUser *struct{ Username string } `json:"impersonatedUser"`
			ObjectRef        *struct {
				Resource, Namespace, Name string
			} `json:"objectRef"`
		}
		if json.Unmarshal(scanner.Bytes(), &event) != nil || event.ObjectRef == nil {
			continue
		}
		actor := event.User.Username
		if event.ImpersonatedUser != nil {
			actor = event.ImpersonatedUser.Username
		}
		if event.Verb == verb && actor == user && event.ObjectRef.Resource == "secrets" &&
			event.ObjectRef.Namespace == "juwan" && event.ObjectRef.Name == "jwt-secret" {
			assert.Equal(t, "Metadata", event.Level, "Secret access is logged at Metadata level, without bodies")
			return true
		}
	}
	return false
}

// readBackendFiles returns the content of every file of the file backend.
func readBackendFiles(t *testing.T, stateDir string) string {
	t.Helper()
	var all strings.Builder
	err := filepath.WalkDir(filepath.Join(stateDir, "backend"), func(path string, entry fs.DirEntry, err error) error {
		if err != nil || entry.IsDir() {
			return err
		}
		content, err := os.ReadFile(path)
		all.Write(content)
		return err
	})
	require.NoError(t, err)
	return all.String()
}

func readFileOrEmpty(t *testing.T, path string) string {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		return "(missing)"
	}
	return string(content)
}
