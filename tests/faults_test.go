package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/juwan/jwt-secret/components"
	"github.com/juwan/jwt-secret/internal/driver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

func secretExists(t *testing.T) bool {
	t.Helper()
	_, err := cluster.clients.CoreV1().Secrets("juwan").Get(context.Background(), "jwt-secret", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

func TestMissingConsumerDeployment(t *testing.T) {
	resetBackend(t)
	w := newWorkspace(t)
	consumers := `[{"deployment":"user-rpc","container":"user-rpc","env":{"current":"JWT_SECRET_KEY"}},
	               {"deployment":"billing","container":"app","env":{"current":"JWT_SECRET_KEY"}%s}]`
	w.writeStackFile(t, "local", "juwan-jwt-secret:consumers: "+fmt.Sprintf(consumers, ""))
	d := w.open(t, "local", runbookNow)

	_, err := d.Preview(runContext(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "juwan-jwt-secret:consumers[1].deployment: Deployment juwan/billing not found")
	assert.Contains(t, err.Error(), "set optional: true")
	assert.False(t, secretExists(t), "a failed preview changes nothing")

	w.writeStackFile(t, "local", "juwan-jwt-secret:consumers: "+fmt.Sprintf(consumers, `,"optional":true`))
	_, err = d.Preview(runContext(t))
	require.NoError(t, err)
	assert.Contains(t, w.output.String(), "Deployment juwan/billing not found; skipping the optional consumer")
}

// TestUnreachableAPIServer runs against a kubeconfig whose server is a
// closed port on 127.0.0.1, then against the real one.
func TestUnreachableAPIServer(t *testing.T) {
	resetBackend(t)
	closedPort := closedLoopbackPort(t)
	kubeconfig, err := clientcmd.LoadFromFile(cluster.Kubeconfig)
	require.NoError(t, err)
	for _, c := range kubeconfig.Clusters {
		c.Server = fmt.Sprintf("https://127.0.0.1:%d", closedPort)
	}
	broken := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kubeconfig, broken))

	w := newWorkspace(t, "Pulumi.local.yaml")
	d := w.openWith(t, "local", runbookNow, broken)
	_, err = d.Up(runContext(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("127.0.0.1:%d", closedPort), "the error names the cluster")
	assert.Contains(t, err.Error(), "unreachable")
	outputs, err := d.Outputs(runContext(t))
	require.NoError(t, err)
	assert.Empty(t, outputs, "nothing may be reported as deployed")
	assert.False(t, secretExists(t))

	// With the cluster reachable, the next up converges.
	d = w.open(t, "local", runbookNow)
	_, err = d.Up(runContext(t))
	require.NoError(t, err)
	assert.True(t, secretExists(t))
	require.NoError(t, d.Destroy(runContext(t)))
}

func closedLoopbackPort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := listener.Addr().(*net.TCPAddr).Port
	require.NoError(t, listener.Close())
	return port
}

// upUntil runs up and kills the Pulumi CLI with SIGKILL, as a lost machine
// or a CI runner at its time limit would, once stop reports true for an
// engine event. The CLI gets no chance to release its lock or to finish
// the operation in flight.
func upUntil(t *testing.T, d *driver.Driver, stop func(events.EngineEvent) bool) error {
	t.Helper()
	stream := make(chan events.EngineEvent)
	killed := make(chan bool, 1)
	go func() {
		done := false
		for event := range stream {
			if !done && stop(event) {
				done = true
				killed <- killPulumiCLI(t)
			}
		}
	}()
	_, err := d.Up(runContext(t), optup.EventStreams(stream))
	select {
	case ok := <-killed:
		require.True(t, ok, "no Pulumi CLI process to kill")
	default:
		require.Fail(t, "the up finished before the event to kill it at")
	}
	return err
}

// killPulumiCLI sends SIGKILL to the process group of every Pulumi CLI
// that this test process started, which includes its plugins.
func killPulumiCLI(t *testing.T) bool {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	killed := false
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) || !strings.Contains(string(stat), "(pulumi)") {
			continue
		}
		// The Automation API starts the CLI as a process group leader.
		if syscall.Kill(-pid, syscall.SIGKILL) == nil {
			killed = true
		}
	}
	return killed
}

func TestKilledUpRecovers(t *testing.T) {
	resetBackend(t)
	w := newWorkspace(t, "Pulumi.local.yaml")
	d := w.open(t, "local", runbookNow)

	t.Run("kill during the first up", func(t *testing.T) {
		err := upUntil(t, d, func(e events.EngineEvent) bool {
			return e.ResourcePreEvent != nil && e.ResourcePreEvent.Metadata.Type == "kubernetes:core/v1:Secret"
		})
		require.Error(t, err, "the killed up must not report success")

		_, err = d.Up(runContext(t))
		require.Error(t, err, "the lock of the killed run blocks the next one")
		assert.Contains(t, err.Error(), "jwtctl --stack <stack> recover")

		require.NoError(t, d.Recover(runContext(t)))
		_, err = d.Up(runContext(t))
		require.NoError(t, err)
		preview, err := d.Preview(runContext(t), optpreview.ExpectNoChanges())
		require.NoError(t, err)
		assertOnlySame(t, opTypeCounts(preview.ChangeSummary))
		waitRolledOut(t, "user-rpc")
	})

	t.Run("rotation killed half way keeps both keys", func(t *testing.T) {
		waitRolledOut(t, "envoy-gateway")
		before := getSecret(t)
		oldKey := string(before.Data["secret-key"])
		require.NoError(t, d.Stack.SetConfig(runContext(t), "juwan-jwt-secret:keyGeneration", autoValue("2")))

		err := upUntil(t, d, func(e events.EngineEvent) bool {
			return e.ResOutputsEvent != nil && e.ResOutputsEvent.Metadata.Type == "kubernetes:core/v1:Secret"
		})
		require.Error(t, err)

		// The Secret has the new key, and the old one as previous, so pods
		// of either generation verify every live token.
		secret := getSecret(t)
		assert.Equal(t, before.UID, secret.UID)
		assert.Equal(t, oldKey, string(secret.Data["previous-secret-key"]))
		for _, name := range []string{"user-rpc", "envoy-gateway"} {
			assertReferencesExist(t, name, secret)
		}

		require.NoError(t, d.Recover(runContext(t)))
		_, err = d.Up(runContext(t))
		require.NoError(t, err)
		secret = getSecret(t)
		assert.Equal(t, oldKey, string(secret.Data["previous-secret-key"]), "recovery keeps the old key")
		for _, name := range []string{"user-rpc", "envoy-gateway"} {
			deployment := waitRolledOut(t, name)
			assert.Equal(t, "2", deployment.Spec.Template.Annotations[components.GenerationAnnotation])
		}
	})

	require.NoError(t, d.Destroy(runContext(t)))
}

// assertReferencesExist checks that every Secret key the Deployment's pods
// read exists in secret.
func assertReferencesExist(t *testing.T, name string, secret *corev1.Secret) {
	t.Helper()
	spec := getDeployment(t, name).Spec.Template.Spec
	for _, container := range spec.Containers {
		for _, env := range container.Env {
			if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil && env.ValueFrom.SecretKeyRef.Name == secret.Name {
				assert.Contains(t, secret.Data, env.ValueFrom.SecretKeyRef.Key, "%s reads a missing key", name)
			}
		}
	}
	for _, volume := range spec.Volumes {
		if volume.Secret != nil {
			assert.Equal(t, secret.Name, volume.Secret.SecretName, "%s mounts a Secret that does not exist", name)
		}
	}
}

// TestFieldManagerConflict runs up after someone has set a field of the
// patch by hand, as `kubectl edit` does.
func TestFieldManagerConflict(t *testing.T) {
	ctx := runContext(t)
	resetBackend(t)
	deployment := getDeployment(t, "user-rpc")
	deployment.Spec.Template.Spec.ServiceAccountName = "legacy-reader"
	_, err := cluster.clients.AppsV1().Deployments("juwan").Update(ctx, deployment, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)
	t.Cleanup(func() {
		d := getDeployment(t, "user-rpc")
		d.Spec.Template.Spec.ServiceAccountName = ""
		d.Spec.Template.Spec.DeprecatedServiceAccount = ""
		_, err := cluster.clients.AppsV1().Deployments("juwan").Update(context.Background(), d, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
		assert.NoError(t, err)
	})

	w := newWorkspace(t, "Pulumi.local.yaml")
	d := w.open(t, "local", runbookNow)
	_, err = d.Up(runContext(t))
	require.Error(t, err, "a field owned by another manager must not be taken silently")
	message := err.Error()
	assert.Contains(t, message, "kubectl-edit", "the error names the other field manager")
	assert.Contains(t, message, "serviceAccountName", "the error names the field")
	assert.Equal(t, "legacy-reader", getDeployment(t, "user-rpc").Spec.Template.Spec.ServiceAccountName, "no silent force")

	require.NoError(t, d.Destroy(runContext(t)))
}
