package tests

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRepoStackFiles runs the repository's own dev and prod stack files on
// the local control plane, so a broken stack file fails CI.
func TestRepoStackFiles(t *testing.T) {
	ctx := runContext(t)
	resetBackend(t)

	t.Run("dev up and destroy", func(t *testing.T) {
		w := newWorkspace(t, "Pulumi.dev.yaml")
		d := w.open(t, "dev", runbookNow)
		_, err := d.Preview(runContext(t))
		require.NoError(t, err)
		_, err = d.Up(runContext(t))
		require.NoError(t, err)
		assert.Equal(t, "user-rpc", getDeployment(t, "user-rpc").Spec.Template.Spec.ServiceAccountName)
		require.NoError(t, d.Destroy(runContext(t)))
	})

	t.Run("prod up is protected", func(t *testing.T) {
		// Measure the key age on the day the stack file records, so this
		// test does not fail once the committed key is older than allowed.
		w := newWorkspace(t, "Pulumi.prod.yaml")
		cfg, err := readStackConfig(w.dir + "/Pulumi.prod.yaml")
		require.NoError(t, err)
		rotatedAt, err := time.Parse(time.DateOnly, cfg["juwan-jwt-secret:keyRotatedAt"])
		require.NoError(t, err, "Pulumi.prod.yaml must set keyRotatedAt")

		d := w.open(t, "prod", rotatedAt.Add(24*time.Hour))
		_, err = d.Up(runContext(t))
		require.NoError(t, err)
		secret := getSecret(t)
		assert.Len(t, secret.Data["secret-key"], 64)

		err = d.Destroy(runContext(t))
		require.Error(t, err, "destroy must refuse to delete the protected key")
		assert.Contains(t, err.Error(), "protect")
		_, err = cluster.clients.CoreV1().Secrets("juwan").Get(ctx, "jwt-secret", metav1.GetOptions{})
		require.NoError(t, err, "the protected Secret must survive the refused destroy")

		// The documented way to retire a production stack.
		_, err = d.CLI(runContext(t), "state", "unprotect", "--all", "--yes")
		require.NoError(t, err)
		require.NoError(t, d.Destroy(runContext(t)))
	})
}
