package main

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

// The engine sends a resource's inputs after the provider has checked them.
// During `pulumi preview` an input that depends on a resource not yet
// created is unknown (property.Computed). A policy cannot judge an unknown
// value, so the helpers below report it, and each policy skips it. The
// engine runs the policies again at `pulumi up`, when every input that
// depends on an earlier resource is known.

// field returns the value at the given keys of a map value. The result is
// null when a key is missing or a value on the way is not a map, and
// computed when a value on the way is unknown.
func field(value property.Value, keys ...string) property.Value {
	for _, key := range keys {
		switch {
		case value.IsComputed():
			return value
		case !value.IsMap():
			return property.Value{}
		}
		value = value.AsMap().Get(key)
	}
	return value
}

// elements returns the elements of an array value, or nil for any other value.
func elements(value property.Value) []property.Value {
	if !value.IsArray() {
		return nil
	}
	return value.AsArray().AsSlice()
}

// stringList is a list of strings as a policy reads it.
type stringList struct {
	values []string
	// unknown is true when the list, or one of its elements, is unknown.
	unknown bool
}

// contains reports whether the list has one of the given strings.
func (l stringList) contains(candidates ...string) bool {
	for _, value := range l.values {
		for _, candidate := range candidates {
			if value == candidate {
				return true
			}
		}
	}
	return false
}

// stringsOf reads an array of strings. Elements that are not strings are
// skipped, because the provider has already rejected such a resource.
func stringsOf(value property.Value) stringList {
	if value.IsComputed() {
		return stringList{unknown: true}
	}
	list := stringList{}
	for _, element := range elements(value) {
		switch {
		case element.IsComputed():
			list.unknown = true
		case element.IsString():
			list.values = append(list.values, element.AsString())
		}
	}
	return list
}

// knownString returns a string value, or "" when the value is unknown, null
// or not a string.
func knownString(value property.Value) string {
	if !value.IsString() {
		return ""
	}
	return value.AsString()
}

// kindOf returns the last part of a type token: "DeploymentPatch" for
// "kubernetes:apps/v1:DeploymentPatch".
func kindOf(typeToken string) string {
	return typeToken[strings.LastIndex(typeToken, ":")+1:]
}

// apiGroupOf returns the API group of a Kubernetes type token: "apps" for
// "kubernetes:apps/v1:Deployment" and "core" for "kubernetes:core/v1:Pod".
// It returns "" for a token of another provider.
func apiGroupOf(typeToken string) string {
	parts := strings.Split(typeToken, ":")
	if len(parts) != 3 || parts[0] != "kubernetes" {
		return ""
	}
	group, _, _ := strings.Cut(parts[1], "/")
	return group
}

// describe names a resource in a violation message by its kind, its
// Kubernetes namespace and name where they are known, and its Pulumi name:
// `DeploymentPatch juwan/user-rpc (Pulumi resource "consumer-user-rpc-patch")`.
func describe(resource policyx.AnalyzerResource) string {
	kind := kindOf(resource.Type)
	metadata := resource.Properties.Get("metadata")
	name := knownString(field(metadata, "name"))
	if name == "" {
		return fmt.Sprintf("%s (Pulumi resource %q)", kind, resource.Name)
	}
	if namespace := knownString(field(metadata, "namespace")); namespace != "" {
		name = namespace + "/" + name
	}
	return fmt.Sprintf("%s %s (Pulumi resource %q)", kind, name, resource.Name)
}

// octal formats a file mode the way Kubernetes manifests write it: 0400.
func octal(mode int64) string {
	return fmt.Sprintf("0%03o", mode)
}
