package jwtstack_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// mapSource is a config Source over full keys.
type mapSource struct {
	values  map[string]string
	secrets []string
}

func (s mapSource) GetConfig(key string) (string, bool) {
	v, ok := s.values[key]
	return v, ok
}

func (s mapSource) IsConfigSecret(key string) bool {
	for _, k := range s.secrets {
		if k == key {
			return true
		}
	}
	return false
}

var today = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func parse(t *testing.T, stack string, values map[string]string) (jwtstack.Config, []string, error) {
	t.Helper()
	full := map[string]string{}
	for k, v := range values {
		full[jwtstack.FullKey(k)] = v
	}
	return jwtstack.ParseConfig(mapSource{values: full}, stack, today)
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, warnings, err := parse(t, "dev", nil)
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Equal(t, jwtstack.Config{
		Namespace: "juwan", SecretName: "jwt-secret", RoleName: "jwt-secret-reader",
		KeyLength: 64, KeyGeneration: 1, Consumers: jwtstack.DefaultConsumers(),
	}, cfg)
	assert.Equal(t, 256, cfg.Consumers[1].Mount.FileMode, "0400 is 256")
}

func TestParseConfigConsumers(t *testing.T) {
	cfg, _, err := parse(t, "dev", map[string]string{
		"consumers": `[{"deployment":"billing","container":"app","env":{"current":"KEY"}},
		               {"deployment":"edge","container":"proxy","serviceAccount":"edge-sa","mount":{"path":"/run/keys","mode":"0440"}}]`,
	})
	require.NoError(t, err)
	require.Len(t, cfg.Consumers, 2)
	assert.Equal(t, jwtstack.Consumer{Deployment: "billing", Container: "app", ServiceAccount: "billing",
		Env: &jwtstack.EnvConsumer{Current: "KEY"}}, cfg.Consumers[0])
	assert.Equal(t, &jwtstack.MountConfig{Path: "/run/keys", Mode: "0440", Volume: "jwt-secret", FileMode: 0o440}, cfg.Consumers[1].Mount)
	assert.Equal(t, "edge-sa", cfg.Consumers[1].ServiceAccount)
}

func TestParseConfigRejects(t *testing.T) {
	valid := `{"deployment":"user-rpc","container":"user-rpc","env":{"current":"JWT_SECRET_KEY"}}`
	cases := []struct {
		name   string
		stack  string
		values map[string]string
		want   []string
	}{
		{"short key", "dev", map[string]string{"keyLength": "16"},
			[]string{`juwan-jwt-secret:keyLength: invalid value "16"`, "RFC 7518", "pulumi config set juwan-jwt-secret:keyLength 64"}},
		{"huge key", "dev", map[string]string{"keyLength": "5000"}, []string{`keyLength: invalid value "5000"`, "32 to 1024 bytes"}},
		{"key length not a number", "dev", map[string]string{"keyLength": "long"}, []string{`keyLength: invalid value "long": must be an integer`}},
		{"generation zero", "dev", map[string]string{"keyGeneration": "0"},
			[]string{`juwan-jwt-secret:keyGeneration: invalid value "0"`, "starts at 1", "pulumi config set juwan-jwt-secret:keyGeneration 1"}},
		{"generation negative", "dev", map[string]string{"keyGeneration": "-3"}, []string{`keyGeneration: invalid value "-3"`}},
		{"generation not integer", "dev", map[string]string{"keyGeneration": "2.5"}, []string{`keyGeneration: invalid value "2.5": must be an integer`}},
		{"namespace uppercase", "dev", map[string]string{"namespace": "Juwan"}, []string{`juwan-jwt-secret:namespace: invalid value "Juwan"`, "DNS-1123 label"}},
		{"secret name underscore", "dev", map[string]string{"secretName": "jwt_secret"}, []string{`secretName: invalid value "jwt_secret"`, "DNS-1123 subdomain"}},
		{"role name empty", "dev", map[string]string{"roleName": ""}, []string{`roleName: invalid value ""`}},
		{"protect not boolean", "dev", map[string]string{"protect": "yes please"}, []string{`protect: invalid value "yes please": must be true or false`}},
		{"prod without protect", "prod", map[string]string{"maxKeyAgeDays": "90", "keyRotatedAt": "2026-12-01"},
			[]string{`juwan-jwt-secret:protect: invalid value "false"`, `stack "prod" is a production stack`, "pulumi config set juwan-jwt-secret:protect true"}},
		{"prod without key age", "prod", map[string]string{"protect": "true", "keyRotatedAt": "2026-12-01"}, []string{`maxKeyAgeDays: invalid value "0"`, "production stack must state"}},
		{"prod without rotation day", "prod", map[string]string{"protect": "true", "maxKeyAgeDays": "90"}, []string{`keyRotatedAt: invalid value ""`, "pulumi config set juwan-jwt-secret:keyRotatedAt 2026-12-04"}},
		{"prod key too old", "prod", map[string]string{"protect": "true", "maxKeyAgeDays": "30", "keyRotatedAt": "2026-09-01", "keyGeneration": "4"},
			[]string{"generation 4 is 94 days old", "pulumi config set juwan-jwt-secret:keyGeneration 5"}},
		{"rotation day in future", "dev", map[string]string{"keyRotatedAt": "2027-01-01"}, []string{`keyRotatedAt: invalid value "2027-01-01": is in the future`}},
		{"rotation day malformed", "dev", map[string]string{"keyRotatedAt": "04/12/2026"}, []string{`keyRotatedAt: invalid value "04/12/2026": must be a date in the form YYYY-MM-DD`}},
		{"negative key age", "dev", map[string]string{"maxKeyAgeDays": "-1"}, []string{`maxKeyAgeDays: invalid value "-1"`}},
		{"consumers not a list", "dev", map[string]string{"consumers": `{"deployment":"x"}`}, []string{"consumers: invalid value", "must be a list of objects"}},
		{"consumers empty", "dev", map[string]string{"consumers": `[]`}, []string{"must list at least one Deployment"}},
		{"consumer without binding", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x"}]`},
			[]string{"consumers[0].env", "needs env, mount or both"}},
		{"consumer without deployment", "dev", map[string]string{"consumers": `[{"container":"x","env":{"current":"K"}}]`},
			[]string{"consumers[0].deployment", "is missing"}},
		{"consumer without container", "dev", map[string]string{"consumers": `[{"deployment":"x","env":{"current":"K"}}]`},
			[]string{"consumers[0].container", "is missing"}},
		{"consumer bad deployment name", "dev", map[string]string{"consumers": `[{"deployment":"User RPC","container":"x","env":{"current":"K"}}]`},
			[]string{`consumers[0].deployment: invalid value "User RPC"`, "DNS-1123 subdomain"}},
		{"consumer bad container name", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"a.b","env":{"current":"K"}}]`},
			[]string{`consumers[0].container: invalid value "a.b"`, "DNS-1123 label"}},
		{"consumer default service account", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","serviceAccount":"default","env":{"current":"K"}}]`},
			[]string{`consumers[0].serviceAccount: invalid value "default"`, "every pod without a ServiceAccount"}},
		{"env next equals current", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","env":{"current":"K","next":"K"}}]`},
			[]string{`consumers[0].env.next: invalid value "K": must differ`}},
		{"consumer bad service account", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","serviceAccount":"-sa","env":{"current":"K"}}]`},
			[]string{`consumers[0].serviceAccount: invalid value "-sa"`}},
		{"consumer unknown field", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","env":{"current":"K"},"namespace":"y"}]`},
			[]string{"consumers[0]", `unknown field "namespace"`, "known fields are deployment"}},
		{"consumer field in wrong case", "dev", map[string]string{"consumers": `[{"Deployment":"x","container":"x","env":{"current":"K"}}]`},
			[]string{`unknown field "Deployment"; did you mean "deployment"?`}},
		{"env field in wrong case", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","env":{"Current":"K"}}]`},
			[]string{`unknown field "Current"; did you mean "current"?`}},
		{"consumer unknown mount field", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"/k","subPath":"a"}}]`},
			[]string{`unknown field "subPath"`}},
		{"consumer duplicate", "dev", map[string]string{"consumers": "[" + valid + "," + valid + "]"},
			[]string{`consumers[1].deployment: invalid value "user-rpc": duplicate of consumers[0]`}},
		{"env name invalid", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","env":{"current":"JWT-KEY"}}]`},
			[]string{`consumers[0].env.current: invalid value "JWT-KEY"`, "env var name"}},
		{"env names equal", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","env":{"current":"K","previous":"K"}}]`},
			[]string{`consumers[0].env.previous: invalid value "K": must differ`}},
		{"mount path relative", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"etc/jwt"}}]`},
			[]string{`consumers[0].mount.path: invalid value "etc/jwt"`, "clean absolute directory"}},
		{"mount path root", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"/"}}]`},
			[]string{`consumers[0].mount.path: invalid value "/"`}},
		{"mount mode as number", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"/k","mode":400}}]`},
			[]string{"mount.mode must be a quoted octal string", `"0400"`}},
		{"mount mode out of range", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"/k","mode":"01000"}}]`},
			[]string{`consumers[0].mount.mode: invalid value "01000"`, "from 0000 to 0777"}},
		{"mount mode not octal", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"/k","mode":"0800"}}]`},
			[]string{`mount.mode: invalid value "0800"`}},
		{"mount mode world readable", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"/k","mode":"0644"}}]`},
			[]string{`mount.mode: invalid value "0644"`, "never writable, executable or world-readable"}},
		{"mount mode owner cannot read", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"/k","mode":"0040"}}]`},
			[]string{`mount.mode: invalid value "0040"`, "owner must be able to read"}},
		{"mount volume invalid", "dev", map[string]string{"consumers": `[{"deployment":"x","container":"x","mount":{"path":"/k","volume":"Keys"}}]`},
			[]string{`mount.volume: invalid value "Keys"`}},
		{"consumer field wrong type", "dev", map[string]string{"consumers": `[{"deployment":7,"container":"x","env":{"current":"K"}}]`},
			[]string{"deployment must be a string, not a number"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parse(t, c.stack, c.values)
			require.Error(t, err)
			var configErr *jwtstack.ConfigError
			require.ErrorAs(t, err, &configErr)
			for _, want := range c.want {
				assert.Contains(t, err.Error(), want)
			}
			assert.Contains(t, err.Error(), "fix:", "every problem names its fix")
		})
	}
}

func TestParseConfigListsEveryProblem(t *testing.T) {
	_, _, err := parse(t, "dev", map[string]string{"keyLength": "8", "keyGeneration": "0", "namespace": "A"})
	var configErr *jwtstack.ConfigError
	require.ErrorAs(t, err, &configErr)
	assert.Len(t, configErr.Problems, 3)
}

func TestParseConfigOldKeyWarnsInDev(t *testing.T) {
	_, warnings, err := parse(t, "dev", map[string]string{"maxKeyAgeDays": "30", "keyRotatedAt": "2026-09-01", "keyGeneration": "2"})
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "generation 2 is 94 days old")
	assert.Contains(t, warnings[0], "pulumi config set juwan-jwt-secret:keyGeneration 3 --stack dev && pulumi config set juwan-jwt-secret:keyRotatedAt 2026-12-04 --stack dev")
}

func TestParseConfigFreshKeyPassesProd(t *testing.T) {
	cfg, warnings, err := parse(t, "prod", map[string]string{"protect": "true", "maxKeyAgeDays": "90", "keyRotatedAt": "2026-12-01"})
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.True(t, cfg.Production)
	assert.True(t, jwtstack.IsProductionStack("production-eu"))
	assert.True(t, jwtstack.IsProductionStack("prod-eu"))
	assert.False(t, jwtstack.IsProductionStack("product-demo"))
	assert.True(t, cfg.Protect)
	assert.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), cfg.KeyRotatedAt)
}

func TestParseConfigLegacyKey(t *testing.T) {
	const key = "legacy-signing-key-value-0123456789-abcdef"
	full := func(values map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range values {
			out[jwtstack.FullKey(k)] = v
		}
		return out
	}

	// Plaintext in the stack file is rejected, and the value is not echoed.
	_, _, err := jwtstack.ParseConfig(mapSource{values: full(map[string]string{"legacyKey": key})}, "dev", today)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stored in plaintext")
	assert.Contains(t, err.Error(), "pulumi config set --secret juwan-jwt-secret:legacyKey --stack dev < file-with-the-key")
	assert.NotContains(t, err.Error(), key)

	secretKeys := []string{jwtstack.FullKey("legacyKey")}
	cfg, warnings, err := jwtstack.ParseConfig(mapSource{values: full(map[string]string{"legacyKey": key}), secrets: secretKeys}, "dev", today)
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.True(t, cfg.HasLegacyKey)

	cfg, warnings, err = jwtstack.ParseConfig(mapSource{values: full(map[string]string{"legacyKey": key, "keyGeneration": "2"}), secrets: secretKeys}, "dev", today)
	require.NoError(t, err)
	assert.False(t, cfg.HasLegacyKey)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "pulumi config rm juwan-jwt-secret:legacyKey")
	assert.NotContains(t, warnings[0], key)
}

// projectFile is the part of Pulumi.yaml the tests read.
type projectFile struct {
	Name   string `yaml:"name"`
	Config map[string]struct {
		Type        string `yaml:"type"`
		Default     any    `yaml:"default"`
		Description string `yaml:"description"`
	} `yaml:"config"`
}

func readProjectFile(t *testing.T) projectFile {
	t.Helper()
	content, err := os.ReadFile(filepath.Join("..", "Pulumi.yaml"))
	require.NoError(t, err)
	var project projectFile
	require.NoError(t, yaml.Unmarshal(content, &project))
	return project
}

func TestProjectFileDeclaresEveryKey(t *testing.T) {
	project := readProjectFile(t)
	assert.Equal(t, jwtstack.Project, project.Name)

	declared := []string{}
	for key, decl := range project.Config {
		declared = append(declared, key)
		assert.NotEmpty(t, decl.Type, "%s needs a type", key)
		assert.NotEmpty(t, strings.TrimSpace(decl.Description), "%s needs a description", key)
		assert.NotNil(t, decl.Default, "%s needs a default, or Pulumi makes it required", key)
	}
	assert.ElementsMatch(t, jwtstack.KnownKeys, declared)
}

// TestProjectFileDefaultsMatchCode checks that a run with only the project
// defaults (the CLI) and a run with no config at all (mocks) agree.
func TestProjectFileDefaultsMatchCode(t *testing.T) {
	project := readProjectFile(t)
	values := map[string]string{}
	for key, decl := range project.Config {
		switch v := decl.Default.(type) {
		case string:
			values[key] = v
		case int, bool:
			values[key] = toString(v)
		default:
			encoded, err := jsonString(v)
			require.NoError(t, err)
			values[key] = encoded
		}
	}
	fromFile, _, err := parse(t, "dev", values)
	require.NoError(t, err)
	fromCode, _, err := parse(t, "dev", nil)
	require.NoError(t, err)
	assert.Equal(t, fromCode, fromFile)
}

func TestStackFilesAreValid(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		path := filepath.Join("..", "Pulumi."+stack+".yaml")
		problems, err := jwtstack.CheckStackFileKeys(path)
		require.NoError(t, err, stack)
		assert.Empty(t, problems, stack)

		content, err := os.ReadFile(path)
		require.NoError(t, err)
		var stackFile struct {
			Config map[string]any `yaml:"config"`
		}
		require.NoError(t, yaml.Unmarshal(content, &stackFile))
		values := map[string]string{}
		for k, v := range stackFile.Config {
			values[strings.TrimPrefix(k, jwtstack.Project+":")] = toString(v)
		}
		// Measure the key age on the day the stack file records it was
		// rotated, so this test does not expire with the key.
		now := today
		if day, ok := values["keyRotatedAt"]; ok {
			now, err = time.Parse(time.DateOnly, day)
			require.NoError(t, err)
		}
		full := map[string]string{}
		for k, v := range values {
			full[jwtstack.FullKey(k)] = v
		}
		cfg, _, err := jwtstack.ParseConfig(mapSource{values: full}, stack, now)
		require.NoError(t, err, stack)
		assert.Equal(t, stack == "prod", cfg.Protect, "%s: protect", stack)
	}
}

func TestCheckStackFileKeysFindsTypos(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Pulumi.dev.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`config:
  juwan-jwt-secret:keyGenration: 2
  juwan-jwt-secret:keyGeneration: 1
  juwan-jwt-secret:colour: blue
  kubernetes:context: kind
  maxKeyAgeDay: 30
  juwan-jwt-secrets:protect: true
`), 0o600))

	problems, err := jwtstack.CheckStackFileKeys(path)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"juwan-jwt-secret:colour: unknown config key in Pulumi.dev.yaml; fix: remove it",
		"juwan-jwt-secret:keyGenration: unknown config key in Pulumi.dev.yaml; fix: remove it or rename it to juwan-jwt-secret:keyGeneration",
		`juwan-jwt-secrets:protect: unknown config namespace "juwan-jwt-secrets" in Pulumi.dev.yaml; fix: rename it to juwan-jwt-secret:protect`,
		"maxKeyAgeDay: unknown config key in Pulumi.dev.yaml; fix: remove it or rename it to juwan-jwt-secret:maxKeyAgeDays",
	}, problems)

	problems, err = jwtstack.CheckStackFileKeys(filepath.Join(t.TempDir(), "missing.yaml"))
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	default:
		encoded, _ := jsonString(v)
		return encoded
	}
}

func jsonString(v any) (string, error) {
	encoded, err := json.Marshal(v)
	return string(encoded), err
}
