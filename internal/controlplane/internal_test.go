package controlplane

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/juwan/jwt-secret/fixtures"
)

func TestBackendFixtureObjects(t *testing.T) {
	objects, err := decodeManifest(fixtures.BackendYAML)
	require.NoError(t, err)

	var names []string
	for _, object := range objects {
		names = append(names, object.GetKind()+"/"+object.GetName())
		if object.GetKind() != "Namespace" {
			assert.Equal(t, BackendNamespace, object.GetNamespace(), "%s/%s", object.GetKind(), object.GetName())
		}
	}
	assert.Equal(t, []string{
		"Namespace/juwan",
		"ConfigMap/user-rpc-config",
		"ConfigMap/envoy-gateway-config",
		"Deployment/user-rpc",
		"Deployment/envoy-gateway",
	}, names)

	for _, object := range objects {
		if object.GetKind() != "Deployment" {
			continue
		}
		_, found, err := unstructured.NestedString(object.Object, "spec", "template", "spec", "serviceAccountName")
		require.NoError(t, err)
		assert.False(t, found, "Deployment %s must leave serviceAccountName to the program under test", object.GetName())
	}
	assert.Equal(t, []string{"user-rpc", "metrics-exporter"}, containerNames(t, objects, "user-rpc"))
	assert.Equal(t, []string{"envoy"}, containerNames(t, objects, "envoy-gateway"))
}

func containerNames(t *testing.T, objects []*unstructured.Unstructured, deployment string) []string {
	t.Helper()
	for _, object := range objects {
		if object.GetKind() != "Deployment" || object.GetName() != deployment {
			continue
		}
		containers, _, err := unstructured.NestedSlice(object.Object, "spec", "template", "spec", "containers")
		require.NoError(t, err)
		var names []string
		for _, container := range containers {
			names = append(names, container.(map[string]any)["name"].(string))
		}
		return names
	}
	t.Fatalf("Deployment %s not in the fixture", deployment)
	return nil
}

func TestDecodeManifestRejectsNamelessObject(t *testing.T) {
	_, err := decodeManifest([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"))
	assert.ErrorContains(t, err, "no kind or no metadata.name")
}

func TestSecretboxKeyKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secretbox.key")
	first, err := loadOrCreateSecretboxKey(path)
	require.NoError(t, err)
	assert.Len(t, first, secretboxKeySize)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	second, err := loadOrCreateSecretboxKey(path)
	require.NoError(t, err)
	assert.Equal(t, first, second)

	require.NoError(t, os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600))
	_, err = loadOrCreateSecretboxKey(path)
	assert.ErrorContains(t, err, "expected 32 bytes")
}

func TestEncryptionConfigOrder(t *testing.T) {
	config := string(encryptionConfig(make([]byte, secretboxKeySize)))
	secretbox := strings.Index(config, "secretbox:")
	identity := strings.Index(config, "identity:")
	require.Positive(t, secretbox)
	// The first provider encrypts new writes, so secretbox must come first.
	assert.Less(t, secretbox, identity)
}

func TestStateLock(t *testing.T) {
	stateDir := t.TempDir()
	_, running, err := LockHolder(stateDir)
	require.NoError(t, err)
	assert.False(t, running)

	lock, err := lockStateDir(stateDir)
	require.NoError(t, err)
	pid, running, err := LockHolder(stateDir)
	require.NoError(t, err)
	assert.True(t, running)
	assert.Equal(t, os.Getpid(), pid)

	_, err = lockStateDir(stateDir)
	assert.ErrorContains(t, err, "is running from it")

	lock.release()
	_, running, err = LockHolder(stateDir)
	require.NoError(t, err)
	assert.False(t, running)
}

func TestKillLeftoverProcesses(t *testing.T) {
	stateDir := t.TempDir()

	// The state folder is on the leftover's command line, as it is on
	// every control plane process's, because its executable is a copy of
	// sleep inside it. The bystander's is not.
	sleepPath, err := exec.LookPath("sleep")
	require.NoError(t, err)
	sleepBinary, err := os.ReadFile(sleepPath)
	require.NoError(t, err)
	leftoverPath := filepath.Join(stateDir, "sleep")
	require.NoError(t, os.WriteFile(leftoverPath, sleepBinary, 0o700))
	leftover := exec.Command(leftoverPath, "60")
	require.NoError(t, leftover.Start())
	leftoverDone := make(chan struct{})
	go func() { _ = leftover.Wait(); close(leftoverDone) }()
	bystander := exec.Command("sleep", "60")
	require.NoError(t, bystander.Start())
	t.Cleanup(func() {
		_ = bystander.Process.Kill()
		_ = bystander.Wait()
	})

	require.NoError(t, recordProcess(stateDir, "leftover", leftover.Process.Pid))
	require.NoError(t, recordProcess(stateDir, "bystander", bystander.Process.Pid))
	require.NoError(t, killLeftoverProcesses(stateDir, t.Logf))

	select {
	case <-leftoverDone:
	case <-time.After(5 * time.Second):
		_ = leftover.Process.Kill()
		t.Fatal("the leftover process still runs")
	}
	assert.True(t, processExists(bystander.Process.Pid), "a process without the state folder on its command line must be left alone")
	_, err = os.Stat(filepath.Join(stateDir, processesFileName))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestParentPID(t *testing.T) {
	assert.Equal(t, os.Getppid(), parentPID(os.Getpid()))
	assert.True(t, processExists(os.Getpid()))
}
