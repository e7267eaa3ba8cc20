// Package mocks is a Pulumi mock engine for unit tests. It records every
// registered resource and returns what the real providers return: a
// RandomPassword gets a `result` of the requested length and alphabet, and
// Kubernetes objects echo their inputs with the fields the API server adds.
package mocks

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Resource is one registered resource as the engine received it.
type Resource struct {
	Type      string
	Name      string
	Parent    string
	Provider  string
	Protect   bool
	DependsOn []string
	// IgnoreChanges are the property paths of the ignoreChanges option.
	IgnoreChanges []string
	Inputs        resource.PropertyMap
	Outputs       resource.PropertyMap
}

// Engine records the resources a program registers.
type Engine struct {
	mu        sync.Mutex
	resources map[string]Resource

	// StackOutputs are the outputs a StackReference reads, as the last
	// deployment of a stack left them. Empty means never deployed.
	StackOutputs map[string]any
}

var _ pulumi.MockResourceMonitor = &Engine{}

// New returns an empty Engine.
func New() *Engine {
	return &Engine{resources: map[string]Resource{}}
}

// NewResource records the resource and returns its ID and outputs.
func (e *Engine) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	outputs := args.Inputs.Copy()
	id := args.Name + "-id"

	switch args.TypeToken {
	case "random:index/randomPassword:RandomPassword":
		// The real provider's ID is the literal "none"; result and
		// bcryptHash are its only computed outputs.
		id = "none"
		key := PasswordFor(args.Name, args.Inputs)
		outputs["result"] = resource.MakeSecret(resource.NewStringProperty(key))
		outputs["bcryptHash"] = resource.MakeSecret(resource.NewStringProperty("$2a$10$" + key[:22]))
	case "pulumi:pulumi:StackReference":
		// For a StackReference the engine returns the referenced stack's
		// outputs and the names of the secret ones.
		outputs["outputs"] = resource.NewObjectProperty(resource.NewPropertyMapFromMap(e.StackOutputs))
		outputs["secretOutputNames"] = resource.NewArrayProperty(nil)
		id = args.Inputs["name"].StringValue()
	case "kubernetes:core/v1:Secret":
		// The API server stores stringData as base64 data.
		if stringData, ok := args.Inputs["stringData"]; ok {
			outputs["data"] = encodeData(stringData)
		}
		outputs["metadata"] = withUID(args.Inputs["metadata"], args.Name)
	default:
		if _, ok := args.Inputs["metadata"]; ok && strings.HasPrefix(args.TypeToken, "kubernetes:") {
			outputs["metadata"] = withUID(args.Inputs["metadata"], args.Name)
		}
	}

	registered := Resource{
		Type:    args.TypeToken,
		Name:    args.Name,
		Inputs:  args.Inputs,
		Outputs: outputs,
	}
	if rpc := args.RegisterRPC; rpc != nil {
		registered.Parent = rpc.GetParent()
		registered.Provider = rpc.GetProvider()
		registered.Protect = rpc.GetProtect()
		registered.DependsOn = rpc.GetDependencies()
		registered.IgnoreChanges = rpc.GetIgnoreChanges()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	e.resources[args.Name] = registered
	return id, outputs, nil
}

// Call returns no result: the program calls no provider functions.
func (e *Engine) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

// Resource returns the resource registered under the logical name.
func (e *Engine) Resource(name string) (Resource, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.resources[name]
	return r, ok
}

// Names returns the logical names of all registered resources, sorted.
func (e *Engine) Names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := make([]string, 0, len(e.resources))
	for name := range e.resources {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// ByType returns the resources of a type token, sorted by name.
func (e *Engine) ByType(typeToken string) []Resource {
	var found []Resource
	for _, name := range e.Names() {
		if r, _ := e.Resource(name); r.Type == typeToken {
			found = append(found, r)
		}
	}
	return found
}

// PasswordFor returns the key the mock generates for a RandomPassword: the
// requested length over letters, digits and the override special
// characters. It derives the key from the name and keepers, so a test can
// predict it and a keeper change yields a new key.
func PasswordFor(name string, inputs resource.PropertyMap) string {
	length := int(inputs["length"].NumberValue())
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	if special, ok := inputs["overrideSpecial"]; ok && special.IsString() {
		alphabet += special.StringValue()
	}

	seed := name
	if keepers, ok := inputs["keepers"]; ok && keepers.IsObject() {
		keys := keepers.ObjectValue().StableKeys()
		for _, k := range keys {
			seed += "|" + string(k) + "=" + keepers.ObjectValue()[k].StringValue()
		}
	}

	var b strings.Builder
	for counter := 0; b.Len() < length; counter++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", seed, counter)))
		for _, c := range sum {
			if b.Len() == length {
				break
			}
			b.WriteByte(alphabet[int(c)%len(alphabet)])
		}
	}
	return b.String()
}

// encodeData base64-encodes every value of stringData and keeps secretness.
func encodeData(stringData resource.PropertyValue) resource.PropertyValue {
	secret := stringData.IsSecret()
	if secret {
		stringData = stringData.SecretValue().Element
	}
	data := resource.PropertyMap{}
	for k, v := range stringData.ObjectValue() {
		valueSecret := v.IsSecret()
		if valueSecret {
			v = v.SecretValue().Element
		}
		encoded := resource.NewStringProperty(base64.StdEncoding.EncodeToString([]byte(v.StringValue())))
		if valueSecret {
			encoded = resource.MakeSecret(encoded)
		}
		data[k] = encoded
	}
	result := resource.NewObjectProperty(data)
	if secret {
		result = resource.MakeSecret(result)
	}
	return result
}

// withUID adds the uid the API server assigns to every object.
func withUID(metadata resource.PropertyValue, name string) resource.PropertyValue {
	fields := resource.PropertyMap{}
	if metadata.IsObject() {
		fields = metadata.ObjectValue().Copy()
	}
	sum := sha256.Sum256([]byte(name))
	fields["uid"] = resource.NewStringProperty(fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16]))
	return resource.NewObjectProperty(fields)
}
