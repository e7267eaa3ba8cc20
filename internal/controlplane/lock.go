package controlplane

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	lockFileName      = "controlplane.lock"
	processesFileName = "processes"
)

// stateLock is an exclusive flock on StateDir/controlplane.lock, held while a
// cluster runs from that folder. The kernel releases it when the holder
// dies, so a held lock means a live cluster and a free one means that any
// processes recorded in the folder are leftovers.
type stateLock struct {
	file *os.File
}

// lockStateDir takes the lock of stateDir and writes this process's pid into
// the lock file.
func lockStateDir(stateDir string) (*stateLock, error) {
	path := filepath.Join(stateDir, lockFileName)
	file, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("unable to open the lock file %s: %w", path, err)
	}

	// LockHolder takes a shared lock for an instant to probe, so a busy lock
	// is retried for a moment before it counts as a running cluster.
	deadline := time.Now().Add(2 * time.Second)
	err = syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	for errors.Is(err, syscall.EWOULDBLOCK) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		err = syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		file.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if pid, readErr := readPID(path); readErr == nil {
				holder = fmt.Sprintf("process %d", pid)
			}
			return nil, fmt.Errorf("unable to use state folder %s: a cluster started by %s is running from it; stop that cluster or choose another state folder", stateDir, holder)
		}
		return nil, fmt.Errorf("unable to lock %s: %w", path, err)
	}

	if err := file.Truncate(0); err != nil {
		file.Close()
		return nil, fmt.Errorf("unable to write %s: %w", path, err)
	}
	if _, err := file.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		file.Close()
		return nil, fmt.Errorf("unable to write %s: %w", path, err)
	}
	return &stateLock{file: file}, nil
}

func (l *stateLock) release() {
	if l == nil || l.file == nil {
		return
	}
	// Closing the file releases the flock.
	l.file.Close()
	l.file = nil
}

// LockHolder reports whether a cluster is running from stateDir and, if one
// is, the pid of the process that started it (the one holding the lock).
func LockHolder(stateDir string) (pid int, running bool, err error) {
	path := filepath.Join(stateDir, lockFileName)
	file, err := os.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("unable to open the lock file %s: %w", path, err)
	}
	defer file.Close()

	err = syscall.Flock(int(file.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		// No process holds the exclusive lock. Closing the file releases the
		// shared lock taken here.
		return 0, false, nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return 0, false, fmt.Errorf("unable to probe the lock file %s: %w", path, err)
	}
	pid, err = readPID(path)
	if err != nil {
		// The holder has taken the lock but not written its pid yet.
		return 0, true, nil
	}
	return pid, true, nil
}

func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("no pid in %s", path)
	}
	return pid, nil
}

// recordProcess appends name and pid to StateDir/processes, so that the next
// Start can end processes that a killed run left behind.
func recordProcess(stateDir, name string, pid int) error {
	path := filepath.Join(stateDir, processesFileName)
	file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("unable to open %s: %w", path, err)
	}
	defer file.Close()
	if _, err := fmt.Fprintf(file, "%s %d\n", name, pid); err != nil {
		return fmt.Errorf("unable to write %s: %w", path, err)
	}
	return nil
}

// killLeftoverProcesses ends the processes recorded in StateDir/processes by
// an earlier run that died without Stop, and empties the record. The caller
// must hold the state lock, which proves that the earlier run is gone. A
// recorded pid counts only while its command line still names stateDir,
// because the kernel may have given that pid to an unrelated process since.
func killLeftoverProcesses(stateDir string, log func(format string, args ...any)) error {
	path := filepath.Join(stateDir, processesFileName)
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unable to read %s: %w", path, err)
	}

	var leftovers []int
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 2 {
			continue
		}
		pid, err := strconv.Atoi(fields[1])
		if err != nil || pid <= 0 {
			continue
		}
		if commandLineMentions(pid, stateDir) {
			log("ending %s (pid %d), left running by an earlier run from %s", fields[0], pid, stateDir)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				file.Close()
				return fmt.Errorf("unable to end leftover %s (pid %d): %w; end it by hand", fields[0], pid, err)
			}
			leftovers = append(leftovers, pid)
		}
	}
	file.Close()
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("unable to read %s: %w", path, err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range leftovers {
		for processExists(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("unable to end leftover process %d: it is still running 5 s after SIGKILL", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unable to remove %s: %w", path, err)
	}
	return nil
}

// commandLineMentions reports whether the command line of process pid
// contains text.
func commandLineMentions(pid int, text string) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(data), text)
}

// processExists reports whether pid names a process that has not been
// reaped. A zombie counts as gone, because it holds no ports or files.
func processExists(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state letter follows the command name, which is in parentheses
	// and may itself contain spaces or parentheses.
	stat := string(data)
	end := strings.LastIndexByte(stat, ')')
	if end < 0 || end+2 >= len(stat) {
		return false
	}
	return stat[end+2] != 'Z'
}

// childPIDsOf returns the pids of this process's children whose executable
// is binary (symlinks resolved) and whose command line contains stateDir.
// envtest does not expose the pids of the etcd and kube-apiserver it starts,
// and this finds them so they can be recorded for killLeftoverProcesses.
// Matching on stateDir separates the processes of clusters that one
// process runs side by side.
func childPIDsOf(binary, stateDir string) ([]int, error) {
	want, err := filepath.EvalSymlinks(binary)
	if err != nil {
		return nil, fmt.Errorf("unable to resolve %s: %w", binary, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("unable to list /proc: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		if parentPID(pid) != self {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe != want || !commandLineMentions(pid, stateDir) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func parentPID(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	stat := string(data)
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0
	}
	// After ") " come the state and then the parent pid.
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 2 {
		return 0
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0
	}
	return ppid
}
