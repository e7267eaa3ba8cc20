package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// The binary is built once per test run, into a folder removed by TestMain,
// so that the module folder (whose files key the tools/build.sh cache) is
// never written to.
var (
	buildOnce   sync.Once
	buildDir    string
	buildBinary string
	buildErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// standInBinary returns the path of a freshly built pulumi-resource-random,
// or skips the test when no Go toolchain is on PATH to build it.
func standInBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the plugin binary with")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "random-standin-bin-"); buildErr != nil {
			return
		}
		buildBinary = filepath.Join(buildDir, "pulumi-resource-random")
		cmd := exec.Command(goTool, "build", "-o", buildBinary, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build of the stand-in failed: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return buildBinary
}

// TestBinaryServesOverGRPC starts the built plugin the way the engine's
// attach mode does (no engine address), reads the port it announces, and
// drives it over real gRPC, which checks that secrets and unknowns survive
// the wire encoding.
func TestBinaryServesOverGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin binary; skipped with -short")
	}
	bin := standInBinary(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // the engine stops plugins the same way
		_ = cmd.Wait()
	})

	errReader := bufio.NewReader(stderr)
	notice, err := errReader.ReadString('\n')
	require.NoError(t, err)
	assert.Contains(t, notice, "STAND-IN")
	assert.Contains(t, notice, passwordToken)
	// Keep draining stderr so the plugin never blocks on a full pipe.
	go func() { _, _ = errReader.WriteTo(io.Discard) }()

	port, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	conn, err := grpc.NewClient("127.0.0.1:"+strings.TrimSpace(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := pulumirpc.NewResourceProviderClient(conn)

	info, err := client.GetPluginInfo(ctx, &emptypb.Empty{})
	require.NoError(t, err)
	assert.Equal(t, "4.19.0", info.GetVersion())

	_, err = client.Configure(ctx, &pulumirpc.ConfigureRequest{AcceptSecrets: true})
	require.NoError(t, err)

	checked, err := client.Check(ctx, &pulumirpc.CheckRequest{Urn: testURN, News: toStruct(t, props(map[string]any{"length": 24}))})
	require.NoError(t, err)
	require.Empty(t, checked.GetFailures())

	preview, err := client.Create(ctx, &pulumirpc.CreateRequest{Urn: testURN, Properties: checked.GetInputs(), Preview: true})
	require.NoError(t, err)
	assert.True(t, fromStruct(t, preview.GetProperties())["result"].IsComputed())

	created, err := client.Create(ctx, &pulumirpc.CreateRequest{Urn: testURN, Properties: checked.GetInputs()})
	require.NoError(t, err)
	assert.Equal(t, "none", created.GetId())
	outputs := fromStruct(t, created.GetProperties())
	require.True(t, outputs["result"].IsSecret())
	assert.Len(t, outputs["result"].SecretValue().Element.StringValue(), 24)
	assert.True(t, outputs[resource.PropertyKey("bcryptHash")].IsSecret())
}

func TestAttachConnectsToEngine(t *testing.T) {
	p := newStandInProvider(nil)
	// The client connects lazily, so nothing is dialled at this address.
	_, err := p.Attach(context.Background(), &pulumirpc.PluginAttach{Address: "127.0.0.1:1"})
	require.NoError(t, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NotNil(t, p.host)
	_ = p.host.Close()
}
