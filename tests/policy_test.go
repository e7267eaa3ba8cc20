package tests

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/juwan/jwt-secret/internal/driver"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPolicyPackPassesProgram previews the dev and prod stacks with the
// policy pack in policy/, built from source like any package under test,
// so the pack's rules are checked against the resources the program
// really registers.
func TestPolicyPackPassesProgram(t *testing.T) {
	resetBackend(t)
	pack := filepath.Join(t.TempDir(), "juwan-jwt-secret-policy")
	build := exec.Command("go", "-C", filepath.Join(cluster.repoRoot, "policy"), "build", "-o", pack, ".")
	output, err := build.CombinedOutput()
	require.NoError(t, err, "unable to build the policy pack: %s", output)

	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			w := newWorkspace(t, "Pulumi."+stack+".yaml")
			now := runbookNow
			if stack == "prod" {
				cfg, err := readStackConfig(filepath.Join(w.dir, "Pulumi.prod.yaml"))
				require.NoError(t, err)
				rotatedAt, err := time.Parse(time.DateOnly, cfg["juwan-jwt-secret:keyRotatedAt"])
				require.NoError(t, err)
				now = rotatedAt.Add(24 * time.Hour)
			}
			d := w.open(t, stack, now)
			_, err := d.Preview(runContext(t), optpreview.PolicyPacks(pack))
			require.NoError(t, err, "the program's resources must pass every policy")
			assert.Contains(t, w.output.String(), "juwan-jwt-secret-production", "the pack ran")
			assert.NotContains(t, w.output.String(), "mandatory", "no policy violation")
		})
	}

	// The same pack stops a program that grants list on Secrets.
	t.Run("broad Role is rejected", func(t *testing.T) {
		w := newWorkspace(t)
		w.writeStackFile(t, "policy-check")
		d, err := driver.Open(runContext(t), driver.Options{
			RepoRoot: cluster.repoRoot, ToolsDir: cluster.toolsDir, StateDir: w.stateDir, WorkDir: w.dir,
			Stack: "policy-check", Kubeconfig: cluster.Kubeconfig, Progress: w.output,
			Program: func(ctx *pulumi.Context) error {
				_, err := rbacv1.NewRole(ctx, "too-broad", &rbacv1.RoleArgs{
					Metadata: &metav1.ObjectMetaArgs{Namespace: pulumi.String("juwan")},
					Rules: rbacv1.PolicyRuleArray{&rbacv1.PolicyRuleArgs{
						ApiGroups: pulumi.StringArray{pulumi.String("")},
						Resources: pulumi.StringArray{pulumi.String("secrets")},
						Verbs:     pulumi.StringArray{pulumi.String("get"), pulumi.String("list")},
					}},
				})
				return err
			},
		})
		require.NoError(t, err)
		_, err = d.Preview(runContext(t), optpreview.PolicyPacks(pack))
		require.Error(t, err, "a mandatory policy violation fails the preview")
		assert.Contains(t, w.output.String(), "rbac-secret-rules-use-resource-names")
		assert.Contains(t, w.output.String(), "rbac-secret-rules-no-list-watch")
	})
}
