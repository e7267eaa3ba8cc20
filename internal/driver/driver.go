// Package driver runs the stack through the Pulumi Automation API with the
// program as an inline program, so no Go language plugin is needed. It sets
// up an isolated Pulumi home with the pinned plugins, a file backend and the
// passphrase, and is used by cmd/jwtctl and the end-to-end tests.
package driver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/juwan/jwt-secret/internal/repo"
	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LocalStack is the stack meant for the local control plane.
const LocalStack = "local"

// Options configures a Driver. Only Stack is required.
type Options struct {
	// RepoRoot is the repository root; found from the working directory if empty.
	RepoRoot string
	// ToolsDir holds bin/pulumi and the plugins; $TOOLS_DIR or
	// RepoRoot/.tools if empty.
	ToolsDir string
	// StateDir holds the Pulumi home, the file backend and the local
	// passphrase; RepoRoot/.state if empty.
	StateDir string
	// WorkDir holds Pulumi.yaml and the stack files; RepoRoot if empty.
	WorkDir string
	// Stack is the stack name, such as local, dev or prod.
	Stack string
	// Kubeconfig is the kubeconfig file the Kubernetes provider uses. Empty
	// means the provider's default: $KUBECONFIG or ~/.kube/config.
	Kubeconfig string
	// Program is the inline program; the stack program checking the
	// consumers on the Kubeconfig cluster if nil.
	Program pulumi.RunFunc
	// Progress receives the engine's progress output; os.Stdout if nil.
	Progress io.Writer
	// RefreshLocal makes Up on the local stack refresh the state from the
	// cluster first.
	RefreshLocal bool
}

// Driver drives one stack.
type Driver struct {
	opts   Options
	Stack  auto.Stack
	Random PluginSource
	env    map[string]string
}

// Open prepares the Pulumi home, the plugins and the backend, and selects
// or creates the stack.
func Open(ctx context.Context, opts Options) (*Driver, error) {
	if opts.Stack == "" {
		return nil, errors.New("unable to open stack: no stack name given; pass local, dev or prod")
	}
	if opts.RepoRoot == "" {
		root, err := repo.FindRoot()
		if err != nil {
			return nil, err
		}
		opts.RepoRoot = root
	}
	// tools/build.sh writes to $TOOLS_DIR when it is set.
	opts.ToolsDir = withDefault(opts.ToolsDir, withDefault(os.Getenv("TOOLS_DIR"), filepath.Join(opts.RepoRoot, ".tools")))
	opts.StateDir = withDefault(opts.StateDir, filepath.Join(opts.RepoRoot, ".state"))
	if opts.WorkDir == "" {
		opts.WorkDir = opts.RepoRoot
		if opts.Stack == LocalStack {
			workDir, err := localWorkDir(opts.RepoRoot, opts.StateDir)
			if err != nil {
				return nil, err
			}
			opts.WorkDir = workDir
		}
	}
	if opts.Program == nil {
		opts.Program = jwtstack.NewProgram(jwtstack.Options{Kubeconfig: opts.Kubeconfig, ProjectDir: opts.WorkDir})
	}
	if opts.Progress == nil {
		opts.Progress = os.Stdout
	}

	pulumiHome := filepath.Join(opts.StateDir, "pulumi-home")
	backendDir := filepath.Join(opts.StateDir, "backend")
	for _, dir := range []string{pulumiHome, backendDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("unable to create %s: %w", dir, err)
		}
	}

	command, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: opts.ToolsDir})
	if err != nil {
		return nil, fmt.Errorf("unable to use the Pulumi CLI in %s/bin (build it with tools/build.sh): %w", opts.ToolsDir, err)
	}

	env := map[string]string{
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		// Plugins come only from the pinned builds installed below; the
		// engine must never try to download one.
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
		// The Automation API puts the CLI's folder on PATH, and the engine
		// would prefer plugins found there to the installed ones.
		"PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
		// The Kubernetes provider (v4.25.0) diffs a patch's lists by
		// position against the whole live list, so env vars, mounts and
		// volumes appended after the Deployment's own always look changed.
		// With legacy diffs the engine calls the provider's diff only when the
		// program's inputs changed. NOTE: drift made by hand in the cluster
		// is then not shown by a preview; the consumer check reports drift
		// in the fields the patches set.
		"PULUMI_ENABLE_LEGACY_DIFF": "true",
		"PULUMI_BACKEND_URL":        withDefault(os.Getenv("PULUMI_BACKEND_URL"), "file://"+backendDir),
	}
	if opts.Kubeconfig != "" {
		env["KUBECONFIG"] = opts.Kubeconfig
	}
	if err := passphrase(opts, env); err != nil {
		return nil, err
	}

	random, err := InstallPlugins(ctx, filepath.Join(opts.ToolsDir, "bin"), pulumiHome, env)
	if err != nil {
		return nil, err
	}

	stack, err := auto.UpsertStackInlineSource(ctx, opts.Stack, jwtstack.Project, opts.Program,
		auto.WorkDir(opts.WorkDir),
		auto.PulumiHome(pulumiHome),
		auto.Pulumi(command),
		auto.EnvVars(env),
		auto.SecretsProvider("passphrase"),
	)
	if err != nil {
		return nil, explain(opts.Stack, fmt.Errorf("unable to select stack %q: %w", opts.Stack, err))
	}
	return &Driver{opts: opts, Stack: stack, Random: random, env: env}, nil
}

// localWorkDir returns the work directory of the local stack in
// StateDir. The first call copies the repository's Pulumi.local.yaml there,
// and later calls keep that copy, so config set on the local stack and its
// per-machine encryption salt stay out of the repository. Pulumi.yaml is
// copied every time, because it belongs to the code.
func localWorkDir(repoRoot, stateDir string) (string, error) {
	workDir := filepath.Join(stateDir, "local-workdir")
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return "", fmt.Errorf("unable to create %s: %w", workDir, err)
	}
	project, err := os.ReadFile(filepath.Join(repoRoot, "Pulumi.yaml"))
	if err != nil {
		return "", fmt.Errorf("unable to read Pulumi.yaml: %w", err)
	}
	if err := os.WriteFile(filepath.Join(workDir, "Pulumi.yaml"), project, 0o600); err != nil {
		return "", fmt.Errorf("unable to write the local work directory: %w", err)
	}

	stackFile := filepath.Join(workDir, "Pulumi.local.yaml")
	if _, err := os.Stat(stackFile); errors.Is(err, fs.ErrNotExist) {
		initial, err := os.ReadFile(filepath.Join(repoRoot, "Pulumi.local.yaml"))
		if err != nil {
			return "", fmt.Errorf("unable to read Pulumi.local.yaml: %w", err)
		}
		if err := os.WriteFile(stackFile, initial, 0o600); err != nil {
			return "", fmt.Errorf("unable to write the local work directory: %w", err)
		}
	}
	return workDir, nil
}

// SetConfig sets a config value of the stack. key may omit the project's
// namespace.
func (d *Driver) SetConfig(ctx context.Context, key, value string, secret bool) error {
	if !strings.Contains(key, ":") {
		key = jwtstack.FullKey(key)
	}
	if err := d.Stack.SetConfig(ctx, key, auto.ConfigValue{Value: value, Secret: secret}); err != nil {
		return explain(d.opts.Stack, fmt.Errorf("unable to set %s on stack %q: %w", key, d.opts.Stack, err))
	}
	return nil
}

// WorkDir returns the folder with the stack's Pulumi.yaml and stack file.
func (d *Driver) WorkDir() string {
	return d.opts.WorkDir
}

// passphrase sets how the stack's secrets are encrypted. A passphrase or
// passphrase file in the environment wins. The local stack otherwise gets a
// random passphrase kept in StateDir, because its cluster is throwaway
// too; other stacks must be given one.
func passphrase(opts Options, env map[string]string) error {
	if os.Getenv("PULUMI_CONFIG_PASSPHRASE") != "" || os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") != "" {
		return nil
	}
	if opts.Stack != LocalStack {
		return fmt.Errorf("unable to open stack %q: no passphrase; export PULUMI_CONFIG_PASSPHRASE_FILE=<file with the stack's passphrase> (or PULUMI_CONFIG_PASSPHRASE) and run again", opts.Stack)
	}

	file := filepath.Join(opts.StateDir, "local-passphrase")
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		random := make([]byte, 32)
		if _, err := rand.Read(random); err != nil {
			return fmt.Errorf("unable to generate the local passphrase: %w", err)
		}
		if err := os.WriteFile(file, []byte(hex.EncodeToString(random)), 0o600); err != nil {
			return fmt.Errorf("unable to write the local passphrase %s: %w", file, err)
		}
	}
	env["PULUMI_CONFIG_PASSPHRASE_FILE"] = file
	return nil
}

// Preview runs `pulumi preview` and returns the change summary.
func (d *Driver) Preview(ctx context.Context, opts ...optpreview.Option) (auto.PreviewResult, error) {
	opts = append([]optpreview.Option{optpreview.ProgressStreams(d.opts.Progress), optpreview.ErrorProgressStreams(d.opts.Progress)}, opts...)
	result, err := d.Stack.Preview(ctx, opts...)
	return result, explain(d.opts.Stack, err)
}

// Up runs `pulumi up`. On the local stack it refreshes first when the
// cluster lacks the deployed Secret, because each start of the local
// control plane begins with an empty cluster.
func (d *Driver) Up(ctx context.Context, opts ...optup.Option) (auto.UpResult, error) {
	opts = append([]optup.Option{optup.ProgressStreams(d.opts.Progress), optup.ErrorProgressStreams(d.opts.Progress)}, opts...)
	if d.opts.Stack == LocalStack && d.opts.RefreshLocal && d.clusterLostState(ctx) {
		opts = append(opts, optup.Refresh())
	}
	result, err := d.Stack.Up(ctx, opts...)
	return result, explain(d.opts.Stack, err)
}

// Destroy runs `pulumi destroy`.
func (d *Driver) Destroy(ctx context.Context, opts ...optdestroy.Option) error {
	opts = append([]optdestroy.Option{optdestroy.ProgressStreams(d.opts.Progress), optdestroy.ErrorProgressStreams(d.opts.Progress)}, opts...)
	_, err := d.Stack.Destroy(ctx, opts...)
	return explain(d.opts.Stack, err)
}

// Outputs returns the stack outputs.
func (d *Driver) Outputs(ctx context.Context) (auto.OutputMap, error) {
	outputs, err := d.Stack.Outputs(ctx)
	return outputs, explain(d.opts.Stack, err)
}

func withDefault(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

// clusterLostState reports whether the stack has been deployed but its
// Secret is missing from the cluster.
func (d *Driver) clusterLostState(ctx context.Context) bool {
	outputs, err := d.Stack.Outputs(ctx)
	if err != nil || len(outputs) == 0 {
		return false
	}
	clients, err := newClientset(d.opts.Kubeconfig)
	if err != nil {
		return false
	}
	namespace, _ := outputs["namespace"].Value.(string)
	secretName, _ := outputs["secretName"].Value.(string)
	_, err = clients.CoreV1().Secrets(namespace).Get(ctx, secretName, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

// CLI runs the Pulumi CLI on the stack with the driver's environment, for
// commands the Automation API lacks, such as `state unprotect`.
func (d *Driver) CLI(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--stack", d.opts.Stack, "--non-interactive")
	cmd := exec.CommandContext(ctx, filepath.Join(d.opts.ToolsDir, "bin", "pulumi"), args...)
	cmd.Dir = d.opts.WorkDir
	cmd.Env = append(os.Environ(), "PULUMI_HOME="+filepath.Join(d.opts.StateDir, "pulumi-home"))
	for k, v := range d.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	output, err := cmd.CombinedOutput()
	if err != nil {
		return string(output), explain(d.opts.Stack, fmt.Errorf("pulumi %s failed: %w\n%s", strings.Join(args, " "), err, output))
	}
	return string(output), nil
}
