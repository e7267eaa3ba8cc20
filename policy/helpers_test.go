package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"
)

// The fixtures are resource properties in the JSON form of the analyzer
// protocol: a secret is an object with the secret signature key, and an
// unknown value is the unknown sentinel string. The files in testdata/ are
// what the program's components register, captured from the Go SDK's
// RegisterResource requests for the dev defaults (two consumers,
// generation 1), with the key values replaced.

// unknownJSON is the wire form of an unknown value.
var unknownJSON = mustJSON(plugin.UnknownStringValue)

// secretJSON wraps a JSON value in the wire form of a Pulumi secret.
func secretJSON(valueJSON string) string {
	return fmt.Sprintf(`{%q: %q, "value": %s}`, resource.SigKey, resource.SecretSig, valueJSON)
}

func mustJSON(value any) string {
	data, err := json.Marshal(value)
	if err != nil {
		panic(err)
	}
	return string(data)
}

// fixture returns the contents of a file in testdata/.
func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(data)
}

// engineResource builds the AnalyzerResource that policyx passes to a
// policy for an AnalyzeRequest with these properties: it unmarshals them
// with the options of policyx's analyzer server (keeping secrets and
// unknowns) and converts them to property values.
func engineResource(t *testing.T, typeToken, name, propertiesJSON string, protect bool) policyx.AnalyzerResource {
	t.Helper()
	var object map[string]any
	require.NoError(t, json.Unmarshal([]byte(propertiesJSON), &object), "fixture of %s is not valid JSON", name)
	wire, err := structpb.NewStruct(object)
	require.NoError(t, err)

	properties, err := plugin.UnmarshalProperties(wire, plugin.MarshalOptions{
		Label:            "test." + name,
		KeepUnknowns:     true,
		KeepSecrets:      true,
		KeepResources:    true,
		KeepOutputValues: true,
	})
	require.NoError(t, err)

	return policyx.AnalyzerResource{
		Type:       typeToken,
		Name:       name,
		URN:        fmt.Sprintf("urn:pulumi:prod::juwan-jwt-secret::%s::%s", typeToken, name),
		Properties: resource.FromResourcePropertyMap(properties),
		Options:    pulumi.ResourceOptions{Protect: protect},
	}
}

// violation is one call of ReportViolation.
type violation struct {
	message string
	urn     string
}

// recorder is a policyx.PolicyManager that keeps every violation a policy
// reports, as policyx's analyzer server does before it turns them into
// diagnostics.
type recorder struct {
	violations []violation
}

var _ policyx.PolicyManager = &recorder{}

func (r *recorder) ReportViolation(message, urn string) {
	r.violations = append(r.violations, violation{message: message, urn: urn})
}

// validate runs one resource policy on one resource and returns the
// messages of the violations it reports.
func validate(t *testing.T, policy policyx.ResourceValidationPolicy, res policyx.AnalyzerResource) []string {
	t.Helper()
	manager := &recorder{}
	err := policy.Validate(context.Background(), policyx.ResourceValidationArgs{
		Manager:  manager,
		Resource: res,
	})
	require.NoError(t, err)

	var messages []string
	for _, v := range manager.violations {
		// An empty URN makes policyx attach the violation to the resource
		// under validation, which is the resource the message names.
		require.Empty(t, v.urn, "violation %q names another resource", v.message)
		messages = append(messages, v.message)
	}
	return messages
}

// programResource is one resource that the program registers, with its
// fixture file.
type programResource struct {
	typeToken string
	name      string
	file      string
	// keyHolding is true for the resources the program protects on
	// production stacks.
	keyHolding bool
}

// programResources are the program's resources that the policies inspect.
var programResources = []programResource{
	{"random:index/randomPassword:RandomPassword", "jwt-key-slot-0", "random-password-slot-0.json", true},
	{"kubernetes:core/v1:Secret", "jwt-key-secret", "secret-jwt-secret.json", true},
	{"kubernetes:rbac.authorization.k8s.io/v1:Role", "jwt-access-role", "role-jwt-secret-reader.json", false},
	{"kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "jwt-access-binding-user-rpc", "role-binding-user-rpc.json", false},
	{"kubernetes:apps/v1:DeploymentPatch", "consumer-user-rpc-patch", "deployment-patch-user-rpc.json", false},
	{"kubernetes:apps/v1:DeploymentPatch", "consumer-envoy-gateway-patch", "deployment-patch-envoy-gateway.json", false},
}
