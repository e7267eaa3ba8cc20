package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveDirsDefaults(t *testing.T) {
	// The test runs in cmd/localcluster, two levels below the repository
	// root.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	dirs, err := resolveDirs("", "")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, ".state", "local"), dirs.state)
	assert.Equal(t, filepath.Join(root, ".tools"), dirs.tools)
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitUsage, run([]string{"launch"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `unknown command "launch"`)
}

func TestStatusWithStalePIDFile(t *testing.T) {
	stateDir := t.TempDir()
	// A pid that no process holds the state lock for is stale, whatever
	// process has that pid now.
	require.NoError(t, os.WriteFile(filepath.Join(stateDir, "cluster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600))

	var stdout, stderr bytes.Buffer
	code := run([]string{"status", "--state", stateDir, "--tools", t.TempDir()}, &stdout, &stderr)
	assert.Equal(t, statusNotRunning, code, "stderr: %s", stderr.String())
	assert.Contains(t, stdout.String(), "stale pid file")

	stdout.Reset()
	assert.Equal(t, 0, run([]string{"stop", "--state", stateDir, "--tools", t.TempDir()}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "removed stale pid file")
	assert.NoFileExists(t, filepath.Join(stateDir, "cluster.pid"))
}

// TestStartStopBackground builds localcluster and drives it as `make up`
// would: start, start again, status, stop.
func TestStartStopBackground(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	tools := os.Getenv("TOOLS_DIR")
	if tools == "" {
		tools = filepath.Join(root, ".tools")
	}
	if _, err := os.Stat(filepath.Join(tools, "bin", "kube-apiserver")); err != nil {
		t.Skipf("skipping: %s is missing; run tools/build.sh to build the control plane binaries", filepath.Join(tools, "bin", "kube-apiserver"))
	}

	binary := filepath.Join(t.TempDir(), "localcluster")
	buildOutput, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", buildOutput)

	stateDir := t.TempDir()
	localcluster := func(args ...string) (string, int) {
		args = append(args, "--state", stateDir, "--tools", tools)
		cmd := exec.Command(binary, args...)
		output, err := cmd.CombinedOutput()
		code := 0
		if exitErr, ok := err.(*exec.ExitError); ok {
			code = exitErr.ExitCode()
		} else {
			require.NoError(t, err)
		}
		t.Logf("localcluster %s (exit %d):\n%s", strings.Join(args, " "), code, output)
		return string(output), code
	}
	t.Cleanup(func() {
		if t.Failed() {
			if data, err := os.ReadFile(filepath.Join(stateDir, "localcluster.log")); err == nil {
				t.Logf("localcluster.log:\n%s", data)
			}
		}
		localcluster("stop")
	})

	// A pid file left by a run that was killed must not block the start.
	require.NoError(t, os.WriteFile(filepath.Join(stateDir, "cluster.pid"), []byte("999999\n"), 0o600))

	begin := time.Now()
	output, code := localcluster("start")
	require.Equal(t, 0, code)
	assert.Contains(t, output, "removing stale pid file")
	assert.Contains(t, output, "ready; kubeconfig: "+filepath.Join(stateDir, "kubeconfig"))
	t.Logf("measured: localcluster start took %.1f s", time.Since(begin).Seconds())
	pidData, err := os.ReadFile(filepath.Join(stateDir, "cluster.pid"))
	require.NoError(t, err)
	pid := strings.TrimSpace(string(pidData))

	output, code = localcluster("start")
	require.Equal(t, 0, code)
	assert.Contains(t, output, "already running (pid "+pid+") and healthy")

	output, code = localcluster("status")
	assert.Equal(t, 0, code)
	assert.Contains(t, output, "running (pid "+pid+"), healthy")

	begin = time.Now()
	output, code = localcluster("stop")
	require.Equal(t, 0, code)
	assert.Contains(t, output, "stopped")
	t.Logf("measured: localcluster stop took %.1f s", time.Since(begin).Seconds())
	assert.NoFileExists(t, filepath.Join(stateDir, "cluster.pid"))

	_, code = localcluster("status")
	assert.Equal(t, statusNotRunning, code)
	pgrep, err := exec.Command("pgrep", "-a", "-f", stateDir).Output()
	assert.Error(t, err, "processes left running: %s", pgrep)
}
