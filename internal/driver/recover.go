package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// LocalKubeconfig returns the kubeconfig that the local control plane
// writes.
func LocalKubeconfig(repoRoot string) string {
	return filepath.Join(repoRoot, ".state", "local", "kubeconfig")
}

// PlainOutputs returns the values of outputs. Secret outputs are left out,
// so nothing printed from the result can carry key material.
func PlainOutputs(outputs auto.OutputMap) map[string]any {
	plain := map[string]any{}
	for name, output := range outputs {
		if !output.Secret {
			plain[name] = output.Value
		}
	}
	return plain
}

// checkLockStale fails when the lock file at path belongs to a run whose
// process still exists on this machine, because removing its lock would
// let two runs change the stack at once. A lock from another machine
// cannot be checked from here and counts as stale.
func checkLockStale(path string) error {
	if !strings.HasSuffix(path, ".json") {
		return nil
	}
	content, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("unable to read lock %s: %w", path, err)
	}
	var lock struct {
		Pid      int    `json:"pid"`
		Hostname string `json:"hostname"`
	}
	if json.Unmarshal(content, &lock) != nil || lock.Pid <= 0 {
		return nil
	}
	hostname, err := os.Hostname()
	if err != nil || hostname != lock.Hostname {
		return nil
	}
	if syscall.Kill(lock.Pid, 0) == nil {
		return fmt.Errorf("unable to recover: the run holding lock %s (pid %d) is still active; wait for it to finish or stop it, then run recover again", path, lock.Pid)
	}
	return nil
}

// importState replaces the stack's state with state.
func (d *Driver) importState(ctx context.Context, state apitype.UntypedDeployment) error {
	file, err := os.CreateTemp(d.opts.StateDir, "recovered-state-*.json")
	if err != nil {
		return fmt.Errorf("unable to write the repaired state: %w", err)
	}
	defer os.Remove(file.Name())
	if err := json.NewEncoder(file).Encode(state); err != nil {
		file.Close()
		return fmt.Errorf("unable to write the repaired state: %w", err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("unable to write the repaired state: %w", err)
	}
	if _, err := d.CLI(ctx, "stack", "import", "--file", file.Name()); err != nil {
		return fmt.Errorf("unable to import the repaired state of stack %q: %w", d.opts.Stack, err)
	}
	return nil
}

// Recovery is the report of Recover: the stale locks it removed and the
// pending operations it dropped.
type Recovery struct {
	RemovedLocks      []string
	PendingOperations []string
}

// Recover repairs the stack after a run that was killed: it removes the
// stack's lock from the file backend, drops the pending operations from
// the state, and refreshes the state from the cluster so the next `up`
// converges. Only run it when no other run of the stack is active.
func (d *Driver) Recover(ctx context.Context) error {
	recovery, err := d.recover(ctx)
	if err != nil {
		return err
	}
	pending := "none"
	if len(recovery.PendingOperations) > 0 {
		pending = strings.Join(recovery.PendingOperations, ", ")
	}
	fmt.Fprintf(d.opts.Progress, "removed %d stale lock(s); dropped pending operations: %s\n", len(recovery.RemovedLocks), pending)
	fmt.Fprintln(d.opts.Progress, "refreshed the state from the cluster; run up again to converge")
	return nil
}

func (d *Driver) recover(ctx context.Context) (*Recovery, error) {
	recovery := &Recovery{}

	// A killed run leaves its lock file behind in a file backend.
	backend := d.env["PULUMI_BACKEND_URL"]
	if directory, ok := strings.CutPrefix(backend, "file://"); ok {
		locks := filepath.Join(directory, ".pulumi", "locks", "organization", jwtstack.Project, d.opts.Stack)
		entries, err := os.ReadDir(locks)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("unable to read the stack locks in %s: %w", locks, err)
		}
		for _, entry := range entries {
			path := filepath.Join(locks, entry.Name())
			if err := checkLockStale(path); err != nil {
				return nil, err
			}
		}
		for _, entry := range entries {
			path := filepath.Join(locks, entry.Name())
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("unable to remove stale lock %s: %w", path, err)
			}
			// Each lock is a .json file with an .attrs file beside it.
			if strings.HasSuffix(entry.Name(), ".json") {
				recovery.RemovedLocks = append(recovery.RemovedLocks, path)
			}
		}
	} else {
		return nil, fmt.Errorf("unable to recover stack %q: its backend %s is not a file backend; run `pulumi cancel` for that backend instead", d.opts.Stack, backend)
	}

	// Drop pending operations, which block every later run. The state is
	// exported without --show-secrets, so secrets stay encrypted on disk.
	exported, err := d.CLI(ctx, "stack", "export")
	if err != nil {
		return nil, fmt.Errorf("unable to export stack %q: %w", d.opts.Stack, err)
	}
	var state apitype.UntypedDeployment
	if err := json.Unmarshal([]byte(exported), &state); err != nil {
		return nil, fmt.Errorf("unable to read the state of stack %q: %w", d.opts.Stack, err)
	}
	var deployment map[string]json.RawMessage
	if err := json.Unmarshal(state.Deployment, &deployment); err != nil {
		return nil, fmt.Errorf("unable to read the state of stack %q: %w", d.opts.Stack, err)
	}
	if raw, ok := deployment["pending_operations"]; ok {
		var pending []apitype.OperationV2
		if err := json.Unmarshal(raw, &pending); err != nil {
			return nil, fmt.Errorf("unable to read the pending operations of stack %q: %w", d.opts.Stack, err)
		}
		for _, operation := range pending {
			recovery.PendingOperations = append(recovery.PendingOperations, fmt.Sprintf("%s %s", operation.Type, operation.Resource.URN.Name()))
		}
		delete(deployment, "pending_operations")
		if state.Deployment, err = json.Marshal(deployment); err != nil {
			return nil, fmt.Errorf("unable to write the state of stack %q: %w", d.opts.Stack, err)
		}
		if err := d.importState(ctx, state); err != nil {
			return nil, err
		}
	}

	// Read back what the killed run actually changed.
	if _, err := d.Stack.Refresh(ctx, optrefresh.ProgressStreams(d.opts.Progress), optrefresh.ErrorProgressStreams(d.opts.Progress)); err != nil {
		return nil, explain(d.opts.Stack, fmt.Errorf("unable to refresh stack %q: %w", d.opts.Stack, err))
	}
	return recovery, nil
}
