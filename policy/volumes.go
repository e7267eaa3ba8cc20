package main

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

// SecretVolumesPolicy is the name of the Secret volume policy.
const SecretVolumesPolicy = "secret-volumes-read-only"

// maxSecretFileMode is the widest file mode a Secret volume may have:
// read for the owner and for the group.
const maxSecretFileMode = 0o440

// defaultSecretFileMode is the mode Kubernetes gives the files of a Secret
// or projected volume that sets no defaultMode (core/v1 SecretVolumeSource).
const defaultSecretFileMode = 0o644

// modeBits names each permission bit, for messages.
var modeBits = []struct {
	bit  int64
	name string
}{
	{0o4000, "setuid"}, {0o2000, "setgid"}, {0o1000, "sticky"},
	{0o400, "owner read"}, {0o200, "owner write"}, {0o100, "owner execute"},
	{0o040, "group read"}, {0o020, "group write"}, {0o010, "group execute"},
	{0o004, "other read"}, {0o002, "other write"}, {0o001, "other execute"},
}

// NewSecretVolumesPolicy returns the policy that requires Secret volumes to
// be mounted read-only with narrow file modes.
func NewSecretVolumesPolicy() policyx.ResourceValidationPolicy {
	return policyx.NewResourceValidationPolicy(SecretVolumesPolicy, policyx.ResourceValidationPolicyArgs{
		Description: "Every Secret volume, and every projected volume with a Secret source, must set " +
			"defaultMode, and every items[].mode it sets, to a mode with no bits outside 0440 (owner and group " +
			"read). Kubernetes writes the files with mode 0644 when defaultMode is unset, so every user in the " +
			"container can read the key. Every volumeMount of such a volume must set readOnly: true. " +
			"Fix: set defaultMode to 0400 (256 in JSON), or 0440 (288) when a second user in the pod's group " +
			"must read the files, and set readOnly: true on each mount.",
		EnforcementLevel: policyx.EnforcementLevelMandatory,
		ValidateResource: validateSecretVolumes,
	})
}

func validateSecretVolumes(_ context.Context, args policyx.ResourceValidationArgs) error {
	spec, ok := podSpecOf(args.Resource)
	if !ok {
		return nil
	}
	resource := describe(args.Resource)
	report := func(format string, a ...any) {
		args.Manager.ReportViolation(resource+": "+fmt.Sprintf(format, a...), "")
	}

	// Check the modes of each Secret volume and remember its name.
	secretVolumes := map[string]bool{}
	for _, volume := range elements(field(spec.value, "volumes")) {
		name := knownString(field(volume, "name"))
		label := fmt.Sprintf("volume %q", name)

		if secret := field(volume, "secret"); !secret.IsNull() {
			secretVolumes[name] = true
			label += fmt.Sprintf(" (Secret %q)", knownString(field(secret, "secretName")))
			checkDefaultMode(report, label, "secret.defaultMode", field(secret, "defaultMode"))
			checkItemModes(report, label, "secret.items", field(secret, "items"))
			continue
		}

		projected := field(volume, "projected")
		sources := elements(field(projected, "sources"))
		hasSecretSource := false
		for _, source := range sources {
			hasSecretSource = hasSecretSource || !field(source, "secret").IsNull()
		}
		if !hasSecretSource {
			continue
		}
		secretVolumes[name] = true
		label += " (projected, with a Secret source)"
		checkDefaultMode(report, label, "projected.defaultMode", field(projected, "defaultMode"))
		for index, source := range sources {
			fieldPath := fmt.Sprintf("projected.sources[%d].secret.items", index)
			checkItemModes(report, label, fieldPath, field(source, "secret", "items"))
		}
	}

	// Require readOnly on every mount of those volumes.
	for _, c := range spec.containers() {
		for _, mount := range elements(field(c.value, "volumeMounts")) {
			name := field(mount, "name")
			if !name.IsString() || !secretVolumes[name.AsString()] {
				continue
			}
			readOnly := field(mount, "readOnly")
			if readOnly.IsComputed() || (readOnly.IsBool() && readOnly.AsBool()) {
				continue
			}
			report("%s mounts Secret volume %q at %s without readOnly: true. "+
				"Fix: set readOnly: true on that volumeMount.",
				c.label(), name.AsString(), knownString(field(mount, "mountPath")))
		}
	}
	return nil
}

// checkDefaultMode reports a defaultMode that is unset or too wide. An
// unknown mode is left for `pulumi up`, when it is known.
func checkDefaultMode(report func(string, ...any), volume, fieldPath string, mode property.Value) {
	switch {
	case mode.IsComputed():
		return
	case mode.IsNull():
		report("%s sets no %s, so Kubernetes writes its files with mode %s, readable by every user in the "+
			"container. Fix: set %s to 0400 (256 in JSON).",
			volume, fieldPath, octal(defaultSecretFileMode), fieldPath)
	default:
		checkMode(report, volume, fieldPath, mode)
	}
}

// checkItemModes reports each items[].mode that is too wide. An item
// without a mode takes defaultMode, which checkDefaultMode checks.
func checkItemModes(report func(string, ...any), volume, fieldPath string, items property.Value) {
	for index, item := range elements(items) {
		mode := field(item, "mode")
		if mode.IsNull() || mode.IsComputed() {
			continue
		}
		label := fmt.Sprintf("%s[%d].mode", fieldPath, index)
		if key := knownString(field(item, "key")); key != "" {
			label += fmt.Sprintf(" (key %q)", key)
		}
		checkMode(report, volume, label, mode)
	}
}

// checkMode reports a known mode with bits outside maxSecretFileMode.
func checkMode(report func(string, ...any), volume, fieldPath string, mode property.Value) {
	fix := fmt.Sprintf("Fix: set %s to 0400 (256 in JSON) or 0440 (288).", fieldPath)
	if !mode.IsNumber() {
		report("%s has %s of type %s, not a number. %s", volume, fieldPath, typeName(mode), fix)
		return
	}
	number := mode.AsNumber()
	if number != math.Trunc(number) || number < 0 || number > 0o7777 {
		report("%s has %s %v, which is not a file mode. %s", volume, fieldPath, number, fix)
		return
	}

	bits := int64(number)
	extra := bits &^ maxSecretFileMode
	if extra == 0 {
		return
	}
	var names []string
	for _, b := range modeBits {
		if extra&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	report("%s has %s %s, which allows %s beyond %s. %s",
		volume, fieldPath, octal(bits), strings.Join(names, ", "), octal(maxSecretFileMode), fix)
}

// typeName names the type of a property value for a message.
func typeName(value property.Value) string {
	switch {
	case value.IsString():
		return "string"
	case value.IsBool():
		return "bool"
	case value.IsArray():
		return "array"
	case value.IsMap():
		return "object"
	}
	return "unknown type"
}
