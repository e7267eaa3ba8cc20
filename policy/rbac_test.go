package main

import (
	"fmt"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
	"github.com/stretchr/testify/assert"
)

const (
	roleType        = "kubernetes:rbac.authorization.k8s.io/v1:Role"
	clusterRoleType = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
)

// roleJSON returns the properties of a Role in namespace juwan, or of a
// ClusterRole, named name with the given rules.
func roleJSON(kind, name, rulesJSON string) string {
	metadata := fmt.Sprintf(`{"name": %q, "namespace": "juwan"}`, name)
	if kind == "ClusterRole" {
		metadata = fmt.Sprintf(`{"name": %q}`, name)
	}
	return fmt.Sprintf(`{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": %q, "metadata": %s, "rules": %s}`,
		kind, metadata, rulesJSON)
}

type rbacCase struct {
	name      string
	typeToken string
	props     string
	want      []string
}

func runRBACCases(t *testing.T, newPolicy func() policyx.ResourceValidationPolicy, cases []rbacCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := engineResource(t, tc.typeToken, "reader", tc.props, false)
			assert.Equal(t, tc.want, validate(t, newPolicy(), res))
		})
	}
}

func TestSecretRulesNamedProgramRole(t *testing.T) {
	res := engineResource(t, roleType, "jwt-access-role", fixture(t, "role-jwt-secret-reader.json"), false)
	assert.Empty(t, validate(t, NewSecretRulesNamedPolicy(), res))
}

func TestSecretRulesNamed(t *testing.T) {
	runRBACCases(t, NewSecretRulesNamedPolicy, []rbacCase{
		{
			name:      "get without resourceNames",
			typeToken: roleType,
			props:     roleJSON("Role", "wide-reader", `[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]`),
			want: []string{`Role juwan/wide-reader (Pulumi resource "reader"): rules[0] allows get on Secrets ` +
				`without resourceNames, so it grants every Secret in namespace "juwan". ` +
				`Fix: set resourceNames to the Secrets the subjects need, for example ["jwt-secret"] with verbs ["get"].`},
		},
		{
			name:      "empty resourceNames",
			typeToken: roleType,
			props: roleJSON("Role", "wide-reader",
				`[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": []}]`),
			want: []string{`Role juwan/wide-reader (Pulumi resource "reader"): rules[0] allows get on Secrets ` +
				`without resourceNames, so it grants every Secret in namespace "juwan". ` +
				`Fix: set resourceNames to the Secrets the subjects need, for example ["jwt-secret"] with verbs ["get"].`},
		},
		{
			name:      "wildcards in a ClusterRole",
			typeToken: clusterRoleType,
			props: roleJSON("ClusterRole", "admin-ish",
				`[{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
				  {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "update"]}]`),
			want: []string{`ClusterRole admin-ish (Pulumi resource "reader"): rules[1] allows get, update on Secrets ` +
				`without resourceNames, so it grants every Secret in every namespace it is bound in ` +
				`(all of them through a ClusterRoleBinding). ` +
				`Fix: set resourceNames to the Secrets the subjects need, for example ["jwt-secret"] with verbs ["get"].`},
		},
		{
			name:      "RolePatch",
			typeToken: "kubernetes:rbac.authorization.k8s.io/v1:RolePatch",
			props:     roleJSON("Role", "patched", `[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}]`),
			want: []string{`RolePatch juwan/patched (Pulumi resource "reader"): rules[0] allows delete on Secrets ` +
				`without resourceNames, so it grants every Secret in namespace "juwan". ` +
				`Fix: set resourceNames to the Secrets the subjects need, for example ["jwt-secret"] with verbs ["get"].`},
		},
		{
			name:      "older RBAC API version",
			typeToken: "kubernetes:rbac.authorization.k8s.io/v1beta1:Role",
			props:     roleJSON("Role", "legacy", `[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]`),
			want: []string{`Role juwan/legacy (Pulumi resource "reader"): rules[0] allows get on Secrets ` +
				`without resourceNames, so it grants every Secret in namespace "juwan". ` +
				`Fix: set resourceNames to the Secrets the subjects need, for example ["jwt-secret"] with verbs ["get"].`},
		},
		{
			name:      "get with resourceNames",
			typeToken: roleType,
			props: roleJSON("Role", "narrow",
				`[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["jwt-secret"]}]`),
		},
		{
			name:      "create only",
			typeToken: roleType,
			props:     roleJSON("Role", "creator", `[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]`),
		},
		{
			name:      "other resources",
			typeToken: roleType,
			props:     roleJSON("Role", "config", `[{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list"]}]`),
		},
		{
			name:      "other API group",
			typeToken: roleType,
			props:     roleJSON("Role", "apps", `[{"apiGroups": ["apps"], "resources": ["secrets"], "verbs": ["get"]}]`),
		},
		{
			name:      "unknown resourceNames in preview",
			typeToken: roleType,
			props: roleJSON("Role", "pending",
				`[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [`+unknownJSON+`]}]`),
		},
		{
			name:      "RoleBinding",
			typeToken: "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
			props:     `{"roleRef": {"kind": "Role", "name": "wide-reader"}, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}`,
		},
	})
}

func TestSecretRulesNoListProgramRole(t *testing.T) {
	res := engineResource(t, roleType, "jwt-access-role", fixture(t, "role-jwt-secret-reader.json"), false)
	assert.Empty(t, validate(t, NewSecretRulesNoListPolicy(), res))
}

func TestSecretRulesNoList(t *testing.T) {
	runRBACCases(t, NewSecretRulesNoListPolicy, []rbacCase{
		{
			name:      "list and watch with resourceNames",
			typeToken: roleType,
			props: roleJSON("Role", "lister",
				`[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"], "resourceNames": ["jwt-secret"]}]`),
			want: []string{`Role juwan/lister (Pulumi resource "reader"): rules[0] allows list, watch on Secrets. ` +
				`With resourceNames the API server allows them only for requests that select a listed name ` +
				`by the field selector metadata.name, which return the same data as get. ` +
				`Fix: replace the verbs with ["get"] and keep resourceNames naming the Secret.`},
		},
		{
			name:      "list without resourceNames",
			typeToken: roleType,
			props:     roleJSON("Role", "lister", `[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]`),
			want: []string{`Role juwan/lister (Pulumi resource "reader"): rules[0] allows list on Secrets ` +
				`without resourceNames, so it returns the data of every Secret in namespace "juwan". ` +
				`Fix: replace the verbs with ["get"] and set resourceNames to the Secrets the subjects need.`},
		},
		{
			name:      "every verb in a ClusterRole",
			typeToken: clusterRoleType,
			props: roleJSON("ClusterRole", "everything",
				`[{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"], "resourceNames": ["jwt-secret"]}]`),
			want: []string{`ClusterRole everything (Pulumi resource "reader"): rules[0] allows * ("*" is every verb, ` +
				`list and watch included) on Secrets. ` +
				`With resourceNames the API server allows them only for requests that select a listed name ` +
				`by the field selector metadata.name, which return the same data as get. ` +
				`Fix: replace the verbs with ["get"] and keep resourceNames naming the Secret.`},
		},
		{
			name:      "get only",
			typeToken: roleType,
			props:     roleJSON("Role", "getter", `[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["jwt-secret"]}]`),
		},
		{
			name:      "list on other resources",
			typeToken: clusterRoleType,
			props:     roleJSON("ClusterRole", "viewer", `[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]}]`),
		},
		{
			name:      "unknown verbs in preview",
			typeToken: roleType,
			props:     roleJSON("Role", "pending", `[{"apiGroups": [""], "resources": ["secrets"], "verbs": `+unknownJSON+`, "resourceNames": ["jwt-secret"]}]`),
		},
	})
}
