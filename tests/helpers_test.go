package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/juwan/jwt-secret/internal/controlplane"
	"github.com/juwan/jwt-secret/internal/driver"
	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// syncBuffer collects engine output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// workspace is a copy of the project files in a temporary folder, so a test
// can change stack config without touching the repository.
type workspace struct {
	dir      string
	stateDir string
	output   *syncBuffer
}

// newWorkspace copies Pulumi.yaml and the named stack files.
func newWorkspace(t *testing.T, stackFiles ...string) *workspace {
	t.Helper()
	w := &workspace{dir: t.TempDir(), stateDir: t.TempDir(), output: &syncBuffer{}}
	for _, name := range append([]string{"Pulumi.yaml"}, stackFiles...) {
		content, err := os.ReadFile(filepath.Join(cluster.repoRoot, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(w.dir, name), content, 0o600))
	}
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "e2e-test-passphrase")
	return w
}

// open opens stack in the workspace on the test cluster, with the
// program's clock set to now.
func (w *workspace) open(t *testing.T, stack string, now time.Time) *driver.Driver {
	t.Helper()
	return w.openWith(t, stack, now, cluster.Kubeconfig)
}

// testWriter streams engine output into the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func runContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stackRunTimeout)
	t.Cleanup(cancel)
	return ctx
}

func getDeployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	deployment, err := cluster.clients.AppsV1().Deployments("juwan").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return deployment
}

func getSecret(t *testing.T) *corev1.Secret {
	t.Helper()
	secret, err := cluster.clients.CoreV1().Secrets("juwan").Get(context.Background(), "jwt-secret", metav1.GetOptions{})
	require.NoError(t, err)
	return secret
}

func findContainer(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	require.Failf(t, "container missing", "no container %q in %v", name, spec.Containers)
	return corev1.Container{}
}

// waitRolledOut waits until the controller has rolled out the Deployment's
// current template to every replica.
func waitRolledOut(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d := getDeployment(t, name)
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		if d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == replicas &&
			d.Status.AvailableReplicas == replicas && d.Status.Replicas == replicas {
			return d
		}
		if time.Now().After(deadline) {
			require.Failf(t, "rollout timed out", "Deployment juwan/%s not rolled out after 2 minutes: %+v", name, d.Status)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// readStackConfig returns the plain values of a stack file's config.
func readStackConfig(path string) (map[string]string, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(content, &file); err != nil {
		return nil, err
	}
	values := map[string]string{}
	for k, v := range file.Config {
		values[k] = fmt.Sprint(v)
	}
	return values, nil
}

func autoValue(value string) auto.ConfigValue {
	return auto.ConfigValue{Value: value}
}

// openWith opens stack with another kubeconfig than the cluster's.
func (w *workspace) openWith(t *testing.T, stack string, now time.Time, kubeconfig string) *driver.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stackRunTimeout)
	defer cancel()
	d, err := driver.Open(ctx, driver.Options{
		RepoRoot:   cluster.repoRoot,
		ToolsDir:   cluster.toolsDir,
		StateDir:   w.stateDir,
		WorkDir:    w.dir,
		Stack:      stack,
		Kubeconfig: kubeconfig,
		Program:    jwtstack.NewProgram(jwtstack.Options{Now: func() time.Time { return now }, Kubeconfig: kubeconfig, ProjectDir: w.dir}),
		Progress:   io.MultiWriter(w.output, testWriter{t}),
	})
	require.NoError(t, err)
	return d
}

// writeStackFile writes the stack file of stack with the given config lines.
func (w *workspace) writeStackFile(t *testing.T, stack string, lines ...string) {
	t.Helper()
	content := "config:\n"
	for _, line := range lines {
		content += "  " + line + "\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(w.dir, "Pulumi."+stack+".yaml"), []byte(content), 0o600))
}

// resetBackend deletes every object the program creates and recreates the
// backend's Deployments from the fixture, so a test starts from the
// cluster a first `up` meets, whatever an earlier test left behind.
func resetBackend(t *testing.T) {
	t.Helper()
	ctx := runContext(t)
	namespace := "juwan"
	background := metav1.DeletePropagationForeground
	remove := metav1.DeleteOptions{PropagationPolicy: &background}
	ignoreMissing := func(err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			require.NoError(t, err)
		}
	}
	if _, err := cluster.clients.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); err == nil {
		ignoreMissing(cluster.clients.CoreV1().Secrets(namespace).Delete(ctx, "jwt-secret", remove))
		ignoreMissing(cluster.clients.RbacV1().Roles(namespace).Delete(ctx, "jwt-secret-reader", remove))
		for _, name := range []string{"user-rpc", "envoy-gateway"} {
			ignoreMissing(cluster.clients.CoreV1().ServiceAccounts(namespace).Delete(ctx, name, remove))
			ignoreMissing(cluster.clients.RbacV1().RoleBindings(namespace).Delete(ctx, "jwt-secret-reader-"+name, remove))
			ignoreMissing(cluster.clients.AppsV1().Deployments(namespace).Delete(ctx, name, remove))
		}
		require.Eventually(t, func() bool {
			list, err := cluster.clients.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
			return err == nil && len(list.Items) == 0
		}, time.Minute, 250*time.Millisecond, "the old Deployments were not deleted")
	}
	require.NoError(t, controlplane.SeedBackend(ctx, cluster.RESTConfig))
	waitRolledOut(t, "user-rpc")
	waitRolledOut(t, "envoy-gateway")
}
