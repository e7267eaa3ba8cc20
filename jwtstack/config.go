// Package jwtstack builds the stack: it reads and validates the stack config
// and registers the signing key, the access to it and the consumer patches.
// main.go, the Automation API driver and the tests all run Program.
package jwtstack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Project is the Pulumi project name, and so the namespace of its config keys.
const Project = "juwan-jwt-secret"

// Config keys, without the project namespace.
const (
	KeyNamespace     = "namespace"
	KeySecretName    = "secretName"
	KeyRoleName      = "roleName"
	KeyKeyLength     = "keyLength"
	KeyKeyGeneration = "keyGeneration"
	KeyProtect       = "protect"
	KeyConsumers     = "consumers"
	KeyLegacyKey     = "legacyKey"
	KeyKeyRotatedAt  = "keyRotatedAt"
	KeyMaxKeyAgeDays = "maxKeyAgeDays"
)

// Limits of the key length in bytes. HS256 needs a key of at least 256 bits
// (RFC 7518 section 3.2). The maximum keeps the key a reasonable env var.
const (
	MinKeyLength     = 32
	MaxKeyLength     = 1024
	DefaultKeyLength = 64
)

// DefaultFileMode lets only the file owner read the key files.
const DefaultFileMode = 0o400

// maxFileMode is the widest mode a key file may have: read for owner and
// group. Group read is needed when a non-root container reads the files
// through the pod's fsGroup.
const maxFileMode = 0o440

// DefaultVolumeName is the pod volume name of a file binding.
const DefaultVolumeName = "jwt-secret"

// Config is the validated stack config.
type Config struct {
	Namespace     string
	SecretName    string
	RoleName      string
	KeyLength     int
	KeyGeneration int
	Protect       bool
	Consumers     []Consumer
	// HasLegacyKey reports that legacyKey is set. The value itself stays in
	// the Pulumi config, as a secret, and is read by Program.
	HasLegacyKey bool
	// KeyRotatedAt is the day the current generation was rotated, or the
	// zero time if unset.
	KeyRotatedAt time.Time
	// MaxKeyAgeDays is the rotation policy: the current key may be at most
	// this many days old. Zero means no limit.
	MaxKeyAgeDays int
	// Production is true for stacks named prod, production or prod-*.
	Production bool
}

// Consumer is a Deployment that reads the key.
type Consumer struct {
	Deployment     string       `json:"deployment"`
	Container      string       `json:"container"`
	ServiceAccount string       `json:"serviceAccount,omitempty"`
	Env            *EnvConsumer `json:"env,omitempty"`
	Mount          *MountConfig `json:"mount,omitempty"`
	// Optional consumers are skipped, with a warning, while their
	// Deployment does not exist.
	Optional bool `json:"optional,omitempty"`
	// ForceConflicts takes over the patched fields from any other field
	// manager instead of failing on a conflict.
	ForceConflicts bool `json:"forceConflicts,omitempty"`

	// Drift describes fields of the live Deployment that someone changed
	// by hand, found before the run. It is not config.
	Drift string `json:"-"`
}

// EnvConsumer names the env vars that receive the keys.
type EnvConsumer struct {
	Current  string `json:"current"`
	Previous string `json:"previous,omitempty"`
	Next     string `json:"next,omitempty"`
}

// MountConfig describes the read-only Secret volume.
type MountConfig struct {
	Path string `json:"path"`
	// Mode is an octal string such as "0400". A string, because YAML
	// reads an unquoted 0400 as 400 or 256 depending on the parser.
	Mode   string `json:"mode,omitempty"`
	Volume string `json:"volume,omitempty"`

	// FileMode is Mode parsed.
	FileMode int `json:"-"`
}

// DefaultConsumers are the two consumers of the juwan backend: user-rpc
// reads the keys from env vars, Envoy from files.
func DefaultConsumers() []Consumer {
	return []Consumer{
		{
			Deployment:     "user-rpc",
			Container:      "user-rpc",
			ServiceAccount: "user-rpc",
			Env:            &EnvConsumer{Current: "JWT_SECRET_KEY", Previous: "JWT_PREVIOUS_SECRET_KEY", Next: "JWT_NEXT_SECRET_KEY"},
		},
		{
			Deployment:     "envoy-gateway",
			Container:      "envoy",
			ServiceAccount: "envoy-gateway",
			Mount:          &MountConfig{Path: "/etc/jwt", Mode: "0400", Volume: DefaultVolumeName, FileMode: DefaultFileMode},
		},
	}
}

// Source is the origin of config values: the Pulumi context in a run, a
// map in tests. Keys are full keys such as "juwan-jwt-secret:keyLength".
type Source interface {
	GetConfig(key string) (string, bool)
	IsConfigSecret(key string) bool
}

// ConfigError is an invalid stack config. It lists every problem, so one
// preview shows all of them.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "invalid stack config:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// FullKey returns key in the project's config namespace.
func FullKey(key string) string {
	return Project + ":" + key
}

// ParseConfig reads and validates the config of stack. It returns the
// config, warnings to show the user, and a *ConfigError if any value is
// invalid. now is the time the key age is measured against.
func ParseConfig(source Source, stack string, now time.Time) (Config, []string, error) {
	p := &parser{source: source, stack: stack}
	cfg := Config{Production: IsProductionStack(stack)}

	cfg.Namespace = p.name(KeyNamespace, "juwan", dns1123Label, "a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters")
	cfg.SecretName = p.name(KeySecretName, "jwt-secret", dns1123Subdomain, "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters")
	cfg.RoleName = p.name(KeyRoleName, "jwt-secret-reader", dns1123Subdomain, "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters")

	cfg.KeyLength = p.integer(KeyKeyLength, DefaultKeyLength)
	if cfg.KeyLength < MinKeyLength || cfg.KeyLength > MaxKeyLength {
		p.fail(KeyKeyLength, strconv.Itoa(cfg.KeyLength),
			fmt.Sprintf("the key must be %d to %d bytes; HS256 needs at least 256 bits (RFC 7518 section 3.2)", MinKeyLength, MaxKeyLength),
			p.setCommand(KeyKeyLength, strconv.Itoa(DefaultKeyLength)))
	}

	cfg.KeyGeneration = p.integer(KeyKeyGeneration, 1)
	if cfg.KeyGeneration < 1 {
		p.fail(KeyKeyGeneration, strconv.Itoa(cfg.KeyGeneration),
			"the generation starts at 1 and only grows",
			p.setCommand(KeyKeyGeneration, "1"))
	}

	cfg.Protect = p.boolean(KeyProtect, false)
	if cfg.Production && !cfg.Protect {
		p.fail(KeyProtect, strconv.FormatBool(cfg.Protect),
			fmt.Sprintf("stack %q is a production stack, and its key must be protected from deletion", stack),
			p.setCommand(KeyProtect, "true"))
	}

	cfg.Consumers = p.consumers()
	p.legacyKey(&cfg)
	p.keyAge(&cfg, now)

	if len(p.problems) > 0 {
		return Config{}, p.warnings, &ConfigError{Problems: p.problems}
	}
	return cfg, p.warnings, nil
}

// IsProductionStack reports whether a stack holds production keys, by the
// stack naming convention: prod, production, prod-<suffix> or
// production-<suffix>.
func IsProductionStack(stack string) bool {
	return stack == "prod" || stack == "production" || strings.HasPrefix(stack, "prod-") || strings.HasPrefix(stack, "production-")
}

var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	envVarName       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	octalMode        = regexp.MustCompile(`^0[0-7]{3}$`)
)

// parser collects problems and warnings while it reads config values.
type parser struct {
	source   Source
	stack    string
	problems []string
	warnings []string
}

// fail records an invalid value. It never puts secret values in the message.
func (p *parser) fail(key, value, reason, fix string) {
	p.problems = append(p.problems, fmt.Sprintf("%s: invalid value %s: %s; fix: %s", FullKey(key), quote(value), reason, fix))
}

func (p *parser) get(key string) (string, bool) {
	return p.source.GetConfig(FullKey(key))
}

func (p *parser) name(key, fallback string, pattern *regexp.Regexp, rule string) string {
	value, ok := p.get(key)
	if !ok {
		return fallback
	}
	if len(value) > 253 || !pattern.MatchString(value) {
		p.fail(key, value, "must be "+rule, p.setCommand(key, fallback))
	}
	return value
}

func (p *parser) integer(key string, fallback int) int {
	value, ok := p.get(key)
	if !ok {
		return fallback
	}
	parsed, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil {
		p.fail(key, value, "must be an integer", p.setCommand(key, strconv.Itoa(fallback)))
		return fallback
	}
	return parsed
}

func (p *parser) boolean(key string, fallback bool) bool {
	value, ok := p.get(key)
	if !ok {
		return fallback
	}
	parsed, err := strconv.ParseBool(value)
	if err != nil {
		p.fail(key, value, "must be true or false", p.setCommand(key, strconv.FormatBool(fallback)))
		return fallback
	}
	return parsed
}

// consumers decodes and checks the consumer list. It rejects unknown fields,
// so a misspelt field fails instead of being ignored.
func (p *parser) consumers() []Consumer {
	value, ok := p.get(KeyConsumers)
	if !ok {
		return DefaultConsumers()
	}
	fix := "edit " + FullKey(KeyConsumers) + " in the stack file; each item needs deployment, container, and env or mount"

	var items []json.RawMessage
	if err := json.Unmarshal([]byte(value), &items); err != nil {
		p.fail(KeyConsumers, value, "must be a list of objects", fix)
		return nil
	}
	if len(items) == 0 {
		p.fail(KeyConsumers, value, "must list at least one Deployment that reads the key", fix)
		return nil
	}

	consumers := make([]Consumer, 0, len(items))
	seenDeployments := map[string]int{}
	for i, item := range items {
		field := fmt.Sprintf("%s[%d]", KeyConsumers, i)
		consumer, err := decodeConsumer(item)
		if err != nil {
			p.fail(field, string(item), err.Error(), fix)
			continue
		}
		for _, problem := range checkConsumer(&consumer) {
			p.fail(field+"."+problem.field, problem.value, problem.reason, fix)
		}
		if first, dup := seenDeployments[consumer.Deployment]; dup && consumer.Deployment != "" {
			p.fail(field+".deployment", consumer.Deployment,
				fmt.Sprintf("duplicate of %s[%d]; two patches of one Deployment would undo each other", KeyConsumers, first),
				"merge the two items into one")
		}
		seenDeployments[consumer.Deployment] = i
		consumers = append(consumers, consumer)
	}
	return consumers
}

// consumerFields are the exact field names of a consumer and of its env and
// mount objects. encoding/json matches names without regard to case, so
// they are checked before decoding.
var consumerFields = map[string][]string{
	"":      {"deployment", "container", "serviceAccount", "optional", "forceConflicts", "env", "mount"},
	"env":   {"current", "previous", "next"},
	"mount": {"path", "mode", "volume"},
}

// checkFieldNames rejects a field whose name differs from a known one only
// in case, such as Deployment for deployment.
func checkFieldNames(item json.RawMessage) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(item, &fields) != nil {
		return nil
	}
	for parent, known := range consumerFields {
		object := fields
		if parent != "" {
			if json.Unmarshal(fields[parent], &object) != nil {
				continue
			}
		}
		for name := range object {
			for _, want := range known {
				if name != want && strings.EqualFold(name, want) {
					return fmt.Errorf("unknown field %q; did you mean %q? Field names are case-sensitive", name, want)
				}
			}
		}
	}
	return nil
}

// decodeConsumer decodes one consumer strictly and fills its defaults.
func decodeConsumer(item json.RawMessage) (Consumer, error) {
	if err := checkFieldNames(item); err != nil {
		return Consumer{}, err
	}
	var consumer Consumer
	decoder := json.NewDecoder(bytes.NewReader(item))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&consumer); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if typeErr.Field == "mount.mode" {
				return consumer, fmt.Errorf("mount.mode must be a quoted octal string such as \"0400\", not a %s", typeErr.Value)
			}
			return consumer, fmt.Errorf("%s must be a %s, not a %s", typeErr.Field, jsonTypeName(typeErr.Type.String()), typeErr.Value)
		}
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return consumer, fmt.Errorf("%s; known fields are deployment, container, serviceAccount, optional, forceConflicts, env (current, previous, next) and mount (path, mode, volume)",
				strings.TrimPrefix(err.Error(), "json: "))
		}
		return consumer, fmt.Errorf("must be an object: %s", strings.TrimPrefix(err.Error(), "json: "))
	}

	if consumer.ServiceAccount == "" {
		consumer.ServiceAccount = consumer.Deployment
	}
	if consumer.Mount != nil {
		if consumer.Mount.Mode == "" {
			consumer.Mount.Mode = "0400"
		}
		if consumer.Mount.Volume == "" {
			consumer.Mount.Volume = DefaultVolumeName
		}
	}
	return consumer, nil
}

func jsonTypeName(goType string) string {
	switch {
	case goType == "string":
		return "string"
	case strings.Contains(goType, "EnvConsumer"), strings.Contains(goType, "MountConfig"):
		return "object"
	default:
		return goType
	}
}

type fieldProblem struct {
	field, value, reason string
}

// checkConsumer validates the fields of one decoded consumer and parses its
// file mode.
func checkConsumer(c *Consumer) []fieldProblem {
	var problems []fieldProblem
	subdomain := "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'"
	label := "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters"

	if c.Deployment == "" {
		problems = append(problems, fieldProblem{"deployment", "", "is missing; name the Deployment that reads the key"})
	} else if !dns1123Subdomain.MatchString(c.Deployment) || len(c.Deployment) > 253 {
		problems = append(problems, fieldProblem{"deployment", c.Deployment, subdomain})
	}
	if c.Container == "" {
		problems = append(problems, fieldProblem{"container", "", "is missing; name the container of the pod template that reads the key"})
	} else if !dns1123Label.MatchString(c.Container) {
		problems = append(problems, fieldProblem{"container", c.Container, label})
	}
	if !dns1123Subdomain.MatchString(c.ServiceAccount) || len(c.ServiceAccount) > 253 {
		problems = append(problems, fieldProblem{"serviceAccount", c.ServiceAccount, subdomain})
	}
	if c.ServiceAccount == "default" {
		problems = append(problems, fieldProblem{"serviceAccount", c.ServiceAccount,
			"every pod without a ServiceAccount of its own runs as default, so binding it would let them all read the key; name a ServiceAccount for this Deployment"})
	}
	if c.Env == nil && c.Mount == nil {
		problems = append(problems, fieldProblem{"env", "", "a consumer needs env, mount or both, or it never sees the key"})
	}

	if c.Env != nil {
		if !envVarName.MatchString(c.Env.Current) {
			problems = append(problems, fieldProblem{"env.current", c.Env.Current, "must be an env var name: letters, digits and '_', not starting with a digit"})
		}
		if c.Env.Previous != "" && !envVarName.MatchString(c.Env.Previous) {
			problems = append(problems, fieldProblem{"env.previous", c.Env.Previous, "must be an env var name: letters, digits and '_', not starting with a digit"})
		}
		if c.Env.Previous != "" && c.Env.Previous == c.Env.Current {
			problems = append(problems, fieldProblem{"env.previous", c.Env.Previous, "must differ from env.current"})
		}
		if c.Env.Next != "" && !envVarName.MatchString(c.Env.Next) {
			problems = append(problems, fieldProblem{"env.next", c.Env.Next, "must be an env var name: letters, digits and '_', not starting with a digit"})
		}
		if c.Env.Next != "" && (c.Env.Next == c.Env.Current || c.Env.Next == c.Env.Previous) {
			problems = append(problems, fieldProblem{"env.next", c.Env.Next, "must differ from env.current and env.previous"})
		}
	}

	if c.Mount != nil {
		m := c.Mount
		if !path.IsAbs(m.Path) || path.Clean(m.Path) != m.Path || m.Path == "/" || strings.Contains(m.Path, ":") {
			problems = append(problems, fieldProblem{"mount.path", m.Path, "must be a clean absolute directory other than /, such as /etc/jwt"})
		}
		if !dns1123Label.MatchString(m.Volume) {
			problems = append(problems, fieldProblem{"mount.volume", m.Volume, label})
		}
		if !octalMode.MatchString(m.Mode) {
			problems = append(problems, fieldProblem{"mount.mode", m.Mode, "must be an octal mode from 0000 to 0777 written as a string, such as \"0400\""})
		} else {
			mode, _ := strconv.ParseInt(m.Mode, 8, 32)
			m.FileMode = int(mode)
			switch {
			case mode&0o400 == 0:
				problems = append(problems, fieldProblem{"mount.mode", m.Mode, "the file owner must be able to read the key; use \"0400\""})
			case mode&^maxFileMode != 0:
				problems = append(problems, fieldProblem{"mount.mode", m.Mode, "key files may be readable by owner and group only, never writable, executable or world-readable; use \"0400\", or \"0440\" with the pod's fsGroup"})
			}
		}
	}
	return problems
}

// legacyKey checks the imported key of a migration. Its value never goes
// into a message.
func (p *parser) legacyKey(cfg *Config) {
	// An empty value is the project default and means "not set".
	value, ok := p.get(KeyLegacyKey)
	if !ok || value == "" {
		return
	}
	fix := fmt.Sprintf("go run ./cmd/jwtctl --stack %s migrate, or pulumi config set --secret %s --stack %s < file-with-the-key", p.stack, FullKey(KeyLegacyKey), p.stack)
	switch {
	case !p.source.IsConfigSecret(FullKey(KeyLegacyKey)):
		p.problems = append(p.problems, fmt.Sprintf("%s: the value is stored in plaintext in the stack file; fix: remove it and set it again as a secret with: %s", FullKey(KeyLegacyKey), fix))
	case cfg.KeyGeneration > 1:
		p.warnings = append(p.warnings, fmt.Sprintf("%s is ignored since keyGeneration is above 1, because no live token can still be signed with it; remove it with: pulumi config rm %s", FullKey(KeyLegacyKey), FullKey(KeyLegacyKey)))
	default:
		cfg.HasLegacyKey = true
	}
}

// keyAge applies the rotation policy: an overdue key is a warning, and in
// production an error.
func (p *parser) keyAge(cfg *Config, now time.Time) {
	today := now.UTC().Format(time.DateOnly)
	rotatedFix := p.setCommand(KeyKeyRotatedAt, today)

	cfg.MaxKeyAgeDays = p.integer(KeyMaxKeyAgeDays, 0)
	if cfg.MaxKeyAgeDays < 0 {
		p.fail(KeyMaxKeyAgeDays, strconv.Itoa(cfg.MaxKeyAgeDays), "must be 0 (no limit) or a number of days", p.setCommand(KeyMaxKeyAgeDays, "90"))
	}
	if cfg.Production && cfg.MaxKeyAgeDays == 0 {
		p.fail(KeyMaxKeyAgeDays, strconv.Itoa(cfg.MaxKeyAgeDays), "a production stack must state the maximum key age in days", p.setCommand(KeyMaxKeyAgeDays, "90"))
	}

	value, ok := p.get(KeyKeyRotatedAt)
	if !ok || value == "" {
		if cfg.Production {
			p.fail(KeyKeyRotatedAt, "", "a production stack must record the day the current generation was rotated (YYYY-MM-DD)", rotatedFix)
		}
		return
	}
	rotatedAt, err := time.Parse(time.DateOnly, value)
	if err != nil {
		p.fail(KeyKeyRotatedAt, value, "must be a date in the form YYYY-MM-DD", rotatedFix)
		return
	}
	if rotatedAt.After(now) {
		p.fail(KeyKeyRotatedAt, value, "is in the future", rotatedFix)
		return
	}
	cfg.KeyRotatedAt = rotatedAt

	if cfg.MaxKeyAgeDays <= 0 || cfg.KeyGeneration < 1 {
		return
	}
	ageDays := int(now.Sub(rotatedAt).Hours() / 24)
	if ageDays <= cfg.MaxKeyAgeDays {
		return
	}
	message := fmt.Sprintf("the key of generation %d is %d days old, more than %s allows (%d days); fix: rotate it with: %s && %s",
		cfg.KeyGeneration, ageDays, FullKey(KeyMaxKeyAgeDays), cfg.MaxKeyAgeDays,
		p.setCommand(KeyKeyGeneration, strconv.Itoa(cfg.KeyGeneration+1)), rotatedFix)
	if cfg.Production {
		p.problems = append(p.problems, FullKey(KeyKeyRotatedAt)+": "+message)
		return
	}
	p.warnings = append(p.warnings, message)
}

func (p *parser) setCommand(key, value string) string {
	return SetCommand(p.stack, key, value)
}

// SetCommand returns the command that sets key to value on stack.
func SetCommand(stack, key, value string) string {
	return fmt.Sprintf("pulumi config set %s %s --stack %s", FullKey(key), value, stack)
}

func quote(value string) string {
	return strconv.Quote(value)
}
