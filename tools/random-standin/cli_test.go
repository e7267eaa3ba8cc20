package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/pulumi/pulumi-random/sdk/v4/go/random"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// cliTestEnv turns on the end-to-end test with the real Pulumi CLI. It is
// off by default because it builds the plugin and runs several deployments.
const cliTestEnv = "RANDOM_STANDIN_CLI_TEST"

// findPulumiCLI returns the Pulumi CLI to test with: $RANDOM_STANDIN_PULUMI,
// else the repository's pinned build in .tools/bin, else pulumi on PATH.
func findPulumiCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RANDOM_STANDIN_PULUMI"); p != "" {
		return p
	}
	if abs, err := filepath.Abs(filepath.Join("..", "..", ".tools", "bin", "pulumi")); err == nil {
		if _, err := os.Stat(abs); err == nil {
			return abs
		}
	}
	if p, err := exec.LookPath("pulumi"); err == nil {
		return p
	}
	t.Skip("no Pulumi CLI found: build it with tools/build.sh pulumi, or set RANDOM_STANDIN_PULUMI")
	return ""
}

// passwordProgram is the inline program: one RandomPassword whose keepers
// come from the stack config value "generation", as the project rotates its
// key. The config value "length" (default 48) lets the test feed Check an
// invalid value.
func passwordProgram(ctx *pulumi.Context) error {
	generation := config.Require(ctx, "generation")
	length, err := config.TryInt(ctx, "length")
	if err != nil {
		length = 48
	}
	pw, err := random.NewRandomPassword(ctx, "jwt-key", &random.RandomPasswordArgs{
		Length:     pulumi.Int(length),
		Special:    pulumi.Bool(false),
		MinUpper:   pulumi.Int(2),
		MinLower:   pulumi.Int(2),
		MinNumeric: pulumi.Int(2),
		Keepers:    pulumi.StringMap{"generation": pulumi.String(generation)},
	})
	if err != nil {
		return err
	}
	ctx.Export("result", pw.Result)
	ctx.Export("bcryptHash", pw.BcryptHash)
	ctx.Export("passwordId", pw.ID())
	return nil
}

// TestRealPulumiCLI installs the built stand-in into a throwaway Pulumi home
// and runs the inline program through the Automation API and the real CLI.
// The steps are preview, up, up again with no change, refresh, a keeper
// change that replaces the password, destroy, and a preview that Check
// rejects. Everything stays in temporary folders
// and a file backend; no network is used.
func TestRealPulumiCLI(t *testing.T) {
	if os.Getenv(cliTestEnv) != "1" {
		t.Skipf("set %s=1 to run the end-to-end test with the real Pulumi CLI", cliTestEnv)
	}
	cli := findPulumiCLI(t)
	bin := standInBinary(t)

	home, backend := t.TempDir(), t.TempDir()
	env := map[string]string{
		"PULUMI_HOME":                                 home,
		"PULUMI_BACKEND_URL":                          "file://" + backend,
		"PULUMI_CONFIG_PASSPHRASE":                    "test",
		"PULUMI_SKIP_UPDATE_CHECK":                    "true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
	}
	install := exec.Command(cli, "plugin", "install", "resource", "random", "v4.19.0", "--file", bin)
	install.Env = os.Environ()
	for k, v := range env {
		install.Env = append(install.Env, k+"="+v)
	}
	out, err := install.CombinedOutput()
	require.NoError(t, err, "pulumi plugin install failed:\n%s", out)

	// NewPulumiCommand takes the folder above bin/; the symlinked pinned
	// build in .tools/bin is used through its own path.
	t.Setenv("PATH", filepath.Dir(cli)+string(os.PathListSeparator)+os.Getenv("PATH"))
	pulumiCmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stack, err := auto.UpsertStackInlineSource(ctx, "standin", "random-standin-cli-test", passwordProgram,
		auto.Pulumi(pulumiCmd), auto.PulumiHome(home), auto.EnvVars(env), auto.WorkDir(t.TempDir()),
		auto.SecretsProvider("passphrase"))
	require.NoError(t, err)
	require.NoError(t, stack.SetConfig(ctx, "generation", auto.ConfigValue{Value: "1"}))

	preview, err := stack.Preview(ctx)
	require.NoError(t, err, "preview failed:\n%s", preview.StdErr)
	assert.Equal(t, 2, preview.ChangeSummary[apitype.OpCreate], "preview: %v", preview.ChangeSummary)
	t.Logf("first preview:\n%s", preview.StdOut)

	first, err := stack.Up(ctx)
	require.NoError(t, err, "first up failed:\n%s", first.StdErr)
	t.Logf("first up:\n%s", first.StdOut)
	assert.Equal(t, map[string]int{"create": 2}, *first.Summary.ResourceChanges)
	result := first.Outputs["result"]
	require.True(t, result.Secret, "result must reach the stack as a secret")
	key := result.Value.(string)
	assert.Len(t, key, 48)
	hash := first.Outputs["bcryptHash"]
	require.True(t, hash.Secret, "bcryptHash must reach the stack as a secret")
	assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash.Value.(string)), []byte(key)))
	assert.Equal(t, "none", first.Outputs["passwordId"].Value)
	assert.NotContains(t, first.StdOut, key, "the key must not be printed")
	assert.Contains(t, first.StdOut+first.StdErr, "STAND-IN", "the run must say that it used the stand-in")

	// Stack.Export shows secrets, so the stored state file is read instead.
	assertStateEncrypts(t, backend, key)

	again, err := stack.Up(ctx)
	require.NoError(t, err, "second up failed:\n%s", again.StdErr)
	assert.Equal(t, map[string]int{"same": 2}, *again.Summary.ResourceChanges, "a second up must change nothing")
	assert.Equal(t, key, again.Outputs["result"].Value)

	refresh, err := stack.Refresh(ctx)
	require.NoError(t, err, "refresh failed:\n%s", refresh.StdErr)
	assert.Equal(t, map[string]int{"same": 2}, *refresh.Summary.ResourceChanges, "refresh must keep the stored password")

	require.NoError(t, stack.SetConfig(ctx, "generation", auto.ConfigValue{Value: "2"}))
	rotatePreview, err := stack.Preview(ctx)
	require.NoError(t, err, "rotation preview failed:\n%s", rotatePreview.StdErr)
	assert.Equal(t, 1, rotatePreview.ChangeSummary[apitype.OpReplace], "preview: %v", rotatePreview.ChangeSummary)
	t.Logf("rotation preview:\n%s", rotatePreview.StdOut)

	rotated, err := stack.Up(ctx)
	require.NoError(t, err, "rotation up failed:\n%s", rotated.StdErr)
	t.Logf("rotation up:\n%s", rotated.StdOut)
	assert.Equal(t, map[string]int{"replace": 1, "same": 1}, *rotated.Summary.ResourceChanges)
	newKey := rotated.Outputs["result"].Value.(string)
	assert.Len(t, newKey, 48)
	assert.NotEqual(t, key, newKey, "a keeper change must give a new password")
	assert.True(t, rotated.Outputs["result"].Secret)

	destroyed, err := stack.Destroy(ctx)
	require.NoError(t, err, "destroy failed:\n%s", destroyed.StdErr)
	assert.Equal(t, map[string]int{"delete": 2}, *destroyed.Summary.ResourceChanges)
	t.Logf("destroy:\n%s", destroyed.StdOut)

	// Check's failures reach the user through the CLI and stop the preview.
	require.NoError(t, stack.SetConfig(ctx, "length", auto.ConfigValue{Value: "3"}))
	invalid, err := stack.Preview(ctx)
	require.Error(t, err, "a preview with length 3 below the minimums must fail")
	assert.Contains(t, invalid.StdOut+invalid.StdErr+err.Error(),
		"length is 3 but minUpper+minLower+minNumeric+minSpecial is 6: raise length to at least 6 or lower the minimums")
	t.Logf("invalid preview error:\n%v", err)

	require.NoError(t, stack.Workspace().RemoveStack(ctx, "standin"))
	assert.False(t, strings.Contains(destroyed.StdOut, newKey), "the rotated key must not be printed")
}

// assertStateEncrypts checks that the file backend's stack state holds the
// secret outputs as ciphertext and never the key itself.
func assertStateEncrypts(t *testing.T, backend, key string) {
	t.Helper()
	var states []string
	err := filepath.WalkDir(filepath.Join(backend, ".pulumi", "stacks"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		states = append(states, path)
		assert.NotContains(t, string(data), key, "state file %s holds the key in plain text", path)
		assert.Contains(t, string(data), "ciphertext", "state file %s holds no encrypted secret", path)
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, states, "no stack state file under %s", backend)
}
