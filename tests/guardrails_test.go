package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// clusterSnapshot returns the names and resource versions of every object
// the program could touch in the juwan namespace.
func clusterSnapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	list := metav1.ListOptions{}
	objects := map[string]string{}

	secrets, err := cluster.clients.CoreV1().Secrets("juwan").List(ctx, list)
	require.NoError(t, err)
	for _, o := range secrets.Items {
		objects["Secret/"+o.Name] = o.ResourceVersion
	}
	accounts, err := cluster.clients.CoreV1().ServiceAccounts("juwan").List(ctx, list)
	require.NoError(t, err)
	for _, o := range accounts.Items {
		objects["ServiceAccount/"+o.Name] = o.ResourceVersion
	}
	roles, err := cluster.clients.RbacV1().Roles("juwan").List(ctx, list)
	require.NoError(t, err)
	for _, o := range roles.Items {
		objects["Role/"+o.Name] = o.ResourceVersion
	}
	bindings, err := cluster.clients.RbacV1().RoleBindings("juwan").List(ctx, list)
	require.NoError(t, err)
	for _, o := range bindings.Items {
		objects["RoleBinding/"+o.Name] = o.ResourceVersion
	}
	deployments, err := cluster.clients.AppsV1().Deployments("juwan").List(ctx, list)
	require.NoError(t, err)
	for _, o := range deployments.Items {
		// The controller updates status; the spec generation is what a
		// patch would change.
		objects["Deployment/"+o.Name] = fmt.Sprint(o.Generation)
	}
	encoded, err := json.Marshal(objects)
	require.NoError(t, err)
	return string(encoded)
}

// TestBadConfigsFailPreview runs a real preview of each bad stack config:
// every one fails before anything changes, naming the key, the value and
// the fix.
func TestBadConfigsFailPreview(t *testing.T) {
	resetBackend(t)
	const ns = "juwan-jwt-secret:"
	consumer := func(fields string) string {
		return ns + `consumers: [{"deployment":"user-rpc","container":"user-rpc",` + fields + `}]`
	}
	prod := ns + "protect: true\n" + ns + "maxKeyAgeDays: 90\n" + ns + `keyRotatedAt: "2026-12-01"`
	cases := []struct {
		name   string
		stack  string
		config string
		want   []string
	}{
		{"key too short", "dev", ns + "keyLength: 16", []string{`keyLength: invalid value "16"`, "RFC 7518", "pulumi config set juwan-jwt-secret:keyLength 64"}},
		{"key too long", "dev", ns + "keyLength: 4096", []string{`keyLength: invalid value "4096"`, "fix:"}},
		{"key length wrong type", "dev", ns + "keyLength: long", []string{"keyLength", "integer"}},
		{"generation zero", "dev", ns + "keyGeneration: 0", []string{`keyGeneration: invalid value "0"`, "pulumi config set juwan-jwt-secret:keyGeneration 1"}},
		{"generation negative", "dev", ns + "keyGeneration: -2", []string{`keyGeneration: invalid value "-2"`}},
		{"namespace not DNS-1123", "dev", ns + "namespace: Juwan_Prod", []string{`namespace: invalid value "Juwan_Prod"`, "DNS-1123 label"}},
		{"secret name not DNS-1123", "dev", ns + "secretName: JWT", []string{`secretName: invalid value "JWT"`, "DNS-1123 subdomain"}},
		{"role name not DNS-1123", "dev", ns + "roleName: reader!", []string{`roleName: invalid value "reader!"`}},
		{"protect wrong type", "dev", ns + "protect: sometimes", []string{"protect", "boolean"}},
		{"consumers wrong type", "dev", ns + "consumers: user-rpc", []string{"consumers", "array"}},
		{"consumer without container", "dev", ns + `consumers: [{"deployment":"user-rpc","env":{"current":"K"}}]`, []string{"consumers[0].container", "is missing"}},
		{"consumer without binding", "dev", consumer(`"serviceAccount":"user-rpc"`), []string{"consumers[0].env", "needs env, mount or both"}},
		{"consumer unknown field", "dev", consumer(`"env":{"current":"K"},"sidecar":true`), []string{`unknown field "sidecar"`, "known fields are"}},
		{"consumer duplicate", "dev", ns + `consumers: [{"deployment":"user-rpc","container":"user-rpc","env":{"current":"A"}},{"deployment":"user-rpc","container":"user-rpc","env":{"current":"B"}}]`,
			[]string{`consumers[1].deployment: invalid value "user-rpc": duplicate of consumers[0]`}},
		{"consumer env name invalid", "dev", consumer(`"env":{"current":"JWT-KEY"}`), []string{`env.current: invalid value "JWT-KEY"`}},
		{"mount mode world readable", "dev", consumer(`"mount":{"path":"/etc/jwt","mode":"0644"}`), []string{`mount.mode: invalid value "0644"`, "0440"}},
		{"mount mode above 0777", "dev", consumer(`"mount":{"path":"/etc/jwt","mode":"01000"}`), []string{`mount.mode: invalid value "01000"`, "0000 to 0777"}},
		{"mount mode unquoted", "dev", consumer(`"mount":{"path":"/etc/jwt","mode":400}`), []string{"mount.mode must be a quoted octal string"}},
		{"mount path relative", "dev", consumer(`"mount":{"path":"etc/jwt"}`), []string{`mount.path: invalid value "etc/jwt"`}},
		{"container not in Deployment", "dev", ns + `consumers: [{"deployment":"user-rpc","container":"api","env":{"current":"K"}}]`,
			[]string{`consumers[0].container: Deployment juwan/user-rpc has no container "api"`, "use one of its containers"}},
		{"consumer Deployment missing", "dev", ns + `consumers: [{"deployment":"billing","container":"app","env":{"current":"K"}}]`,
			[]string{"consumers[0].deployment: Deployment juwan/billing not found", "set optional: true"}},
		{"unknown key", "dev", ns + "keyGenration: 2", []string{"juwan-jwt-secret:keyGenration: unknown config key", "rename it to juwan-jwt-secret:keyGeneration"}},
		{"rotation day in future", "dev", ns + `keyRotatedAt: "2027-06-01"`, []string{`keyRotatedAt: invalid value "2027-06-01": is in the future`}},
		{"prod without protection", "prod", ns + "maxKeyAgeDays: 90\n" + ns + `keyRotatedAt: "2026-12-01"`, []string{`protect: invalid value "false"`, "pulumi config set juwan-jwt-secret:protect true"}},
		{"prod without key age policy", "prod", ns + "protect: true\n" + ns + `keyRotatedAt: "2026-12-01"`, []string{`maxKeyAgeDays: invalid value "0"`}},
		{"prod key overdue", "prod", prod + "\n" + ns + "maxKeyAgeDays: 1", []string{"days old", "pulumi config set juwan-jwt-secret:keyGeneration 2"}},
	}
	// The duplicate key in "prod key overdue" is the point: the later
	// value wins in YAML, so the policy is 1 day.
	cases[len(cases)-1].config = strings.Replace(cases[len(cases)-1].config, ns+"maxKeyAgeDays: 90\n", "", 1)

	before := clusterSnapshot(t)
	w := newWorkspace(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stack := fmt.Sprintf("bad-%d", i)
			if c.stack == "prod" {
				stack = fmt.Sprintf("prod-bad-%d", i)
			}
			stackFile := filepath.Join(w.dir, "Pulumi."+stack+".yaml")
			require.NoError(t, os.WriteFile(stackFile, []byte("config:\n  "+strings.ReplaceAll(c.config, "\n", "\n  ")+"\n"), 0o600))

			d := w.open(t, stack, runbookNow)
			_, err := d.Preview(runContext(t))
			require.Error(t, err)
			for _, want := range c.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
	assert.Equal(t, before, clusterSnapshot(t), "a rejected preview must leave the cluster unchanged")
}
