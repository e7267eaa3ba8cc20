package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

const (
	deploymentType      = "kubernetes:apps/v1:Deployment"
	deploymentPatchType = "kubernetes:apps/v1:DeploymentPatch"
	podType             = "kubernetes:core/v1:Pod"
)

// deploymentJSON returns a Deployment juwan/api whose pod spec is podSpec.
func deploymentJSON(podSpec string) string {
	return fmt.Sprintf(`{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": {"name": "api", "namespace": "juwan"},
		"spec": {"template": {"spec": %s}}}`, podSpec)
}

// containerJSON returns a pod spec with one container "api" whose env is env.
func containerJSON(env string) string {
	return fmt.Sprintf(`{"containers": [{"name": "api", "image": "api:1", "env": %s}]}`, env)
}

func TestEnvFromSecretProgramPatches(t *testing.T) {
	for _, file := range []string{"deployment-patch-user-rpc.json", "deployment-patch-envoy-gateway.json"} {
		t.Run(file, func(t *testing.T) {
			res := engineResource(t, deploymentPatchType, "consumer-patch", fixture(t, file), false)
			assert.Empty(t, validate(t, NewEnvFromSecretPolicy(), res))
		})
	}
}

func TestEnvFromSecret(t *testing.T) {
	cases := []struct {
		name      string
		typeToken string
		props     string
		want      []string
	}{
		{
			name:      "literal JWT key in a DeploymentPatch",
			typeToken: deploymentPatchType,
			props: deploymentJSON(containerJSON(
				`[{"name": "JWT_SECRET_KEY", "value": "s3cr3t-literal"}, {"name": "LOG_LEVEL", "value": "info"}]`)),
			want: []string{`DeploymentPatch juwan/api (Pulumi resource "api"): container "api" env JWT_SECRET_KEY ` +
				`sets a literal value, and its name contains "JWT", so it looks like key material that Kubernetes ` +
				`would keep in plain text in the Deployment. ` +
				`Fix: store it in a Secret and set valueFrom.secretKeyRef instead of value.`},
		},
		{
			name:      "Pulumi secret under a harmless name",
			typeToken: deploymentType,
			props:     deploymentJSON(containerJSON(`[{"name": "GREETING", "value": ` + secretJSON(`"s3cr3t-literal"`) + `}]`)),
			want: []string{`Deployment juwan/api (Pulumi resource "api"): container "api" env GREETING sets a value ` +
				`that is a Pulumi secret. Pulumi encrypts it in the state, but Kubernetes keeps it in plain text ` +
				`in the Deployment. Fix: store it in a Secret and set valueFrom.secretKeyRef instead of value.`},
		},
		{
			name:      "secret env list",
			typeToken: deploymentType,
			props:     deploymentJSON(containerJSON(secretJSON(`[{"name": "GREETING", "value": "s3cr3t-literal"}]`))),
			want: []string{`Deployment juwan/api (Pulumi resource "api"): container "api" env GREETING sets a value ` +
				`that is a Pulumi secret. Pulumi encrypts it in the state, but Kubernetes keeps it in plain text ` +
				`in the Deployment. Fix: store it in a Secret and set valueFrom.secretKeyRef instead of value.`},
		},
		{
			name:      "password in a StatefulSet init container, lower case",
			typeToken: "kubernetes:apps/v1:StatefulSet",
			props: `{"metadata": {"name": "db", "namespace": "juwan"}, "spec": {"template": {"spec": {
				"initContainers": [{"name": "migrate", "env": [{"name": "db_password", "value": "s3cr3t-literal"}]}],
				"containers": [{"name": "db"}]}}}}`,
			want: []string{`StatefulSet juwan/db (Pulumi resource "api"): container "migrate" env db_password ` +
				`sets a literal value, and its name contains "PASSWORD", so it looks like key material that ` +
				`Kubernetes would keep in plain text in the StatefulSet. ` +
				`Fix: store it in a Secret and set valueFrom.secretKeyRef instead of value.`},
		},
		{
			name:      "token without value or valueFrom in a Pod",
			typeToken: podType,
			props: `{"metadata": {"name": "debug", "namespace": "juwan"},
				"spec": {"containers": [{"name": "shell", "env": [{"name": "API_TOKEN"}]}]}}`,
			want: []string{`Pod juwan/debug (Pulumi resource "api"): container "shell" env API_TOKEN has no ` +
				`valueFrom, and its name contains "TOKEN", so it looks like key material. ` +
				`Fix: set valueFrom.secretKeyRef to the Secret and key that hold it.`},
		},
		{
			name:      "unknown literal value under a key name",
			typeToken: "kubernetes:apps/v1:DaemonSetPatch",
			props: `{"metadata": {"name": "agent", "namespace": "juwan"}, "spec": {"template": {"spec": {
				"containers": [{"name": "agent", "env": [{"name": "SIGNING_KEY", "value": ` + unknownJSON + `}]}]}}}}`,
			want: []string{`DaemonSetPatch juwan/agent (Pulumi resource "api"): container "agent" env SIGNING_KEY ` +
				`sets a literal value, and its name contains "KEY", so it looks like key material that Kubernetes ` +
				`would keep in plain text in the DaemonSet. ` +
				`Fix: store it in a Secret and set valueFrom.secretKeyRef instead of value.`},
		},
		{
			name:      "CronJob",
			typeToken: "kubernetes:batch/v1:CronJob",
			props: `{"metadata": {"name": "rotate", "namespace": "juwan"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {
				"containers": [{"name": "rotate", "env": [{"name": "JWT", "value": "s3cr3t-literal"}]}]}}}}}}`,
			want: []string{`CronJob juwan/rotate (Pulumi resource "api"): container "rotate" env JWT ` +
				`sets a literal value, and its name contains "JWT", so it looks like key material that Kubernetes ` +
				`would keep in plain text in the CronJob. ` +
				`Fix: store it in a Secret and set valueFrom.secretKeyRef instead of value.`},
		},
		{
			name:      "key name from a Secret",
			typeToken: deploymentType,
			props: deploymentJSON(containerJSON(
				`[{"name": "JWT_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "jwt-secret", "key": "secret-key"}}}]`)),
		},
		{
			name:      "key name from an unknown source",
			typeToken: deploymentType,
			props:     deploymentJSON(containerJSON(`[{"name": "JWT_SECRET_KEY", "valueFrom": ` + unknownJSON + `}]`)),
		},
		{
			name:      "plain settings",
			typeToken: "kubernetes:apps/v1:DaemonSet",
			props: `{"metadata": {"name": "agent"}, "spec": {"template": {"spec": {
				"containers": [{"name": "agent", "env": [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "PORT", "value": "8080"}]}]}}}}`,
		},
		{
			name:      "unknown value under a plain name",
			typeToken: deploymentType,
			props:     deploymentJSON(containerJSON(`[{"name": "UPSTREAM", "value": ` + unknownJSON + `}]`)),
		},
		{
			name:      "ConfigMap is not a workload",
			typeToken: "kubernetes:core/v1:ConfigMap",
			props:     `{"metadata": {"name": "settings"}, "data": {"JWT_SECRET_KEY": "s3cr3t-literal"}}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := engineResource(t, tc.typeToken, "api", tc.props, false)
			messages := validate(t, NewEnvFromSecretPolicy(), res)
			assert.Equal(t, tc.want, messages)
			for _, message := range messages {
				assert.NotContains(t, message, "s3cr3t-literal", "a message must never quote the value")
			}
		})
	}
}
