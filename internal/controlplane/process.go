package controlplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// childProcess is a control plane binary that Start runs besides the ones
// envtest runs (etcd and kube-apiserver).
type childProcess struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	logFile *os.File
	// exited is closed once the process has exited and waitErr is set.
	exited  chan struct{}
	waitErr error
}

// startChild starts binary with args and this process's environment plus
// extraEnv, with stdout and stderr in a new file at logPath. The child gets its own process group, so a Ctrl-C in a
// terminal reaches only this program, which then stops the children in
// order. It also gets SIGKILL when this program dies, so a crash leaves no
// orphan.
func startChild(name, binary string, args, extraEnv []string, logPath string) (*childProcess, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("unable to create the log file of %s at %s: %w", name, logPath, err)
	}
	fmt.Fprintf(logFile, "# %s %s\n", binary, strings.Join(args, " "))

	cmd := exec.Command(binary, args...)
	// A later entry wins over an earlier one with the same name.
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("unable to start %s (%s): %w", name, binary, err)
	}

	child := &childProcess{
		name:    name,
		logPath: logPath,
		cmd:     cmd,
		logFile: logFile,
		exited:  make(chan struct{}),
	}
	go func() {
		child.waitErr = cmd.Wait()
		logFile.Close()
		close(child.exited)
	}()
	return child, nil
}

func (c *childProcess) pid() int {
	return c.cmd.Process.Pid
}

// exitError returns a non-nil error once the process has exited, for health
// checks that should stop waiting for a process that is gone.
func (c *childProcess) exitError() error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited (%v); read its log %s", c.name, c.waitErr, c.logPath)
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to grace for the process to exit, then sends
// SIGKILL and waits up to 5 more seconds.
func (c *childProcess) stop(grace time.Duration) error {
	select {
	case <-c.exited:
		return nil
	default:
	}

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("unable to send SIGTERM to %s (pid %d): %w", c.name, c.pid(), err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(grace):
	}

	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("unable to send SIGKILL to %s (pid %d): %w", c.name, c.pid(), err)
	}
	select {
	case <-c.exited:
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s and was killed; read its log %s", c.name, c.pid(), grace, c.logPath)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("unable to stop %s (pid %d): it is still running 5 s after SIGKILL", c.name, c.pid())
	}
}
