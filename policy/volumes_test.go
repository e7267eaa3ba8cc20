package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// gatewayJSON returns a Deployment juwan/api with one container "envoy"
// that has the given volumeMounts, and the given volumes.
func gatewayJSON(volumeMounts, volumes string) string {
	return deploymentJSON(fmt.Sprintf(`{"containers": [{"name": "envoy", "volumeMounts": %s}], "volumes": %s}`,
		volumeMounts, volumes))
}

const readOnlyMount = `[{"name": "jwt", "mountPath": "/etc/jwt", "readOnly": true}]`

func TestSecretVolumesProgramPatches(t *testing.T) {
	for _, file := range []string{"deployment-patch-user-rpc.json", "deployment-patch-envoy-gateway.json"} {
		t.Run(file, func(t *testing.T) {
			res := engineResource(t, deploymentPatchType, "consumer-patch", fixture(t, file), false)
			assert.Empty(t, validate(t, NewSecretVolumesPolicy(), res))
		})
	}
}

func TestSecretVolumes(t *testing.T) {
	const prefix = `Deployment juwan/api (Pulumi resource "gateway"): `
	cases := []struct {
		name      string
		typeToken string
		props     string
		want      []string
	}{
		{
			name:  "defaultMode unset",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "secret": {"secretName": "jwt-secret"}}]`),
			want: []string{prefix + `volume "jwt" (Secret "jwt-secret") sets no secret.defaultMode, so Kubernetes ` +
				`writes its files with mode 0644, readable by every user in the container. ` +
				`Fix: set secret.defaultMode to 0400 (256 in JSON).`},
		},
		{
			name:  "defaultMode 0644",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "secret": {"secretName": "jwt-secret", "defaultMode": 420}}]`),
			want: []string{prefix + `volume "jwt" (Secret "jwt-secret") has secret.defaultMode 0644, which allows ` +
				`owner write, other read beyond 0440. Fix: set secret.defaultMode to 0400 (256 in JSON) or 0440 (288).`},
		},
		{
			name:  "defaultMode 0600",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "secret": {"secretName": "jwt-secret", "defaultMode": 384}}]`),
			want: []string{prefix + `volume "jwt" (Secret "jwt-secret") has secret.defaultMode 0600, which allows ` +
				`owner write beyond 0440. Fix: set secret.defaultMode to 0400 (256 in JSON) or 0440 (288).`},
		},
		{
			name: "item mode 0755",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "secret": {"secretName": "jwt-secret", "defaultMode": 256,
				"items": [{"key": "secret-key", "path": "key"}, {"key": "jwks.json", "path": "jwks.json", "mode": 493}]}}]`),
			want: []string{prefix + `volume "jwt" (Secret "jwt-secret") has secret.items[1].mode (key "jwks.json") 0755, ` +
				`which allows owner write, owner execute, group execute, other read, other execute beyond 0440. ` +
				`Fix: set secret.items[1].mode (key "jwks.json") to 0400 (256 in JSON) or 0440 (288).`},
		},
		{
			name:  "mount without readOnly",
			props: gatewayJSON(`[{"name": "jwt", "mountPath": "/etc/jwt"}]`, `[{"name": "jwt", "secret": {"secretName": "jwt-secret", "defaultMode": 256}}]`),
			want: []string{prefix + `container "envoy" mounts Secret volume "jwt" at /etc/jwt without readOnly: true. ` +
				`Fix: set readOnly: true on that volumeMount.`},
		},
		{
			name:  "mount with readOnly false",
			props: gatewayJSON(`[{"name": "jwt", "mountPath": "/etc/jwt", "readOnly": false}]`, `[{"name": "jwt", "secret": {"secretName": "jwt-secret", "defaultMode": 256}}]`),
			want: []string{prefix + `container "envoy" mounts Secret volume "jwt" at /etc/jwt without readOnly: true. ` +
				`Fix: set readOnly: true on that volumeMount.`},
		},
		{
			name: "projected Secret without defaultMode",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "projected": {"sources": [
				{"configMap": {"name": "settings"}}, {"secret": {"name": "jwt-secret"}}]}}]`),
			want: []string{prefix + `volume "jwt" (projected, with a Secret source) sets no projected.defaultMode, ` +
				`so Kubernetes writes its files with mode 0644, readable by every user in the container. ` +
				`Fix: set projected.defaultMode to 0400 (256 in JSON).`},
		},
		{
			name: "projected Secret item mode",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "projected": {"defaultMode": 256, "sources": [
				{"secret": {"name": "jwt-secret", "items": [{"key": "secret-key", "path": "key", "mode": 416}]}}]}}]`),
			want: []string{prefix + `volume "jwt" (projected, with a Secret source) has projected.sources[0].secret.items[0].mode (key "secret-key") 0640, ` +
				`which allows owner write beyond 0440. ` +
				`Fix: set projected.sources[0].secret.items[0].mode (key "secret-key") to 0400 (256 in JSON) or 0440 (288).`},
		},
		{
			name:      "Pod with every problem",
			typeToken: podType,
			props: `{"metadata": {"name": "debug", "namespace": "juwan"}, "spec": {
				"containers": [{"name": "shell", "volumeMounts": [{"name": "keys", "mountPath": "/keys"}]}],
				"volumes": [{"name": "keys", "secret": {"secretName": "jwt-secret", "defaultMode": 511}}]}}`,
			want: []string{
				`Pod juwan/debug (Pulumi resource "gateway"): volume "keys" (Secret "jwt-secret") has secret.defaultMode 0777, ` +
					`which allows owner write, owner execute, group write, group execute, other read, other write, ` +
					`other execute beyond 0440. Fix: set secret.defaultMode to 0400 (256 in JSON) or 0440 (288).`,
				`Pod juwan/debug (Pulumi resource "gateway"): container "shell" mounts Secret volume "keys" at /keys ` +
					`without readOnly: true. Fix: set readOnly: true on that volumeMount.`,
			},
		},
		{
			name:  "defaultMode 0440",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "secret": {"secretName": "jwt-secret", "defaultMode": 288}}]`),
		},
		{
			name: "projected Secret 0400",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "projected": {"defaultMode": 256, "sources": [
				{"secret": {"name": "jwt-secret", "items": [{"key": "secret-key", "path": "key", "mode": 256}]}}]}}]`),
		},
		{
			name:  "unknown defaultMode in preview",
			props: gatewayJSON(readOnlyMount, `[{"name": "jwt", "secret": {"secretName": "jwt-secret", "defaultMode": `+unknownJSON+`}}]`),
		},
		{
			name: "writable mount of another volume",
			props: gatewayJSON(`[{"name": "cache", "mountPath": "/cache"}]`,
				`[{"name": "cache", "emptyDir": {}}, {"name": "settings", "configMap": {"name": "settings"}}]`),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typeToken := tc.typeToken
			if typeToken == "" {
				typeToken = deploymentType
			}
			res := engineResource(t, typeToken, "gateway", tc.props, false)
			assert.Equal(t, tc.want, validate(t, NewSecretVolumesPolicy(), res))
		})
	}
}
