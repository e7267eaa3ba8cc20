package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// passwordID is the ID the real provider gives every RandomPassword.
const passwordID = "none"

// bcryptMaxBytes is the maximum input length of bcrypt. The real provider
// documents that a longer result gets the hash of its first 72 bytes. The
// bcrypt package rejects longer input, so the result is cut before hashing.
const bcryptMaxBytes = 72

// standInProvider implements the resource provider protocol for
// RandomPassword only. Methods it does not override return the Unimplemented
// status through the embedded UnimplementedResourceProviderServer.
type standInProvider struct {
	pulumirpc.UnimplementedResourceProviderServer

	// rnd is the source of randomness: crypto/rand, replaced only in tests.
	rnd io.Reader

	mu sync.Mutex
	// host is the engine connection: given at start, or by Attach when the
	// engine attaches to an already running provider.
	host *provider.HostClient
}

func newStandInProvider(host *provider.HostClient) *standInProvider {
	return &standInProvider{rnd: rand.Reader, host: host}
}

// Property marshalling. Secrets and unknowns are kept in both directions,
// so a secret input stays secret in the outputs and a preview can show
// values that are known only after the update.
func unmarshal(label string, s *structpb.Struct) (resource.PropertyMap, error) {
	m, err := plugin.UnmarshalProperties(s, plugin.MarshalOptions{
		Label: label, KeepUnknowns: true, KeepSecrets: true,
	})
	if err != nil {
		return nil, fmt.Errorf("decoding %s failed: %w", label, err)
	}
	return m, nil
}

func marshal(label string, m resource.PropertyMap) (*structpb.Struct, error) {
	s, err := plugin.MarshalProperties(m, plugin.MarshalOptions{
		Label: label, KeepUnknowns: true, KeepSecrets: true,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding %s failed: %w", label, err)
	}
	return s, nil
}

// requirePassword rejects every type but RandomPassword, naming the type so
// the user sees which resource of the program needs the real plugin.
// Newer engines send the type, and older ones only the URN, which contains it.
func requirePassword(urn, typ string) error {
	if typ == "" && resource.URN(urn).IsValid() {
		typ = string(resource.URN(urn).Type())
	}
	if typ == "" || typ == passwordToken {
		return nil
	}
	return status.Errorf(codes.Unimplemented,
		"resource type %s (%s) is not served by this stand-in for pulumi-resource-random, which serves only %s: install the real random provider plugin to use it",
		typ, urn, passwordToken)
}

// GetPluginInfo reports the version of the real provider whose contract this
// stand-in keeps.
func (p *standInProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: providerVersion}, nil
}

func (p *standInProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: packageSchema}, nil
}

// CheckConfig accepts any provider configuration unchanged: the real random
// provider has no settings.
func (p *standInProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// DiffConfig never requests a new provider: there is no setting that could
// change how it behaves.
func (p *standInProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Configure reports that this provider accepts secrets (so the outputs can
// be marked secret) and previews (so a preview gets an unknown result from
// Create instead of no outputs at all).
//
// It is also where the stand-in announces itself in the run's output: the
// engine hides a resource plugin's stderr unless it crashes or runs with
// verbose logging, but shows diagnostics sent through the host.
func (p *standInProvider) Configure(ctx context.Context, _ *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	p.mu.Lock()
	host := p.host
	p.mu.Unlock()
	if host != nil {
		// A lost notice must not fail the deployment, so the error is only
		// written to stderr, which verbose runs show.
		if err := host.Log(ctx, diag.Info, "", standInNotice); err != nil {
			fmt.Fprintf(os.Stderr, "sending the stand-in notice to the engine failed: %v\n", err)
		}
	}
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

// Check fills in the defaults and validates the inputs. Problems are returned
// as check failures, which the engine shows against the resource and its
// property before anything changes.
func (p *standInProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := requirePassword(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	news, err := unmarshal("check inputs", req.GetNews())
	if err != nil {
		return nil, err
	}
	inputs, failures := applyDefaults(news)
	failures = append(failures, checkInputs(inputs)...)
	out, err := marshal("checked inputs", inputs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: out, Failures: failures}, nil
}

// Diff compares every input of the stored state with the new inputs. As in
// the real provider, each input forces a replacement, so a changed input
// means a new password and nothing is updated in place.
func (p *standInProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if err := requirePassword(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	oldState, err := unmarshal("old state", req.GetOlds())
	if err != nil {
		return nil, err
	}
	newInputs, err := unmarshal("new inputs", req.GetNews())
	if err != nil {
		return nil, err
	}
	changed := changedInputs(oldState, newInputs, req.GetIgnoreChanges())
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true}, nil
	}
	resp := &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_SOME,
		DeleteBeforeReplace: false,
		DetailedDiff:        map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff:     true,
	}
	for _, c := range changed {
		resp.Replaces = append(resp.Replaces, string(c.key))
		resp.Diffs = append(resp.Diffs, string(c.key))
		resp.DetailedDiff[string(c.key)] = &pulumirpc.PropertyDiff{Kind: c.kind, InputDiff: true}
	}
	return resp, nil
}

type inputChange struct {
	key  resource.PropertyKey
	kind pulumirpc.PropertyDiff_Kind
}

// changedInputs lists the inputs that differ between the stored state and
// the new inputs. Both sides get the defaults first, so a state written
// before a default existed, or an input that went from explicit to default
// with the same value, is no change. An unknown new value counts as a
// change: it may differ once known.
func changedInputs(oldState, newInputs resource.PropertyMap, ignoreChanges []string) []inputChange {
	olds, _ := applyDefaults(oldState)
	news, _ := applyDefaults(newInputs)
	olds = revealSecrets(resource.NewObjectProperty(olds)).ObjectValue()
	news = revealSecrets(resource.NewObjectProperty(news)).ObjectValue()
	ignored := map[string]bool{}
	for _, path := range ignoreChanges {
		ignored[path] = true
	}

	var changes []inputChange
	for _, k := range inputKeys {
		if ignored[string(k)] {
			continue
		}
		o, hasOld := olds[k]
		n, hasNew := news[k]
		switch {
		case !hasOld && !hasNew:
			continue
		case k == keyKeepers && isEmptyMap(o) && isEmptyMap(n):
			// No keepers and an empty map of keepers keep the same password.
			continue
		case !hasOld:
			changes = append(changes, inputChange{k, pulumirpc.PropertyDiff_ADD_REPLACE})
		case !hasNew:
			changes = append(changes, inputChange{k, pulumirpc.PropertyDiff_DELETE_REPLACE})
		case n.ContainsUnknowns() || !o.DeepEquals(n):
			changes = append(changes, inputChange{k, pulumirpc.PropertyDiff_UPDATE_REPLACE})
		}
	}
	return changes
}

func isEmptyMap(v resource.PropertyValue) bool {
	return v.IsNull() || (v.IsObject() && len(v.ObjectValue()) == 0)
}

// Create generates the password. In a preview it returns the inputs with
// result and bcryptHash unknown, so no key exists before the update runs.
func (p *standInProvider) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if err := requirePassword(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	props, err := unmarshal("create inputs", req.GetProperties())
	if err != nil {
		return nil, err
	}
	// Check has already applied the defaults. Applying them again keeps a
	// Create that was not preceded by Check within the contract.
	inputs, failures := applyDefaults(props)
	if len(failures) > 0 {
		return nil, fmt.Errorf("creating %s failed: %s", req.GetUrn(), failures[0].Reason)
	}
	outputs := inputs.Copy()

	if req.GetPreview() {
		outputs[keyResult] = resource.MakeComputed(resource.NewStringProperty(""))
		outputs[keyBcryptHash] = resource.MakeComputed(resource.NewStringProperty(""))
		out, err := marshal("preview outputs", outputs)
		if err != nil {
			return nil, err
		}
		return &pulumirpc.CreateResponse{Properties: out}, nil
	}

	spec, err := specFromInputs(inputs)
	if err != nil {
		return nil, fmt.Errorf("creating %s failed: %w", req.GetUrn(), err)
	}
	result, err := generatePassword(spec, p.rnd)
	if err != nil {
		return nil, fmt.Errorf("creating %s failed: %w", req.GetUrn(), err)
	}
	hash, err := hashPassword(result)
	if err != nil {
		return nil, fmt.Errorf("creating %s failed: %w", req.GetUrn(), err)
	}
	outputs[keyResult] = resource.MakeSecret(resource.NewStringProperty(result))
	outputs[keyBcryptHash] = resource.MakeSecret(resource.NewStringProperty(hash))
	out, err := marshal("outputs", outputs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: passwordID, Properties: out}, nil
}

// hashPassword returns the bcrypt hash of the first 72 bytes of result, at
// bcrypt's default cost, as the real provider does.
func hashPassword(result string) (string, error) {
	b := []byte(result)
	if len(b) > bcryptMaxBytes {
		b = b[:bcryptMaxBytes]
	}
	h, err := bcrypt.GenerateFromPassword(b, bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("bcrypt hashing of the result failed: %w", err)
	}
	return string(h), nil
}

// Read returns the stored state unchanged: the password exists only in the
// state, so a refresh has nothing else to compare it with. A Read with no
// stored state is an import, which this stand-in does not do.
func (p *standInProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if err := requirePassword(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	if len(req.GetProperties().GetFields()) == 0 {
		return nil, status.Errorf(codes.Unimplemented,
			"importing or reading RandomPassword %s by ID %q is not supported by this stand-in for pulumi-resource-random: let `pulumi up` create the password, or install the real random provider plugin to import one",
			req.GetUrn(), req.GetId())
	}
	inputs := req.GetInputs()
	if len(inputs.GetFields()) == 0 {
		// A state without recorded inputs: the inputs are the outputs less
		// the two generated values.
		state, err := unmarshal("stored state", req.GetProperties())
		if err != nil {
			return nil, err
		}
		derived := state.Copy()
		delete(derived, keyResult)
		delete(derived, keyBcryptHash)
		if inputs, err = marshal("inputs from state", derived); err != nil {
			return nil, err
		}
	}
	id := req.GetId()
	if id == "" {
		id = passwordID
	}
	return &pulumirpc.ReadResponse{Id: id, Properties: req.GetProperties(), Inputs: inputs}, nil
}

// Update is never needed, because Diff replaces on every change. If the
// engine calls it anyway, the stored password stays as it is.
func (p *standInProvider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if err := requirePassword(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: req.GetOlds()}, nil
}

// Delete has nothing to remove: the password lives only in the state.
func (p *standInProvider) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := requirePassword(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Cancel has no work to stop: the slowest call, Create, took about 0.1 s
// per password in the CLI runs on this project's machines.
func (p *standInProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Attach connects to the engine when the provider was started on its own
// (no engine address on the command line) and the engine attaches to it.
func (p *standInProvider) Attach(_ context.Context, req *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	host, err := provider.NewHostClient(req.GetAddress())
	if err != nil {
		return nil, fmt.Errorf("connecting to the engine at %q failed: %w", req.GetAddress(), err)
	}
	p.mu.Lock()
	old := p.host
	p.host = host
	p.mu.Unlock()
	if old != nil {
		_ = old.Close() // the engine now talks to us through the new connection
	}
	return &emptypb.Empty{}, nil
}

// GetMapping and GetMappings return an empty mapping: there is no Terraform
// provider behind this stand-in for converters to map from.
func (p *standInProvider) GetMapping(context.Context, *pulumirpc.GetMappingRequest) (*pulumirpc.GetMappingResponse, error) {
	return &pulumirpc.GetMappingResponse{}, nil
}

func (p *standInProvider) GetMappings(context.Context, *pulumirpc.GetMappingsRequest) (*pulumirpc.GetMappingsResponse, error) {
	return &pulumirpc.GetMappingsResponse{}, nil
}
