package driver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExplainAddsRecovery(t *testing.T) {
	cases := map[string]string{
		"error: the stack is currently locked by 1 lock(s)":                       "jwtctl --stack dev recover",
		"error: the current deployment has 1 resource(s) with pending operations": "jwtctl --stack dev recover",
		"dial tcp 127.0.0.1:6443: connect: connection refused":                    "make cluster",
		"Deployment juwan/billing not found; fix: deploy it first":                "",
	}
	for message, want := range cases {
		err := explain("dev", errors.New(message))
		if want == "" {
			assert.Equal(t, message, err.Error(), "errors with their own fix pass through")
			continue
		}
		assert.True(t, strings.HasPrefix(err.Error(), message), "the original error comes first")
		assert.Contains(t, err.Error(), HintPrefix)
		assert.Contains(t, err.Error(), want)
	}
	assert.NoError(t, explain("dev", nil))
}

func TestLocalPassphraseIsPrivate(t *testing.T) {
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "")
	t.Setenv("PULUMI_CONFIG_PASSPHRASE_FILE", "")
	stateDir := t.TempDir()
	env := map[string]string{}
	require.NoError(t, passphrase(Options{Stack: LocalStack, StateDir: stateDir}, env))

	file := env["PULUMI_CONFIG_PASSPHRASE_FILE"]
	require.Equal(t, filepath.Join(stateDir, "local-passphrase"), file)
	info, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	first, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Len(t, first, 64, "32 random bytes in hex")

	require.NoError(t, passphrase(Options{Stack: LocalStack, StateDir: stateDir}, env))
	second, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, first, second, "the passphrase is kept, or the state could not be decrypted")

	err = passphrase(Options{Stack: "prod", StateDir: stateDir}, map[string]string{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "export PULUMI_CONFIG_PASSPHRASE_FILE")
}

func TestLocalWorkDirKeepsLocalChanges(t *testing.T) {
	repo, state := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(repo, "Pulumi.yaml"), []byte("name: juwan-jwt-secret\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "Pulumi.local.yaml"), []byte("config: {}\n"), 0o600))

	workDir, err := localWorkDir(repo, state)
	require.NoError(t, err)
	copied, err := os.ReadFile(filepath.Join(workDir, "Pulumi.local.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "config: {}\n", string(copied))

	// Pulumi writes the salt and config set on the stack into the copy.
	changed := "encryptionsalt: v1:abc\nconfig:\n  juwan-jwt-secret:keyGeneration: \"2\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(workDir, "Pulumi.local.yaml"), []byte(changed), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "Pulumi.yaml"), []byte("name: juwan-jwt-secret\ndescription: new\n"), 0o600))

	_, err = localWorkDir(repo, state)
	require.NoError(t, err)
	afterRun, err := os.ReadFile(filepath.Join(workDir, "Pulumi.local.yaml"))
	require.NoError(t, err)
	assert.Equal(t, changed, string(afterRun), "the local stack file is not overwritten")
	project, err := os.ReadFile(filepath.Join(workDir, "Pulumi.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(project), "description: new", "Pulumi.yaml follows the repository")
	repoStack, err := os.ReadFile(filepath.Join(repo, "Pulumi.local.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "config: {}\n", string(repoStack), "the repository's stack file is never written")
}

func TestRealRandomPluginIgnoresStandIn(t *testing.T) {
	home := t.TempDir()
	t.Setenv("PULUMI_HOME", home)
	pluginDir := filepath.Join(home, "plugins", "resource-random-v"+RandomPluginVersion)
	require.NoError(t, os.MkdirAll(pluginDir, 0o700))
	standIn := filepath.Join(t.TempDir(), "pulumi-resource-random")
	require.NoError(t, os.WriteFile(standIn, []byte("stand-in"), 0o700))

	assert.Empty(t, findRealRandomPlugin(t.TempDir(), standIn), "nothing installed")

	installed := filepath.Join(pluginDir, "pulumi-resource-random")
	require.NoError(t, os.WriteFile(installed, []byte("stand-in"), 0o700))
	assert.Empty(t, findRealRandomPlugin(t.TempDir(), standIn), "a copy of the stand-in is not the real plugin")
	assert.Empty(t, findRealRandomPlugin(home, standIn), "the driver's own home does not count")

	require.NoError(t, os.WriteFile(installed, []byte("real provider"), 0o700))
	assert.Equal(t, installed, findRealRandomPlugin(t.TempDir(), standIn))
}

func TestCheckLockStale(t *testing.T) {
	hostname, err := os.Hostname()
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}

	active := write("active.json", fmt.Sprintf(`{"pid":%d,"hostname":%q}`, os.Getpid(), hostname))
	err = checkLockStale(active)
	require.Error(t, err, "the lock of a live process must not be removed")
	assert.Contains(t, err.Error(), "is still active")

	assert.NoError(t, checkLockStale(write("gone.json", fmt.Sprintf(`{"pid":%d,"hostname":%q}`, 1<<22+1, hostname))), "a killed run's lock is stale")
	assert.NoError(t, checkLockStale(write("elsewhere.json", `{"pid":1,"hostname":"another-machine"}`)))
	assert.NoError(t, checkLockStale(write("lock.attrs", `not json`)))
}
