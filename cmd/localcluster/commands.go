package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/juwan/jwt-secret/internal/controlplane"
)

const (
	// seedTimeout bounds applying the backend fixture and waiting for its
	// Deployments to become available, after the cluster is up.
	seedTimeout = 90 * time.Second
	// readyTimeout bounds `start`: the control plane's own 90 s start
	// budget plus seeding, with a margin.
	readyTimeout = 3 * time.Minute
	// stopTimeout bounds `stop`. controlplane.Cluster.Stop returns within
	// 35 s.
	stopTimeout = 60 * time.Second
)

// runForeground starts the cluster, seeds the backend, writes the pid file
// and waits for SIGINT or SIGTERM, then stops the cluster and removes the
// pid file.
func runForeground(ctx context.Context, dirs directories, stdout io.Writer) error {
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	progress := &timestampWriter{output: stdout}
	cluster, err := controlplane.Start(ctx, controlplane.Options{
		ToolsDir: dirs.tools,
		StateDir: dirs.state,
		Log:      progress,
	})
	if err != nil {
		return err
	}
	// From here on every return stops the cluster first.
	stopCluster := func() error {
		os.Remove(dirs.pidFile())
		return cluster.Stop()
	}

	seedCtx, cancelSeed := context.WithTimeout(ctx, seedTimeout)
	err = controlplane.SeedBackend(seedCtx, cluster.RESTConfig)
	if err == nil {
		fmt.Fprintf(progress, "applied the backend fixture; waiting for Deployments %s in namespace %s\n", strings.Join(controlplane.BackendDeployments, ", "), controlplane.BackendNamespace)
		err = controlplane.WaitForDeployments(seedCtx, cluster.RESTConfig, controlplane.BackendNamespace, controlplane.BackendDeployments...)
	}
	cancelSeed()
	if err != nil {
		return errors.Join(err, stopCluster())
	}

	// The pid file appears only once the cluster is ready, because `start`
	// waits for it.
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := os.WriteFile(dirs.pidFile(), []byte(pid), 0o600); err != nil {
		return errors.Join(fmt.Errorf("unable to write pid file %s: %w", dirs.pidFile(), err), stopCluster())
	}
	fmt.Fprintf(progress, "ready (pid %d); stop with: localcluster stop --state %s\n", os.Getpid(), dirs.state)
	fmt.Fprintln(stdout, cluster.Kubeconfig)

	<-ctx.Done()
	fmt.Fprintln(progress, "signal received, stopping")
	return stopCluster()
}

// startBackground runs `localcluster run` as a detached process in a new
// session and waits until it has written its pid file. A cluster that
// already runs and is healthy is left alone.
func startBackground(dirs directories, stdout io.Writer) error {
	state, err := readState(dirs)
	if err != nil {
		return err
	}
	switch {
	case state.running && state.healthy:
		fmt.Fprintf(stdout, "already running (pid %d) and healthy; kubeconfig: %s\n", state.pid, dirs.kubeconfig())
		return nil
	case state.running && state.starting && state.pid != 0:
		fmt.Fprintf(stdout, "already starting (pid %d); waiting until it is ready\n", state.pid)
		return waitForReady(dirs, state.pid, nil, nil, stdout)
	case state.running:
		return fmt.Errorf("a cluster from %s is running (pid %d) but is not healthy (%v); run localcluster stop, then start again, and read %s", dirs.state, state.pid, state.healthErr, dirs.logFile())
	}
	if state.stalePID != 0 {
		fmt.Fprintf(stdout, "removing stale pid file %s (process %d is gone)\n", dirs.pidFile(), state.stalePID)
	}
	if err := os.Remove(dirs.pidFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unable to remove stale pid file %s: %w", dirs.pidFile(), err)
	}

	if err := os.MkdirAll(dirs.state, 0o700); err != nil {
		return fmt.Errorf("unable to create state folder %s: %w", dirs.state, err)
	}
	logFile, err := os.OpenFile(dirs.logFile(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("unable to create log file %s: %w", dirs.logFile(), err)
	}
	defer logFile.Close()

	executable, err := os.Executable()
	if err != nil {
		return fmt.Errorf("unable to find this program's executable: %w", err)
	}
	cmd := exec.Command(executable, "run", "--state", dirs.state, "--tools", dirs.tools)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// A new session detaches the cluster from this terminal, so closing it
	// or pressing Ctrl-C there does not stop the cluster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("unable to start %s run: %w", executable, err)
	}
	child := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Fprintf(stdout, "starting the cluster in the background (pid %d), log %s\n", child, dirs.logFile())

	return waitForReady(dirs, child, exited, cmd.Process, stdout)
}

// waitForReady waits until the pid file names pid, which the cluster
// process writes once it is ready. exited and process are nil when pid is
// not this program's child. On timeout a child is stopped, so a later start
// does not find a half-started cluster.
func waitForReady(dirs directories, pid int, exited <-chan error, process *os.Process, stdout io.Writer) error {
	deadline := time.After(readyTimeout)
	for {
		if filePID, err := readPIDFile(dirs.pidFile()); err == nil && filePID == pid {
			fmt.Fprintf(stdout, "ready; kubeconfig: %s\n", dirs.kubeconfig())
			return nil
		}
		if exited == nil && !processRuns(pid) {
			return fmt.Errorf("the cluster process %d exited before it was ready; last lines of %s:\n%s", pid, dirs.logFile(), controlplane.LastLines(dirs.logFile(), 15))
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the cluster process exited before it was ready (%v); last lines of %s:\n%s", err, dirs.logFile(), controlplane.LastLines(dirs.logFile(), 15))
		case <-deadline:
			if process != nil {
				_ = process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(stopTimeout):
					_ = process.Kill()
				}
				return fmt.Errorf("timed out after %s waiting for the cluster to be ready, and stopped it; last lines of %s:\n%s", readyTimeout, dirs.logFile(), controlplane.LastLines(dirs.logFile(), 15))
			}
			return fmt.Errorf("timed out after %s waiting for the cluster (pid %d) to be ready; read %s", readyTimeout, pid, dirs.logFile())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// processRuns reports whether a process with this pid exists.
func processRuns(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// stopBackground sends SIGTERM to the cluster process and waits for it to
// exit, sending SIGKILL after stopTimeout.
func stopBackground(dirs directories, stdout io.Writer) error {
	state, err := readState(dirs)
	if err != nil {
		return err
	}
	if !state.running {
		if state.stalePID != 0 {
			os.Remove(dirs.pidFile())
			fmt.Fprintf(stdout, "not running; removed stale pid file %s\n", dirs.pidFile())
			return nil
		}
		fmt.Fprintln(stdout, "not running")
		return nil
	}
	if state.pid == 0 {
		return fmt.Errorf("a cluster is starting from %s but its pid is not known yet; try again in a few seconds", dirs.state)
	}

	fmt.Fprintf(stdout, "stopping the cluster (pid %d)\n", state.pid)
	if err := syscall.Kill(state.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("unable to send SIGTERM to pid %d: %w", state.pid, err)
	}
	if waitUntilStopped(dirs, stopTimeout) {
		fmt.Fprintln(stdout, "stopped")
		return nil
	}

	// The control plane's child processes get SIGKILL from the kernel when
	// the cluster process dies, and the next start ends etcd and
	// kube-apiserver if they are left.
	if err := syscall.Kill(state.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("unable to send SIGKILL to pid %d: %w", state.pid, err)
	}
	if waitUntilStopped(dirs, 5*time.Second) {
		os.Remove(dirs.pidFile())
		return fmt.Errorf("the cluster (pid %d) did not stop within %s and was killed; read %s", state.pid, stopTimeout, dirs.logFile())
	}
	return fmt.Errorf("unable to stop the cluster (pid %d): it still runs after SIGKILL", state.pid)
}

// waitUntilStopped waits until no process holds the state folder's lock.
func waitUntilStopped(dirs directories, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, running, err := controlplane.LockHolder(dirs.state); err == nil && !running {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

// printStatus reports the cluster's state and returns the exit code.
func printStatus(dirs directories, stdout, stderr io.Writer) int {
	state, err := readState(dirs)
	if err != nil {
		fmt.Fprintf(stderr, "localcluster status: %v\n", err)
		return exitFailure
	}
	switch {
	case state.running && state.healthy:
		fmt.Fprintf(stdout, "running (pid %d), healthy\nkubeconfig: %s\napiserver:  %s\nlog:        %s\n", state.pid, dirs.kubeconfig(), state.server, dirs.logFile())
		return 0
	case state.running:
		fmt.Fprintf(stdout, "running (pid %d), not healthy: %v\nlog: %s\n", state.pid, state.healthErr, dirs.logFile())
		return exitFailure
	case state.stalePID != 0:
		fmt.Fprintf(stdout, "not running (stale pid file %s names process %d, which is gone)\n", dirs.pidFile(), state.stalePID)
		return statusNotRunning
	default:
		fmt.Fprintln(stdout, "not running")
		return statusNotRunning
	}
}

// clusterState describes the cluster of one state folder.
type clusterState struct {
	// running is true while a process holds the state folder's lock.
	running bool
	// pid is the process that holds the lock, or 0 when it is not known.
	pid int
	// healthy is true when the running cluster's apiserver passes /readyz
	// and the pid file names that process, so it has finished starting.
	healthy bool
	// starting is true while the process runs but has not written the pid
	// file yet.
	starting  bool
	healthErr error
	server    string
	// stalePID is the pid in a pid file whose process no longer runs the
	// cluster.
	stalePID int
}

func readState(dirs directories) (clusterState, error) {
	var state clusterState
	holder, running, err := controlplane.LockHolder(dirs.state)
	if err != nil {
		return state, err
	}
	filePID, fileErr := readPIDFile(dirs.pidFile())
	if !running {
		if fileErr == nil {
			state.stalePID = filePID
		}
		return state, nil
	}

	state.running = true
	state.pid = holder
	switch {
	case fileErr != nil:
		state.starting = true
		state.healthErr = errors.New("still starting: no pid file yet")
	case filePID != holder:
		state.healthErr = fmt.Errorf("pid file names process %d but process %d runs the cluster", filePID, holder)
	default:
		state.server, state.healthErr = checkReady(dirs.kubeconfig())
	}
	state.healthy = state.healthErr == nil
	return state, nil
}

// checkReady requests /readyz from the apiserver named in kubeconfig and
// returns the apiserver's URL.
func checkReady(kubeconfig string) (string, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", fmt.Errorf("unable to load kubeconfig %s: %w", kubeconfig, err)
	}
	config.Timeout = 5 * time.Second
	client, err := rest.HTTPClientFor(config)
	if err != nil {
		return config.Host, fmt.Errorf("unable to create a client for %s: %w", config.Host, err)
	}
	url := strings.TrimSuffix(config.Host, "/") + "/readyz"
	response, err := client.Get(url)
	if err != nil {
		return config.Host, fmt.Errorf("apiserver %s is unreachable: %w", config.Host, err)
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return config.Host, fmt.Errorf("apiserver %s/readyz returned HTTP %d", config.Host, response.StatusCode)
	}
	return config.Host, nil
}

func readPIDFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("invalid pid file %s: %q", path, strings.TrimSpace(string(data)))
	}
	return pid, nil
}

// timestampWriter prefixes each write with the local time, for the log of
// a long-running process.
type timestampWriter struct {
	output io.Writer
}

func (w *timestampWriter) Write(p []byte) (int, error) {
	if _, err := fmt.Fprintf(w.output, "%s %s", time.Now().Format("15:04:05"), p); err != nil {
		return 0, err
	}
	return len(p), nil
}
