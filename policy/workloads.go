package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

// podSpecKeys maps each Kubernetes kind that embeds a pod spec to the keys
// that lead to it. A patch kind (DeploymentPatch) has the same layout as
// its kind.
var podSpecKeys = map[string][]string{
	"Pod":                   {"spec"},
	"PodTemplate":           {"template", "spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// workloadGroups are the API groups that serve the kinds above, in every
// version the provider has types for, extensions/v1beta1 included.
var workloadGroups = []string{"core", "apps", "batch", "extensions"}

// containerLists are the pod spec fields that hold containers. Each kind of
// container can read env vars and mount volumes.
var containerLists = []string{"initContainers", "containers", "ephemeralContainers"}

// podSpec is the pod spec of a workload resource.
type podSpec struct {
	value property.Value
	// path is the dotted path of the pod spec in the resource, for messages.
	path string
	// secret is true when a value on the path to the pod spec is a Pulumi
	// secret, which makes everything inside it secret too.
	secret bool
}

// container is one container of a pod spec.
type container struct {
	value  property.Value
	name   string
	path   string
	secret bool
}

// podSpecOf returns the pod spec of a workload resource, and false for a
// resource that has none or whose pod spec is missing or still unknown.
func podSpecOf(resource policyx.AnalyzerResource) (podSpec, bool) {
	if !slices.Contains(workloadGroups, apiGroupOf(resource.Type)) {
		return podSpec{}, false
	}
	keys, ok := podSpecKeys[strings.TrimSuffix(kindOf(resource.Type), "Patch")]
	if !ok {
		return podSpec{}, false
	}

	value := property.New(resource.Properties)
	secret := false
	for _, key := range keys {
		value = field(value, key)
		secret = secret || value.Secret()
	}
	if !value.IsMap() {
		return podSpec{}, false
	}
	return podSpec{value: value, path: strings.Join(keys, "."), secret: secret}, true
}

// containers returns every container of the pod spec with a known map value.
func (spec podSpec) containers() []container {
	var result []container
	for _, list := range containerLists {
		listValue := field(spec.value, list)
		for index, value := range elements(listValue) {
			if !value.IsMap() {
				continue
			}
			result = append(result, container{
				value:  value,
				name:   knownString(field(value, "name")),
				path:   fmt.Sprintf("%s.%s[%d]", spec.path, list, index),
				secret: spec.secret || listValue.Secret() || value.Secret(),
			})
		}
	}
	return result
}

// label names a container in a message: `container "user-rpc"`, or its
// path when the name is unknown.
func (c container) label() string {
	if c.name == "" {
		return "container " + c.path
	}
	return fmt.Sprintf("container %q", c.name)
}

// baseKind returns the Kubernetes kind of a resource: "Deployment" for both
// a Deployment and a DeploymentPatch.
func baseKind(resource policyx.AnalyzerResource) string {
	return strings.TrimSuffix(kindOf(resource.Type), "Patch")
}
