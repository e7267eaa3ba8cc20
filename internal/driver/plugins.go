package driver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Plugin versions that match the pinned SDKs in go.mod.
const (
	KubernetesPluginVersion = "4.25.0"
	RandomPluginVersion     = "4.19.0"
)

// PluginSource is the origin of the random provider plugin.
type PluginSource string

// The random provider plugin is the real one when a Pulumi plugin cache on
// this machine has it, else the stand-in that tools/random-standin builds.
const (
	RandomPluginReal    PluginSource = "pulumi-resource-random v" + RandomPluginVersion
	RandomPluginStandIn PluginSource = "stand-in for pulumi-resource-random (tools/random-standin)"
)

// InstallPlugins installs the Kubernetes provider plugin and a random
// provider plugin into pulumiHome's plugin cache. It reinstalls a plugin
// only when its source binary changed.
func InstallPlugins(ctx context.Context, binDir, pulumiHome string, env map[string]string) (PluginSource, error) {
	kubernetes := filepath.Join(binDir, "pulumi-resource-kubernetes")
	if err := installPlugin(ctx, binDir, pulumiHome, env, "kubernetes", KubernetesPluginVersion, kubernetes); err != nil {
		return "", err
	}

	source, random := RandomPluginStandIn, filepath.Join(binDir, "pulumi-resource-random")
	if real := findRealRandomPlugin(pulumiHome, random); real != "" {
		source, random = RandomPluginReal, real
	}
	if err := installPlugin(ctx, binDir, pulumiHome, env, "random", RandomPluginVersion, random); err != nil {
		return "", err
	}
	return source, nil
}

// findRealRandomPlugin returns the real random plugin from the user's own
// Pulumi plugin cache, or "" if it is not installed there. The driver's
// own Pulumi home and a copy of the stand-in do not count.
func findRealRandomPlugin(driverHome, standIn string) string {
	home := os.Getenv("PULUMI_HOME")
	if home == "" {
		userHome, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		home = filepath.Join(userHome, ".pulumi")
	}
	if sameDir(home, driverHome) {
		return ""
	}
	candidate := filepath.Join(home, "plugins", "resource-random-v"+RandomPluginVersion, "pulumi-resource-random")
	if _, err := os.Stat(candidate); err != nil {
		return ""
	}
	if sameContent(candidate, standIn) {
		return ""
	}
	return candidate
}

func sameDir(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// sameContent reports whether two files have the same bytes.
func sameContent(a, b string) bool {
	contentA, errA := os.ReadFile(a)
	contentB, errB := os.ReadFile(b)
	return errA == nil && errB == nil && bytes.Equal(contentA, contentB)
}

func installPlugin(ctx context.Context, binDir, pulumiHome string, env map[string]string, name, version, binary string) error {
	info, err := os.Stat(binary)
	if err != nil {
		return fmt.Errorf("unable to install the %s plugin: %s is missing; build it with tools/build.sh", name, binary)
	}
	resolved, err := filepath.EvalSymlinks(binary)
	if err != nil {
		return fmt.Errorf("unable to resolve %s: %w", binary, err)
	}
	stamp := []byte(fmt.Sprintf("%s %d %d\n", resolved, info.Size(), info.ModTime().UnixNano()))
	stampFile := filepath.Join(pulumiHome, "plugins", fmt.Sprintf(".resource-%s-v%s.source", name, version))
	installed := filepath.Join(pulumiHome, "plugins", fmt.Sprintf("resource-%s-v%s", name, version))
	if previous, err := os.ReadFile(stampFile); err == nil && bytes.Equal(previous, stamp) {
		if _, err := os.Stat(installed); err == nil {
			return nil
		}
	}

	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "pulumi"), "plugin", "install", "resource", name, version, "--file", resolved, "--reinstall")
	cmd.Env = append(os.Environ(), "PULUMI_HOME="+pulumiHome)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("unable to install the %s plugin v%s from %s: %w\n%s", name, version, resolved, err, output)
	}
	if err := os.WriteFile(stampFile, stamp, 0o600); err != nil {
		return fmt.Errorf("unable to record the %s plugin install: %w", name, err)
	}
	return nil
}
