package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// startPlugin builds the policy pack, starts it as the engine would, and
// returns a client connected to its analyzer server. The process ends when
// the test does.
func startPlugin(t *testing.T) pulumirpc.AnalyzerClient {
	t.Helper()
	dir := t.TempDir()
	binary := filepath.Join(dir, "juwan-jwt-secret-policy")
	build := exec.Command("go", "build", "-o", binary, ".")
	output, err := build.CombinedOutput()
	require.NoError(t, err, "go build failed:\n%s", output)

	// The plugin prints the port it listens on as its first line of output.
	plugin := exec.Command(binary)
	var stderr bytes.Buffer
	plugin.Stderr = &stderr
	stdout, err := plugin.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, plugin.Start())
	t.Cleanup(func() {
		_ = plugin.Process.Kill()
		_ = plugin.Wait()
		if t.Failed() {
			t.Logf("plugin stderr:\n%s", stderr.String())
		}
	})

	portLine := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		portLine <- strings.TrimSpace(line)
	}()
	var port string
	select {
	case port = <-portLine:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out after 30s waiting for the plugin to print its port")
	}
	require.NotEmpty(t, port, "plugin exited before printing its port")

	conn, err := grpc.NewClient("127.0.0.1:"+port, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pulumirpc.NewAnalyzerClient(conn)
}

// analyzeRequest returns the AnalyzeRequest of a resource whose properties
// are in the analyzer protocol's JSON form.
func analyzeRequest(t *testing.T, typeToken, name, propertiesJSON string, protect bool) *pulumirpc.AnalyzeRequest {
	t.Helper()
	var object map[string]any
	require.NoError(t, json.Unmarshal([]byte(propertiesJSON), &object))
	properties, err := structpb.NewStruct(object)
	require.NoError(t, err)
	return &pulumirpc.AnalyzeRequest{
		Type:       typeToken,
		Name:       name,
		Urn:        "urn:pulumi:prod::juwan-jwt-secret::" + typeToken + "::" + name,
		Properties: properties,
		Options:    &pulumirpc.AnalyzerResourceOptions{Protect: protect},
	}
}

// TestPluginAnalyzerProtocol drives the built pack through the calls the
// engine makes for `pulumi preview --policy-pack` on stack prod: Handshake,
// ConfigureStack, GetAnalyzerInfo, Configure and Analyze.
func TestPluginAnalyzerProtocol(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the policy pack binary")
	}
	client := startPlugin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Start the pack for stack prod.
	workDir, err := os.Getwd()
	require.NoError(t, err)
	_, err = client.Handshake(ctx, &pulumirpc.AnalyzerHandshakeRequest{RootDirectory: &workDir, ProgramDirectory: &workDir})
	require.NoError(t, err)
	_, err = client.ConfigureStack(ctx, &pulumirpc.AnalyzerStackConfigureRequest{
		Stack:   "prod",
		Project: "juwan-jwt-secret",
		DryRun:  true,
	})
	require.NoError(t, err)

	info, err := client.GetAnalyzerInfo(ctx, &emptypb.Empty{})
	require.NoError(t, err)
	assert.Equal(t, PackName, info.GetName())
	assert.True(t, info.GetSupportsConfig())
	require.Len(t, info.GetPolicies(), 5)
	for _, p := range info.GetPolicies() {
		assert.Equal(t, pulumirpc.EnforcementLevel_MANDATORY, p.GetEnforcementLevel(), "policy %s", p.GetName())
	}
	_, err = client.Configure(ctx, &pulumirpc.ConfigureAnalyzerRequest{})
	require.NoError(t, err)

	// The program's own resources, protected as on prod, pass.
	for _, r := range programResources {
		response, err := client.Analyze(ctx, analyzeRequest(t, r.typeToken, r.name, fixture(t, r.file), true))
		require.NoError(t, err)
		assert.Empty(t, response.GetDiagnostics(), "resource %s", r.name)
	}

	// An unprotected Secret fails with a mandatory diagnostic on the Secret.
	secret := analyzeRequest(t, "kubernetes:core/v1:Secret", "jwt-key-secret", fixture(t, "secret-jwt-secret.json"), false)
	response, err := client.Analyze(ctx, secret)
	require.NoError(t, err)
	require.Len(t, response.GetDiagnostics(), 1)
	diagnostic := response.GetDiagnostics()[0]
	assert.Equal(t, ProtectedInProductionPolicy, diagnostic.GetPolicyName())
	assert.Equal(t, PackName, diagnostic.GetPolicyPackName())
	assert.Equal(t, pulumirpc.EnforcementLevel_MANDATORY, diagnostic.GetEnforcementLevel())
	assert.Equal(t, secret.GetUrn(), diagnostic.GetUrn())
	// policyx puts the description first and the policy's message after it.
	assert.True(t, strings.HasPrefix(diagnostic.GetMessage(), diagnostic.GetDescription()+"\n"))
	assert.Contains(t, diagnostic.GetMessage(), `Secret juwan/jwt-secret (Pulumi resource "jwt-key-secret") is not protected`)

	// A policy pack config can lower one policy to advisory.
	_, err = client.Configure(ctx, &pulumirpc.ConfigureAnalyzerRequest{
		PolicyConfig: map[string]*pulumirpc.PolicyConfig{
			ProtectedInProductionPolicy: {EnforcementLevel: pulumirpc.EnforcementLevel_ADVISORY},
		},
	})
	require.NoError(t, err)
	response, err = client.Analyze(ctx, secret)
	require.NoError(t, err)
	require.Len(t, response.GetDiagnostics(), 1)
	assert.Equal(t, pulumirpc.EnforcementLevel_ADVISORY, response.GetDiagnostics()[0].GetEnforcementLevel())
}
