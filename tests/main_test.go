// Package tests runs the stack for real: the Pulumi CLI and the Kubernetes
// provider built by tools/build.sh, driven through the Automation API,
// against a control plane on 127.0.0.1 that the tests start and stop.
package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/juwan/jwt-secret/internal/controlplane"
	"github.com/juwan/jwt-secret/internal/repo"
	"k8s.io/client-go/kubernetes"
)

// cluster is the control plane that every test in this package shares.
var cluster struct {
	*controlplane.Cluster
	clients  *kubernetes.Clientset
	repoRoot string
	toolsDir string
}

// Time limits. A cold start of the control plane takes about 15 s on a
// 2-core machine, and a rollout under kwok a few seconds.
const (
	clusterStartTimeout = 3 * time.Minute
	stackRunTimeout     = 5 * time.Minute
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := repo.FindRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cluster.repoRoot = root
	cluster.toolsDir = filepath.Join(root, ".tools")

	// The tools are built by tools/build.sh (make test runs it), never here.
	for _, binary := range []string{"pulumi", "pulumi-resource-kubernetes", "pulumi-resource-random", "kube-apiserver", "etcd", "kwok"} {
		if _, err := os.Stat(filepath.Join(cluster.toolsDir, "bin", binary)); err != nil {
			fmt.Fprintf(os.Stderr, "end-to-end tests: %s is missing from %s/bin; build the pinned tools with: bash tools/build.sh\n", binary, cluster.toolsDir)
			return 1
		}
	}

	stateDir, err := os.MkdirTemp("", "jwt-e2e-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(stateDir)

	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	started := time.Now()
	c, err := controlplane.Start(ctx, controlplane.Options{ToolsDir: cluster.toolsDir, StateDir: stateDir, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "end-to-end tests: unable to start the control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "end-to-end tests: unable to stop the control plane: %v\n", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "control plane ready in %s\n", time.Since(started).Round(100*time.Millisecond))
	cluster.Cluster = c

	cluster.clients, err = kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
