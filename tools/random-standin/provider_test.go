package main

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const testURN = "urn:pulumi:dev::jwt::" + passwordToken + "::key"

func toStruct(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := plugin.MarshalProperties(m, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true})
	require.NoError(t, err)
	return s
}

func fromStruct(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := plugin.UnmarshalProperties(s, plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true})
	require.NoError(t, err)
	return m
}

func props(m map[string]any) resource.PropertyMap { return resource.NewPropertyMapFromMap(m) }

// check runs Check and returns the checked inputs and the failures as
// "property: reason" lines.
func check(t *testing.T, p *standInProvider, news resource.PropertyMap) (resource.PropertyMap, []string) {
	t.Helper()
	resp, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: testURN, News: toStruct(t, news)})
	require.NoError(t, err)
	var failures []string
	for _, f := range resp.GetFailures() {
		failures = append(failures, f.GetProperty()+": "+f.GetReason())
	}
	return fromStruct(t, resp.GetInputs()), failures
}

func create(t *testing.T, p *standInProvider, inputs resource.PropertyMap, preview bool) (string, resource.PropertyMap) {
	t.Helper()
	resp, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: testURN, Properties: toStruct(t, inputs), Preview: preview})
	require.NoError(t, err)
	return resp.GetId(), fromStruct(t, resp.GetProperties())
}

func TestCheckFillsDefaults(t *testing.T) {
	inputs, failures := check(t, newStandInProvider(nil), props(map[string]any{"length": 32}))
	require.Empty(t, failures)
	assert.Equal(t, props(map[string]any{
		"length": 32, "upper": true, "lower": true, "numeric": true, "number": true, "special": true,
		"minUpper": 0, "minLower": 0, "minNumeric": 0, "minSpecial": 0,
	}), inputs)
}

func TestCheckKeepsNumberAndNumericInStep(t *testing.T) {
	p := newStandInProvider(nil)
	inputs, failures := check(t, p, props(map[string]any{"length": 8, "number": false}))
	require.Empty(t, failures)
	assert.False(t, inputs["numeric"].BoolValue(), "the deprecated number must set numeric")

	inputs, failures = check(t, p, props(map[string]any{"length": 8, "numeric": false}))
	require.Empty(t, failures)
	assert.False(t, inputs["number"].BoolValue(), "numeric must be echoed as number")

	_, failures = check(t, p, props(map[string]any{"length": 8, "numeric": false, "number": true}))
	require.Len(t, failures, 1)
	assert.Contains(t, failures[0], "number is true but numeric is false")
}

func TestCheckRejectsBadLengthsAndMinimums(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inputs map[string]any
		want   string
	}{
		{"missing length", map[string]any{}, "length: length is required"},
		{"zero length", map[string]any{"length": 0}, "length: length is 0: it must be at least 1"},
		{"negative length", map[string]any{"length": -5}, "length: length is -5: it must be at least 1"},
		{"fractional length", map[string]any{"length": 1.5}, "length: length is 1.5: it must be a whole number"},
		{"string length", map[string]any{"length": "16"}, "length: length must be a whole number, got a string"},
		{"minimums over length", map[string]any{"length": 6, "minUpper": 2, "minLower": 2, "minNumeric": 2, "minSpecial": 1},
			"length: length is 6 but minUpper+minLower+minNumeric+minSpecial is 7: raise length to at least 7 or lower the minimums"},
		{"negative minimum", map[string]any{"length": 6, "minNumeric": -1}, "minNumeric: minNumeric is -1: it must be 0 or more"},
		{"no class", map[string]any{"length": 6, "upper": false, "lower": false, "numeric": false, "special": false},
			"upper: upper, lower, numeric and special are all false"},
		{"not a bool", map[string]any{"length": 6, "special": "yes"}, "special: special must be true or false, got a string"},
		{"keeper not a string", map[string]any{"length": 6, "keepers": map[string]any{"gen": 1}}, "keepers: keepers.gen must be a string, got a number"},
		{"unknown input", map[string]any{"length": 6, "lenght": 7}, `lenght: "lenght" is not an input of RandomPassword`},
		{"output as input", map[string]any{"length": 6, "result": "x"}, "result: result is an output of RandomPassword and cannot be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, failures := check(t, newStandInProvider(nil), props(tc.inputs))
			require.Len(t, failures, 1, "failures: %v", failures)
			assert.Contains(t, failures[0], tc.want)
		})
	}
}

func TestCheckAcceptsLengthEqualToMinimums(t *testing.T) {
	_, failures := check(t, newStandInProvider(nil), props(map[string]any{"length": 4, "minUpper": 1, "minLower": 1, "minNumeric": 1, "minSpecial": 1}))
	assert.Empty(t, failures)
}

// During a preview an input may be unknown; Check must not fail on it, and
// must not drop it.
func TestCheckSkipsUnknownValues(t *testing.T) {
	news := props(map[string]any{"minUpper": 3})
	news["length"] = resource.MakeComputed(resource.NewStringProperty(""))
	inputs, failures := check(t, newStandInProvider(nil), news)
	assert.Empty(t, failures)
	assert.True(t, inputs["length"].IsComputed())
}

func TestCheckKeepsSecretInputsSecret(t *testing.T) {
	news := props(map[string]any{"length": 16})
	news["keepers"] = resource.NewObjectProperty(resource.PropertyMap{"gen": resource.MakeSecret(resource.NewStringProperty("7"))})
	inputs, failures := check(t, newStandInProvider(nil), news)
	require.Empty(t, failures)
	assert.True(t, inputs["keepers"].ObjectValue()["gen"].IsSecret())
}

func TestProviderConfigAcceptsEmpty(t *testing.T) {
	p := newStandInProvider(nil)
	ctx := context.Background()
	empty := &structpb.Struct{}

	cc, err := p.CheckConfig(ctx, &pulumirpc.CheckRequest{News: empty})
	require.NoError(t, err)
	assert.Empty(t, cc.GetFailures())

	conf, err := p.Configure(ctx, &pulumirpc.ConfigureRequest{Args: empty, AcceptSecrets: true})
	require.NoError(t, err)
	assert.True(t, conf.GetAcceptSecrets(), "secrets must be accepted or the outputs lose their secret marker")
	assert.True(t, conf.GetSupportsPreview(), "preview support is what lets Create return an unknown result")

	dc, err := p.DiffConfig(ctx, &pulumirpc.DiffRequest{Olds: empty, News: empty})
	require.NoError(t, err)
	assert.Equal(t, pulumirpc.DiffResponse_DIFF_NONE, dc.GetChanges())
}

// created runs Check then Create, as the engine does, and returns the state.
func created(t *testing.T, p *standInProvider, news map[string]any) resource.PropertyMap {
	t.Helper()
	inputs, failures := check(t, p, props(news))
	require.Empty(t, failures)
	id, state := create(t, p, inputs, false)
	require.Equal(t, "none", id)
	return state
}

func diff(t *testing.T, p *standInProvider, state resource.PropertyMap, news map[string]any, ignore ...string) *pulumirpc.DiffResponse {
	t.Helper()
	inputs, failures := check(t, p, props(news))
	require.Empty(t, failures)
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{
		Id: "none", Urn: testURN, Olds: toStruct(t, state), News: toStruct(t, inputs), IgnoreChanges: ignore,
	})
	require.NoError(t, err)
	return resp
}

func TestDiffNoChangeForSameInputs(t *testing.T) {
	p := newStandInProvider(nil)
	news := map[string]any{"length": 32, "special": false, "keepers": map[string]any{"generation": "1"}}
	state := created(t, p, news)

	resp := diff(t, p, state, news)
	assert.Equal(t, pulumirpc.DiffResponse_DIFF_NONE, resp.GetChanges())
	assert.Empty(t, resp.GetReplaces())

	// Spelling out a default is the same input as leaving it out.
	resp = diff(t, p, state, map[string]any{"length": 32, "special": false, "upper": true, "minLower": 0, "keepers": map[string]any{"generation": "1"}})
	assert.Equal(t, pulumirpc.DiffResponse_DIFF_NONE, resp.GetChanges())
}

func TestDiffReplacesOnKeeperChange(t *testing.T) {
	p := newStandInProvider(nil)
	state := created(t, p, map[string]any{"length": 32, "keepers": map[string]any{"generation": "1"}})

	for _, tc := range []struct {
		name    string
		keepers any
		kind    pulumirpc.PropertyDiff_Kind
	}{
		{"value changed", map[string]any{"generation": "2"}, pulumirpc.PropertyDiff_UPDATE_REPLACE},
		{"keeper added", map[string]any{"generation": "1", "slot": "a"}, pulumirpc.PropertyDiff_UPDATE_REPLACE},
		{"keepers removed", nil, pulumirpc.PropertyDiff_DELETE_REPLACE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			news := map[string]any{"length": 32}
			if tc.keepers != nil {
				news["keepers"] = tc.keepers
			}
			resp := diff(t, p, state, news)
			assert.Equal(t, pulumirpc.DiffResponse_DIFF_SOME, resp.GetChanges())
			assert.Equal(t, []string{"keepers"}, resp.GetReplaces())
			assert.False(t, resp.GetDeleteBeforeReplace())
			assert.Equal(t, tc.kind, resp.GetDetailedDiff()["keepers"].GetKind())
		})
	}
}

func TestDiffReplacesOnAnyInputChange(t *testing.T) {
	p := newStandInProvider(nil)
	state := created(t, p, map[string]any{"length": 32})
	for _, tc := range []struct {
		news map[string]any
		want []string
	}{
		{map[string]any{"length": 33}, []string{"length"}},
		{map[string]any{"length": 32, "special": false}, []string{"special"}},
		{map[string]any{"length": 32, "numeric": false}, []string{"number", "numeric"}},
		{map[string]any{"length": 32, "minUpper": 2, "overrideSpecial": "_"}, []string{"minUpper", "overrideSpecial"}},
	} {
		resp := diff(t, p, state, tc.news)
		assert.Equal(t, pulumirpc.DiffResponse_DIFF_SOME, resp.GetChanges(), "inputs %v", tc.news)
		assert.Equal(t, tc.want, resp.GetReplaces(), "inputs %v", tc.news)
	}
}

func TestDiffReplacesOnUnknownKeepers(t *testing.T) {
	p := newStandInProvider(nil)
	state := created(t, p, map[string]any{"length": 32, "keepers": map[string]any{"generation": "1"}})
	news := state.Copy()
	delete(news, "result")
	delete(news, "bcryptHash")
	news["keepers"] = resource.MakeComputed(resource.NewStringProperty(""))
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: testURN, Olds: toStruct(t, state), News: toStruct(t, news)})
	require.NoError(t, err)
	assert.Equal(t, []string{"keepers"}, resp.GetReplaces())
}

func TestDiffHonoursIgnoreChanges(t *testing.T) {
	p := newStandInProvider(nil)
	state := created(t, p, map[string]any{"length": 32, "keepers": map[string]any{"generation": "1"}})
	resp := diff(t, p, state, map[string]any{"length": 32, "keepers": map[string]any{"generation": "2"}}, "keepers")
	assert.Equal(t, pulumirpc.DiffResponse_DIFF_NONE, resp.GetChanges())
}

func TestCreateReturnsSecretsAndIDNone(t *testing.T) {
	p := newStandInProvider(nil)
	state := created(t, p, map[string]any{"length": 48, "special": false, "minNumeric": 4, "keepers": map[string]any{"generation": "3"}})

	require.True(t, state["result"].IsSecret(), "result must be a secret")
	require.True(t, state["bcryptHash"].IsSecret(), "bcryptHash must be a secret")
	result := state["result"].SecretValue().Element.StringValue()
	hash := state["bcryptHash"].SecretValue().Element.StringValue()

	assert.Equal(t, 48, utf8.RuneCountInString(result))
	assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte(result)), "bcryptHash must verify against result")
	assert.Error(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte(result+"x")), "bcryptHash must not verify another string")
	cost, err := bcrypt.Cost([]byte(hash))
	require.NoError(t, err)
	assert.Equal(t, bcrypt.DefaultCost, cost)

	// Every input comes back with its defaults.
	for _, k := range []resource.PropertyKey{"length", "special", "upper", "lower", "numeric", "number", "minNumeric", "minUpper", "keepers"} {
		assert.Contains(t, state, k)
	}
	assert.Equal(t, "3", state["keepers"].ObjectValue()["generation"].StringValue())
}

// bcrypt hashes at most 72 bytes; the real provider documents that a longer
// result gets the hash of its first 72 bytes.
func TestCreateHashesFirst72Bytes(t *testing.T) {
	p := newStandInProvider(nil)
	state := created(t, p, map[string]any{"length": 100})
	result := state["result"].SecretValue().Element.StringValue()
	hash := state["bcryptHash"].SecretValue().Element.StringValue()
	assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte(result[:72])))
}

func TestPreviewCreateLeavesResultUnknown(t *testing.T) {
	p := newStandInProvider(nil)
	inputs, failures := check(t, p, props(map[string]any{"length": 32}))
	require.Empty(t, failures)
	id, outputs := create(t, p, inputs, true)
	assert.Empty(t, id, "a preview creates nothing, so it has no ID")
	assert.True(t, outputs["result"].IsComputed(), "result must be unknown in a preview")
	assert.True(t, outputs["bcryptHash"].IsComputed(), "bcryptHash must be unknown in a preview")
	assert.Equal(t, 32.0, outputs["length"].NumberValue())
}

func TestPreviewCreateAcceptsUnknownInputs(t *testing.T) {
	p := newStandInProvider(nil)
	news := props(map[string]any{})
	news["length"] = resource.MakeComputed(resource.NewStringProperty(""))
	inputs, failures := check(t, p, news)
	require.Empty(t, failures)
	_, outputs := create(t, p, inputs, true)
	assert.True(t, outputs["length"].IsComputed())
	assert.True(t, outputs["result"].IsComputed())
}

func TestCreateRejectsInvalidOrUnknownInputs(t *testing.T) {
	p := newStandInProvider(nil)
	_, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: testURN, Properties: toStruct(t, props(map[string]any{"length": 0}))})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "length is 0: it must be at least 1")

	news := props(map[string]any{})
	news["length"] = resource.MakeComputed(resource.NewStringProperty(""))
	_, err = p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: testURN, Properties: toStruct(t, news)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "input length is not known yet")
}

func TestReadReturnsStoredState(t *testing.T) {
	p := newStandInProvider(nil)
	state := created(t, p, map[string]any{"length": 16, "keepers": map[string]any{"generation": "1"}})
	inputs, _ := check(t, p, props(map[string]any{"length": 16, "keepers": map[string]any{"generation": "1"}}))

	resp, err := p.Read(context.Background(), &pulumirpc.ReadRequest{Id: "none", Urn: testURN, Properties: toStruct(t, state), Inputs: toStruct(t, inputs)})
	require.NoError(t, err)
	assert.Equal(t, "none", resp.GetId())
	assert.Equal(t, state, fromStruct(t, resp.GetProperties()))
	assert.Equal(t, inputs, fromStruct(t, resp.GetInputs()))

	// Without recorded inputs, they are the state less the generated values.
	resp, err = p.Read(context.Background(), &pulumirpc.ReadRequest{Id: "none", Urn: testURN, Properties: toStruct(t, state)})
	require.NoError(t, err)
	assert.Equal(t, inputs, fromStruct(t, resp.GetInputs()))
}

func TestReadWithoutStateRejectsImport(t *testing.T) {
	_, err := newStandInProvider(nil).Read(context.Background(), &pulumirpc.ReadRequest{Id: "hunter2", Urn: testURN})
	require.Error(t, err)
	assert.Equal(t, codes.Unimplemented, status.Code(err))
	assert.Contains(t, err.Error(), "not supported by this stand-in")
}

func TestUpdateReturnsOldState(t *testing.T) {
	p := newStandInProvider(nil)
	state := created(t, p, map[string]any{"length": 16})
	resp, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{Id: "none", Urn: testURN, Olds: toStruct(t, state), News: toStruct(t, props(map[string]any{"length": 20}))})
	require.NoError(t, err)
	assert.Equal(t, state, fromStruct(t, resp.GetProperties()))
}

func TestDeleteSucceeds(t *testing.T) {
	_, err := newStandInProvider(nil).Delete(context.Background(), &pulumirpc.DeleteRequest{Id: "none", Urn: testURN})
	assert.NoError(t, err)
}

func TestCheckRejectsOtherTypes(t *testing.T) {
	urn := "urn:pulumi:dev::jwt::random:index/randomString:RandomString::s"
	_, err := newStandInProvider(nil).Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: &structpb.Struct{}})
	require.Error(t, err)
	assert.Equal(t, codes.Unimplemented, status.Code(err))
	assert.Contains(t, err.Error(), "random:index/randomString:RandomString")
	assert.Contains(t, err.Error(), "install the real random provider plugin")
}

func TestPluginInfoMappingAndCancel(t *testing.T) {
	p := newStandInProvider(nil)
	ctx := context.Background()
	info, err := p.GetPluginInfo(ctx, &emptypb.Empty{})
	require.NoError(t, err)
	assert.Equal(t, "4.19.0", info.GetVersion())

	m, err := p.GetMapping(ctx, &pulumirpc.GetMappingRequest{Key: "terraform"})
	require.NoError(t, err)
	assert.Empty(t, m.GetProvider())
	assert.Empty(t, m.GetData())

	_, err = p.Cancel(ctx, &emptypb.Empty{})
	assert.NoError(t, err)
}

func TestSchemaDescribesRandomPassword(t *testing.T) {
	resp, err := newStandInProvider(nil).GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	require.NoError(t, err)

	type property struct {
		Type   string `json:"type"`
		Secret bool   `json:"secret"`
	}
	var schema struct {
		Name      string `json:"name"`
		Version   string `json:"version"`
		Resources map[string]struct {
			Properties      map[string]property `json:"properties"`
			InputProperties map[string]property `json:"inputProperties"`
			RequiredInputs  []string            `json:"requiredInputs"`
		} `json:"resources"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp.GetSchema()), &schema))
	assert.Equal(t, "random", schema.Name)
	assert.Equal(t, "4.19.0", schema.Version)
	require.Len(t, schema.Resources, 1)
	res, ok := schema.Resources[passwordToken]
	require.True(t, ok)

	var inputs []string
	for name := range res.InputProperties {
		inputs = append(inputs, name)
	}
	sort.Strings(inputs)
	assert.Equal(t, strings.Split(inputKeyList(), ", "), inputs, "the schema's inputs must be the ones Check accepts")
	assert.Equal(t, []string{"length"}, res.RequiredInputs)
	assert.True(t, res.Properties["result"].Secret)
	assert.True(t, res.Properties["bcryptHash"].Secret)
	for _, name := range inputs {
		assert.Contains(t, res.Properties, name, "every input is also an output")
	}
}
