// Command jwtctl runs the juwan-jwt-secret stack through the Pulumi
// Automation API: preview, up, destroy, outputs and recover, for the local
// control plane or any cluster a kubeconfig names.
//
//	go run ./cmd/jwtctl [--stack local|dev|prod] [--kubeconfig FILE] [--local] COMMAND
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/juwan/jwt-secret/internal/driver"
	"github.com/juwan/jwt-secret/internal/repo"
	"github.com/juwan/jwt-secret/jwtstack"
)

const usage = `Usage: jwtctl [flags] COMMAND

Commands:
  preview   show what up would change
  up        apply the stack, then print who can read the key and what rolled
  destroy   remove the stack's resources and take back its Deployment fields
  outputs   print the stack outputs
  recover   clear the lock and pending operations a killed run left behind
  migrate   before the first up on a cluster whose Secret was applied by hand:
            keep its key as the previous key and drop kubectl's plaintext copy
  config    list the stack's config, secrets hidden
  config set KEY VALUE [--secret]
            set a config value, for example: config set keyGeneration 2

Flags:
`

func main() {
	// A flag set of its own, because client-go's logging registers flags
	// on the default one.
	flags := flag.NewFlagSet("jwtctl", flag.ExitOnError)
	stack := flags.String("stack", driver.LocalStack, "stack to run: local, dev or prod")
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig of the target cluster (default: $KUBECONFIG or ~/.kube/config; the local control plane's for --stack local)")
	local := flags.Bool("local", false, "target the local control plane whatever the stack; the local stack must not be deployed there, since both would own one Secret")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), usage)
		flags.PrintDefaults()
	}
	_ = flags.Parse(os.Args[1:])
	if flags.NArg() < 1 {
		flags.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, flags.Args(), *stack, *kubeconfig, *local); err != nil {
		fmt.Fprintf(os.Stderr, "jwtctl: %s\n", report(err))
		os.Exit(1)
	}
}

// report shortens an engine error whose output was already streamed: it
// keeps the first line and the recovery hint instead of repeating the
// engine's output.
func report(err error) string {
	message := err.Error()
	hint := ""
	if i := strings.LastIndex(message, driver.HintPrefix); i >= 0 {
		message, hint = message[:i], message[i:]
	}
	if i := strings.Index(message, "\ncode: "); i >= 0 {
		message = message[:i] + " (the engine output above has the details)"
	}
	return message + hint
}

func run(ctx context.Context, args []string, stack, kubeconfig string, local bool) error {
	command := args[0]
	if command != "config" && len(args) != 1 {
		return fmt.Errorf("%s takes no arguments; run jwtctl -h for the usage", command)
	}
	root, err := repo.FindRoot()
	if err != nil {
		return err
	}
	if kubeconfig == "" && (local || stack == driver.LocalStack) {
		kubeconfig = driver.LocalKubeconfig(root)
		if _, err := os.Stat(kubeconfig); err != nil {
			return fmt.Errorf("the local control plane is not running (%s is missing); start it with: make cluster", kubeconfig)
		}
	}
	if kubeconfig != "" {
		kubeconfig, err = filepath.Abs(kubeconfig)
		if err != nil {
			return err
		}
	}

	d, err := driver.Open(ctx, driver.Options{RepoRoot: root, Stack: stack, Kubeconfig: kubeconfig, RefreshLocal: true})
	if err != nil {
		return err
	}
	fmt.Printf("stack %s, cluster %s, random provider: %s\n", stack, describeCluster(kubeconfig), d.Random)

	switch command {
	case "preview":
		_, err = d.Preview(ctx)
		return err
	case "up":
		before := driver.Revisions(ctx, kubeconfig, d)
		result, err := d.Up(ctx)
		if err != nil {
			return err
		}
		summary, err := driver.Summarize(ctx, kubeconfig, driver.PlainOutputs(result.Outputs))
		if err != nil {
			return fmt.Errorf("up succeeded, but the summary failed: %w", err)
		}
		summary.PreviousRevisions = before
		summary.Print(os.Stdout)
		return nil
	case "destroy":
		return d.Destroy(ctx)
	case "outputs":
		outputs, err := d.Outputs(ctx)
		if err != nil {
			return err
		}
		values := map[string]any{}
		for name, output := range outputs {
			values[name] = shown(output.Value, output.Secret)
		}
		printSorted(20, values)
		return nil
	case "recover":
		return d.Recover(ctx)
	case "config":
		return configCommand(ctx, d, args[1:])
	case "migrate":
		migration, err := d.Migrate(ctx)
		if err != nil {
			return err
		}
		if !migration.Found {
			fmt.Println("no Secret to take over: up creates everything")
			return nil
		}
		fmt.Println("stored the live key as juwan-jwt-secret:legacyKey (a secret); it stays accepted as the previous key until the next rotation")
		if migration.RemovedLastApplied {
			fmt.Println("removed the last-applied-configuration annotation, which held a copy of the key")
		}
		fmt.Printf("the next up adopts: %s\n", strings.Join(migration.Adopted, ", "))
		return nil
	default:
		return errors.New("unknown command " + command + "; run jwtctl -h for the list")
	}
}

func describeCluster(kubeconfig string) string {
	if kubeconfig == "" {
		return "from $KUBECONFIG or ~/.kube/config"
	}
	return "from " + kubeconfig
}

// configCommand lists or sets stack config.
func configCommand(ctx context.Context, d *driver.Driver, args []string) error {
	switch {
	case len(args) == 0:
		config, err := d.Stack.GetAllConfig(ctx)
		if err != nil {
			return err
		}
		values := map[string]any{}
		for key, value := range config {
			values[key] = shown(value.Value, value.Secret)
		}
		printSorted(45, values)
		fmt.Printf("(stack file in %s)\n", d.WorkDir())
		return nil
	case args[0] == "set" && len(args) >= 2 && strings.TrimPrefix(args[1], jwtstack.Project+":") == jwtstack.KeyLegacyKey:
		// A key on the command line lands in shell history and process
		// lists, and without --secret in the stack file in plaintext.
		return errors.New("legacyKey is not set with config set; run jwtctl migrate, which reads it from the cluster")
	case args[0] == "set" && (len(args) == 3 || len(args) == 4 && args[3] == "--secret"):
		if err := d.SetConfig(ctx, args[1], args[2], len(args) == 4); err != nil {
			return err
		}
		fmt.Printf("set %s in %s\n", args[1], d.WorkDir())
		return nil
	default:
		return errors.New("usage: jwtctl config, or jwtctl config set KEY VALUE [--secret]")
	}
}

// shown returns value, or a placeholder if it is a secret.
func shown(value any, secret bool) any {
	if secret {
		return "[secret]"
	}
	return value
}

// printSorted prints one name and value a line, sorted by name, with the
// names padded to width.
func printSorted(width int, values map[string]any) {
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Printf("%-*s %v\n", width, name, values[name])
	}
}
