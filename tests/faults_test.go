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
	"time"

	"github.com/juwan/jwt-secret/components"
	"github.com/juwan/jwt-secret/internal/driver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// upKilledWhen runs up and kills the Pulumi CLI with SIGKILL, as a lost
// machine or a CI runner at its time limit would, once ready reports true.
// The CLI gets no chance to release its lock or to finish the operation in
// flight.
func upKilledWhen(t *testing.T, d *driver.Driver, ready func() bool) error {
	t.Helper()
	killed := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				killed <- false
				return
			case <-time.After(100 * time.Millisecond):
			}
			if ready() {
				killed <- killPulumiCLI(t)
				return
			}
		}
	}()
	_, err := d.Up(runContext(t))
	close(done)
	require.True(t, <-killed, "the up finished before it could be killed")
	return err
}

// pauseRollouts pauses the Deployments, so a patch waits for a rollout
// that does not happen and the up is still running when it is killed.
func pauseRollouts(t *testing.T, paused bool, names ...string) {
	t.Helper()
	for _, name := range names {
		patch := []byte(fmt.Sprintf(`{"spec":{"paused":%t}}`, paused))
		_, err := cluster.clients.AppsV1().Deployments("juwan").Patch(context.Background(), name, types.MergePatchType, patch,
			metav1.PatchOptions{FieldManager: "rollout-pauser"})
		require.NoError(t, err)
	}
}

// templateGeneration returns the key generation in the Deployment's pod
// template, or "" if it is not patched.
func templateGeneration(t *testing.T, name string) string {
	t.Helper()
	return getDeployment(t, name).Spec.Template.Annotations[components.GenerationAnnotation]
}

// killPulumiCLI sends SIGKILL to every Pulumi CLI that this test process
// started and to the CLI's own children, its plugins.
func killPulumiCLI(t *testing.T) bool {
	t.Helper()
	clis := childProcesses(t, os.Getpid(), "pulumi")
	for _, cli := range clis {
		for _, plugin := range childProcesses(t, cli, "") {
			_ = syscall.Kill(plugin, syscall.SIGKILL)
		}
		_ = syscall.Kill(cli, syscall.SIGKILL)
	}
	return len(clis) > 0
}

// childProcesses returns the pids of parent's children whose command name
// is name, or of all its children if name is empty.
func childProcesses(t *testing.T, parent int, name string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses; the parent pid is the second
		// field after it.
		text := string(stat)
		open, end := strings.IndexByte(text, '('), strings.LastIndexByte(text, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(text[end+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		if name == "" || text[open+1:end] == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestKilledUpRecovers(t *testing.T) {
	resetBackend(t)
	w := newWorkspace(t, "Pulumi.local.yaml")
	d := w.open(t, "local", runbookNow)

	t.Run("kill during the first up", func(t *testing.T) {
		pauseRollouts(t, true, "user-rpc")
		err := upKilledWhen(t, d, func() bool { return templateGeneration(t, "user-rpc") == "1" })
		require.Error(t, err, "the killed up must not report success")
		pauseRollouts(t, false, "user-rpc")

		_, err = d.Up(runContext(t))
		require.Error(t, err, "the lock of the killed run blocks the next one")
		assert.Contains(t, err.Error(), "jwtctl --stack local recover")

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

		pauseRollouts(t, true, "user-rpc", "envoy-gateway")
		err := upKilledWhen(t, d, func() bool { return templateGeneration(t, "user-rpc") == "2" })
		require.Error(t, err)
		pauseRollouts(t, false, "user-rpc", "envoy-gateway")

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

	// With forceConflicts the patch takes the field over.
	w.writeStackFile(t, "local", `juwan-jwt-secret:consumers: [{"deployment":"user-rpc","container":"user-rpc","env":{"current":"JWT_SECRET_KEY"},"forceConflicts":true}]`)
	_, err = d.Up(runContext(t))
	require.NoError(t, err)
	assert.Equal(t, "user-rpc", getDeployment(t, "user-rpc").Spec.Template.Spec.ServiceAccountName)
	assert.Contains(t, w.output.String(), "up restores it")

	require.NoError(t, d.Destroy(runContext(t)))
}

// TestSecondStackRefused runs a second stack with its own Secret name in
// the namespace of a deployed one: it would still share the Role, the
// ServiceAccounts and the Deployments, so its preview must fail.
func TestSecondStackRefused(t *testing.T) {
	resetBackend(t)
	local := newWorkspace(t, "Pulumi.local.yaml")
	first := local.open(t, "local", runbookNow)
	_, err := first.Up(runContext(t))
	require.NoError(t, err)
	before := clusterSnapshot(t)

	other := newWorkspace(t)
	other.writeStackFile(t, "dev", "juwan-jwt-secret:secretName: jwt-secret-dev")
	second := other.open(t, "dev", runbookNow)
	_, err = second.Preview(runContext(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Role juwan/jwt-secret-reader belongs to stack organization/juwan-jwt-secret/local")
	assert.Contains(t, err.Error(), "Deployment juwan/user-rpc belongs to stack organization/juwan-jwt-secret/local")
	assert.Equal(t, before, clusterSnapshot(t), "the refused stack changes nothing")

	require.NoError(t, first.Destroy(runContext(t)))
}
