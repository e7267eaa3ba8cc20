// Command localcluster runs the throwaway local Kubernetes control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
// 127.0.0.1) with the juwan backend fixture applied.
//
//	localcluster run    [--state DIR] [--tools DIR]   run in the foreground until SIGINT or SIGTERM
//	localcluster start  [--state DIR] [--tools DIR]   run in the background and wait until ready
//	localcluster stop   [--state DIR]                 stop the background cluster
//	localcluster status [--state DIR]                 report whether the cluster runs and is healthy
//
// --state defaults to <repo>/.state/local and --tools to <repo>/.tools,
// where <repo> is the nearest folder above the working directory whose
// go.mod declares module github.com/juwan/jwt-secret.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/juwan/jwt-secret/internal/repo"
)

// Exit codes. statusNotRunning follows the LSB convention for "program is
// not running".
const (
	exitFailure      = 1
	exitUsage        = 2
	statusNotRunning = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(output io.Writer) {
	fmt.Fprint(output, `usage: localcluster COMMAND [--state DIR] [--tools DIR]

Commands:
  run     run the cluster in the foreground; SIGINT or SIGTERM stops it
  start   run the cluster in the background (log in STATE/localcluster.log) and wait until it is ready
  stop    stop the background cluster
  status  report whether the cluster runs and is healthy (exit 0 running, 1 unhealthy, 3 not running)

Flags:
  --state DIR  folder for the cluster's kubeconfig, logs, keys and pid file (default <repo>/.state/local)
  --tools DIR  folder that tools/build.sh fills, with bin/ and kwok-stages/ (default <repo>/.tools)
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	command := args[0]

	flags := flag.NewFlagSet("localcluster "+command, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { usage(stderr) }
	stateFlag := flags.String("state", "", "folder for the cluster's files (default <repo>/.state/local)")
	toolsFlag := flags.String("tools", "", "folder with bin/ and kwok-stages/ (default <repo>/.tools)")
	if err := flags.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "localcluster: unexpected argument %q\n", flags.Arg(0))
		usage(stderr)
		return exitUsage
	}

	dirs, err := resolveDirs(*stateFlag, *toolsFlag)
	if err != nil {
		fmt.Fprintf(stderr, "localcluster: %v\n", err)
		return exitFailure
	}

	switch command {
	case "run":
		err = runForeground(context.Background(), dirs, stdout)
	case "start":
		err = startBackground(dirs, stdout)
	case "stop":
		err = stopBackground(dirs, stdout)
	case "status":
		return printStatus(dirs, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "localcluster: unknown command %q\n", command)
		usage(stderr)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "localcluster %s: %v\n", command, err)
		return exitFailure
	}
	return 0
}

// directories are the absolute state and tools folders of one invocation.
type directories struct {
	state string
	tools string
}

func (d directories) pidFile() string {
	return filepath.Join(d.state, "cluster.pid")
}

func (d directories) logFile() string {
	return filepath.Join(d.state, "localcluster.log")
}

func (d directories) kubeconfig() string {
	return filepath.Join(d.state, "kubeconfig")
}

// resolveDirs returns the state and tools folders, defaulting either one
// from the repository root.
func resolveDirs(state, tools string) (directories, error) {
	if state == "" || tools == "" {
		root, err := repo.FindRoot()
		if err != nil {
			return directories{}, fmt.Errorf("%w, or pass --state and --tools", err)
		}
		if state == "" {
			state = filepath.Join(root, ".state", "local")
		}
		if tools == "" {
			// tools/build.sh writes to $TOOLS_DIR when it is set.
			tools = os.Getenv("TOOLS_DIR")
		}
		if tools == "" {
			tools = filepath.Join(root, ".tools")
		}
	}
	var dirs directories
	var err error
	if dirs.state, err = filepath.Abs(state); err != nil {
		return directories{}, fmt.Errorf("unable to resolve --state %q: %w", state, err)
	}
	if dirs.tools, err = filepath.Abs(tools); err != nil {
		return directories{}, fmt.Errorf("unable to resolve --tools %q: %w", tools, err)
	}
	return dirs, nil
}
