package controlplane_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/juwan/jwt-secret/internal/controlplane"
)

// toolsDir returns $TOOLS_DIR, which tools/build.sh also reads, or
// <repo>/.tools.
func toolsDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("TOOLS_DIR"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", ".tools"))
	require.NoError(t, err)
	return dir
}

// testLog sends the control plane's progress lines to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestControlPlane(t *testing.T) {
	tools := toolsDir(t)
	if _, err := os.Stat(filepath.Join(tools, "bin", "kube-apiserver")); err != nil {
		t.Skipf("skipping: %s is missing; run tools/build.sh to build the control plane binaries", filepath.Join(tools, "bin", "kube-apiserver"))
	}
	stateDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	begin := time.Now()
	cluster, err := controlplane.Start(ctx, controlplane.Options{ToolsDir: tools, StateDir: stateDir, Log: testLog{t}})
	require.NoError(t, err)
	startDuration := time.Since(begin)
	t.Logf("measured: Start took %.1f s", startDuration.Seconds())
	stopped := false
	t.Cleanup(func() {
		if t.Failed() {
			logTails(t, cluster.LogDir)
		}
		if !stopped {
			assert.NoError(t, cluster.Stop())
		}
	})

	clientset, err := kubernetes.NewForConfig(cluster.RESTConfig)
	require.NoError(t, err)

	t.Run("kubeconfig file works", func(t *testing.T) {
		info, err := os.Stat(cluster.Kubeconfig)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
		version, err := clientset.Discovery().ServerVersion()
		require.NoError(t, err)
		assert.Equal(t, "v1.37.2", version.GitVersion)
	})

	t.Run("second Start on same state folder", func(t *testing.T) {
		_, err := controlplane.Start(ctx, controlplane.Options{ToolsDir: tools, StateDir: stateDir})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "is running from it")
	})

	t.Run("backend Deployments become available", func(t *testing.T) {
		seeded := time.Now()
		require.NoError(t, controlplane.SeedBackend(ctx, cluster.RESTConfig))
		waitCtx, cancelWait := context.WithTimeout(ctx, 60*time.Second)
		defer cancelWait()
		require.NoError(t, controlplane.WaitForDeployments(waitCtx, cluster.RESTConfig, controlplane.BackendNamespace, controlplane.BackendDeployments...))
		t.Logf("measured: Deployments available %.1f s after seeding", time.Since(seeded).Seconds())

		for _, name := range controlplane.BackendDeployments {
			deployment, err := clientset.AppsV1().Deployments(controlplane.BackendNamespace).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Empty(t, deployment.Spec.Template.Spec.ServiceAccountName, "the fixture must leave serviceAccountName to the program under test")
			assert.Contains(t, deployment.Annotations, corev1.LastAppliedConfigAnnotation)
			assert.True(t, hasManager(deployment.ManagedFields, controlplane.ClientSideApplyFieldManager), "managedFields of %s: %+v", name, deployment.ManagedFields)
		}
	})

	t.Run("second seed changes nothing", func(t *testing.T) {
		// managedFields times have a resolution of one second.
		before := resourceVersions(t, clientset)
		time.Sleep(1100 * time.Millisecond)
		require.NoError(t, controlplane.SeedBackend(ctx, cluster.RESTConfig))
		assert.Equal(t, before, resourceVersions(t, clientset))
	})

	t.Run("seed keeps fields of other managers", func(t *testing.T) {
		// This is what the program under test does to user-rpc with
		// server-side apply: set the ServiceAccount and add an env var.
		patch := []byte(`{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": {"name": "user-rpc", "namespace": "juwan"},
			"spec": {"template": {"spec": {
				"serviceAccountName": "default",
				"containers": [{"name": "user-rpc", "env": [{"name": "JWT_SECRET_KEY", "value": "not-a-real-key"}]}]
			}}}
		}`)
		_, err := clientset.AppsV1().Deployments(controlplane.BackendNamespace).Patch(ctx, "user-rpc", types.ApplyPatchType, patch, metav1.PatchOptions{FieldManager: "controlplane-test", Force: ptr(true)})
		require.NoError(t, err)

		require.NoError(t, controlplane.SeedBackend(ctx, cluster.RESTConfig))

		deployment, err := clientset.AppsV1().Deployments(controlplane.BackendNamespace).Get(ctx, "user-rpc", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "default", deployment.Spec.Template.Spec.ServiceAccountName)
		var envNames []string
		for _, env := range deployment.Spec.Template.Spec.Containers[0].Env {
			envNames = append(envNames, env.Name)
		}
		assert.Equal(t, []string{"LOG_LEVEL", "DB_DSN", "POD_NAME", "JWT_SECRET_KEY"}, envNames)
	})

	t.Run("ServiceAccount without binding denied", func(t *testing.T) {
		review := &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   "system:serviceaccount:juwan:default",
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:juwan", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: controlplane.BackendNamespace,
					Verb:      "get",
					Resource:  "secrets",
					Name:      "jwt-secret",
				},
			},
		}
		result, err := clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.False(t, result.Status.Allowed, "status: %+v", result.Status)

		// The same review for a member of system:masters shows that the
		// denial above comes from RBAC and not from a broken review.
		review.Spec.User = "someone"
		review.Spec.Groups = []string{"system:masters"}
		result, err = clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.True(t, result.Status.Allowed, "status: %+v", result.Status)
	})

	t.Run("pod naming missing ServiceAccount rejected", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: controlplane.BackendNamespace},
			Spec: corev1.PodSpec{
				ServiceAccountName: "does-not-exist",
				Containers:         []corev1.Container{{Name: "main", Image: "busybox:1.37"}},
			},
		}
		_, err := clientset.CoreV1().Pods(controlplane.BackendNamespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		require.Error(t, err, "the ServiceAccount admission plugin should reject the pod")
		assert.Contains(t, err.Error(), "does-not-exist")
	})

	const secretValue = "plaintext-signing-key-for-the-test"
	t.Run("Secret encrypted in etcd", func(t *testing.T) {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "jwt-secret", Namespace: controlplane.BackendNamespace},
			StringData: map[string]string{"secret-key": secretValue},
		}
		_, err := clientset.CoreV1().Secrets(controlplane.BackendNamespace).Create(ctx, secret, metav1.CreateOptions{})
		require.NoError(t, err)

		raw, err := controlplane.ReadEtcdValue(ctx, cluster.EtcdURL, "/registry/secrets/juwan/jwt-secret")
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(raw, []byte("k8s:enc:secretbox:v1:")), "raw value starts with %q", raw[:min(len(raw), 40)])
		assert.NotContains(t, string(raw), secretValue)

		_, err = controlplane.ReadEtcdValue(ctx, cluster.EtcdURL, "/registry/secrets/juwan/missing")
		assert.Error(t, err)
	})

	t.Run("audit log records Secret read at Metadata", func(t *testing.T) {
		_, err := clientset.CoreV1().Secrets(controlplane.BackendNamespace).Get(ctx, "jwt-secret", metav1.GetOptions{})
		require.NoError(t, err)

		var found *auditEvent
		deadline := time.Now().Add(10 * time.Second)
		for found == nil && time.Now().Before(deadline) {
			found = findAuditEvent(t, cluster.AuditLogPath, func(event auditEvent) bool {
				return event.Verb == "get" && event.Stage == "ResponseComplete" &&
					event.ObjectRef.Resource == "secrets" && event.ObjectRef.Namespace == "juwan" && event.ObjectRef.Name == "jwt-secret"
			})
			if found == nil {
				time.Sleep(200 * time.Millisecond)
			}
		}
		require.NotNil(t, found, "no audit event for get secrets/jwt-secret in %s", cluster.AuditLogPath)
		assert.Equal(t, "Metadata", found.Level)
		assert.Equal(t, "admin", found.User.Username)

		auditLog, err := os.ReadFile(cluster.AuditLogPath)
		require.NoError(t, err)
		assert.NotContains(t, string(auditLog), secretValue)
		secretEvents := 0
		findAuditEvent(t, cluster.AuditLogPath, func(event auditEvent) bool {
			if event.ObjectRef.Resource == "secrets" {
				secretEvents++
				assert.Equal(t, "Metadata", event.Level, "audit event %s", event.AuditID)
				assert.Nil(t, event.RequestObject, "audit event %s", event.AuditID)
				assert.Nil(t, event.ResponseObject, "audit event %s", event.AuditID)
			}
			return false
		})
		assert.Positive(t, secretEvents)
	})

	t.Run("Stop leaves no process", func(t *testing.T) {
		stopBegin := time.Now()
		require.NoError(t, cluster.Stop())
		stopped = true
		t.Logf("measured: Stop took %.1f s", time.Since(stopBegin).Seconds())

		// Every process of this cluster has stateDir on its command line.
		assert.Empty(t, processesMentioning(t, stateDir))
		_, running, err := controlplane.LockHolder(stateDir)
		require.NoError(t, err)
		assert.False(t, running)
		assert.NoError(t, cluster.Stop(), "a second Stop returns the first result")
	})
}

func ptr[T any](value T) *T {
	return &value
}

func hasManager(entries []metav1.ManagedFieldsEntry, manager string) bool {
	for _, entry := range entries {
		if entry.Manager == manager {
			return true
		}
	}
	return false
}

func managerTime(entries []metav1.ManagedFieldsEntry, manager string) string {
	for _, entry := range entries {
		if entry.Manager == manager && entry.Time != nil {
			return entry.Time.UTC().Format(time.RFC3339)
		}
	}
	return "never"
}

// resourceVersions returns the resourceVersion of every object in the
// backend fixture.
func resourceVersions(t *testing.T, clientset kubernetes.Interface) map[string]string {
	t.Helper()
	ctx := context.Background()
	versions := map[string]string{}
	namespace, err := clientset.CoreV1().Namespaces().Get(ctx, controlplane.BackendNamespace, metav1.GetOptions{})
	require.NoError(t, err)
	versions["namespace"] = namespace.ResourceVersion
	for _, name := range []string{"user-rpc-config", "envoy-gateway-config"} {
		configMap, err := clientset.CoreV1().ConfigMaps(controlplane.BackendNamespace).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		versions["configmap/"+name] = configMap.ResourceVersion
	}
	for _, name := range controlplane.BackendDeployments {
		deployment, err := clientset.AppsV1().Deployments(controlplane.BackendNamespace).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		// A Deployment's status changes while pods settle, which bumps its
		// resourceVersion, so its generation and the time of kubectl's
		// last write are compared instead.
		versions["deployment/"+name] = fmt.Sprintf("generation %d, %s wrote at %s", deployment.Generation, controlplane.ClientSideApplyFieldManager, managerTime(deployment.ManagedFields, controlplane.ClientSideApplyFieldManager))
	}
	return versions
}

// auditEvent contains the fields of an audit.k8s.io/v1 Event that the
// tests read.
type auditEvent struct {
	AuditID   string `json:"auditID"`
	Level     string `json:"level"`
	Stage     string `json:"stage"`
	Verb      string `json:"verb"`
	ObjectRef struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	RequestObject  json.RawMessage `json:"requestObject"`
	ResponseObject json.RawMessage `json:"responseObject"`
}

// findAuditEvent returns the first event in the audit log for which match
// returns true, or nil.
func findAuditEvent(t *testing.T, path string, match func(auditEvent) bool) *auditEvent {
	t.Helper()
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	defer file.Close()
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for scanner.Scan() {
		var event auditEvent
		require.NoError(t, json.Unmarshal(scanner.Bytes(), &event))
		if match(event) {
			return &event
		}
	}
	require.NoError(t, scanner.Err())
	return nil
}

// processesMentioning returns `pgrep -a -f` lines for processes whose
// command line contains text.
func processesMentioning(t *testing.T, text string) []string {
	t.Helper()
	output, err := exec.Command("pgrep", "-a", "-f", text).Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 1 {
		// pgrep exits with 1 when nothing matches.
		return nil
	}
	require.NoError(t, err, "pgrep -a -f %s", text)
	return strings.Split(strings.TrimSpace(string(output)), "\n")
}

// logTails writes the end of every log file in logDir to the test log.
func logTails(t *testing.T, logDir string) {
	entries, err := os.ReadDir(logDir)
	if err != nil {
		t.Logf("unable to list %s: %v", logDir, err)
		return
	}
	for _, entry := range entries {
		data, err := os.ReadFile(filepath.Join(logDir, entry.Name()))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		t.Logf("--- last lines of %s ---\n%s", entry.Name(), strings.Join(lines, "\n"))
	}
}
