package main

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// passwordToken is the only resource type this stand-in serves.
const passwordToken = "random:index/randomPassword:RandomPassword"

// Property names, as the SDKs and the real provider's schema spell them.
const (
	keyLength          resource.PropertyKey = "length"
	keyKeepers         resource.PropertyKey = "keepers"
	keyUpper           resource.PropertyKey = "upper"
	keyLower           resource.PropertyKey = "lower"
	keyNumeric         resource.PropertyKey = "numeric"
	keyNumber          resource.PropertyKey = "number"
	keySpecial         resource.PropertyKey = "special"
	keyMinUpper        resource.PropertyKey = "minUpper"
	keyMinLower        resource.PropertyKey = "minLower"
	keyMinNumeric      resource.PropertyKey = "minNumeric"
	keyMinSpecial      resource.PropertyKey = "minSpecial"
	keyOverrideSpecial resource.PropertyKey = "overrideSpecial"

	keyResult     resource.PropertyKey = "result"
	keyBcryptHash resource.PropertyKey = "bcryptHash"
)

// inputKeys lists every input in a fixed order, so that failures and
// replace lists come out in the same order on every run.
var inputKeys = []resource.PropertyKey{
	keyKeepers, keyLength, keyLower, keyMinLower, keyMinNumeric, keyMinSpecial,
	keyMinUpper, keyNumber, keyNumeric, keyOverrideSpecial, keySpecial, keyUpper,
}

// minimumKeys are the inputs that count toward the length check.
var minimumKeys = []resource.PropertyKey{keyMinUpper, keyMinLower, keyMinNumeric, keyMinSpecial}

// classKeys are the character class switches, of which at least one must be true.
var classKeys = []resource.PropertyKey{keyUpper, keyLower, keyNumeric, keySpecial}

// maxLength bounds length and the minimums so that they fit an int on every
// platform. A password that long could not be generated in memory anyway.
const maxLength = math.MaxInt32

func isInputKey(k resource.PropertyKey) bool {
	for _, known := range inputKeys {
		if k == known {
			return true
		}
	}
	return false
}

// applyDefaults returns a copy of inputs with every optional input that is
// absent or null set to the real provider's default, and with number and
// numeric kept equal the way the real provider keeps them. Secret and
// unknown values are kept as they are. It reports a conflict between number
// and numeric as a failure.
func applyDefaults(inputs resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	out := inputs.Copy()
	// An SDK sends an input that was set to nothing as a null, and the real
	// provider treats it as not set.
	for k, v := range out {
		if v.IsNull() {
			delete(out, k)
		}
	}
	for _, k := range []resource.PropertyKey{keyUpper, keyLower, keySpecial} {
		if _, ok := out[k]; !ok {
			out[k] = resource.NewBoolProperty(true)
		}
	}
	for _, k := range minimumKeys {
		if _, ok := out[k]; !ok {
			out[k] = resource.NewNumberProperty(0)
		}
	}

	// number is the deprecated name of numeric. Whichever one is set decides
	// both. Both unset means true, and both set to different values is an error.
	var failures []*pulumirpc.CheckFailure
	number, hasNumber := out[keyNumber]
	numeric, hasNumeric := out[keyNumeric]
	switch {
	case !hasNumber && !hasNumeric:
		out[keyNumber] = resource.NewBoolProperty(true)
		out[keyNumeric] = resource.NewBoolProperty(true)
	case hasNumber && !hasNumeric:
		out[keyNumeric] = number
	case !hasNumber && hasNumeric:
		out[keyNumber] = numeric
	default:
		a, b := revealSecrets(number), revealSecrets(numeric)
		if a.IsBool() && b.IsBool() && a.BoolValue() != b.BoolValue() {
			failures = append(failures, &pulumirpc.CheckFailure{
				Property: string(keyNumber),
				Reason: fmt.Sprintf("number is %t but numeric is %t: number is the deprecated name of numeric, so remove number and keep only numeric",
					a.BoolValue(), b.BoolValue()),
			})
		}
	}
	return out, failures
}

// checkInputs validates defaulted inputs and returns one failure per
// problem. Values that are still unknown (during a preview) are skipped, as
// the real provider does, and checked again at Create.
func checkInputs(inputs resource.PropertyMap) []*pulumirpc.CheckFailure {
	var failures []*pulumirpc.CheckFailure
	fail := func(k resource.PropertyKey, format string, args ...any) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: string(k), Reason: fmt.Sprintf(format, args...)})
	}
	plain := revealSecrets(resource.NewObjectProperty(inputs)).ObjectValue()

	for _, k := range plain.StableKeys() {
		if strings.HasPrefix(string(k), "__") {
			continue // internal engine keys are not the user's inputs
		}
		if k == keyResult || k == keyBcryptHash {
			fail(k, "%s is an output of RandomPassword and cannot be set: remove it from the inputs", k)
			continue
		}
		if !isInputKey(k) {
			fail(k, "%q is not an input of RandomPassword (this stand-in serves random 4.19.0): use one of %s", k, inputKeyList())
		}
	}

	// Whole numbers that are known and valid, so the length check below
	// runs only when every term of the sum is usable.
	known := map[resource.PropertyKey]int{}
	lengthValue, hasLength := plain[keyLength]
	if !hasLength {
		fail(keyLength, "length is required: set it to the number of characters of the password, at least 1")
	}
	for _, k := range append([]resource.PropertyKey{keyLength}, minimumKeys...) {
		v, ok := plain[k]
		if !ok || v.ContainsUnknowns() {
			continue
		}
		n, err := wholeNumber(v)
		if err != nil {
			fail(k, "%s %v", k, err)
			continue
		}
		if k == keyLength && n < 1 {
			fail(k, "length is %d: it must be at least 1", n)
			continue
		}
		if k != keyLength && n < 0 {
			fail(k, "%s is %d: it must be 0 or more", k, n)
			continue
		}
		known[k] = n
	}
	if length, ok := known[keyLength]; ok && hasLength && !lengthValue.ContainsUnknowns() {
		sum, allKnown := 0, true
		for _, k := range minimumKeys {
			n, ok := known[k]
			allKnown = allKnown && ok
			sum += n
		}
		if allKnown && sum > length {
			fail(keyLength, "length is %d but minUpper+minLower+minNumeric+minSpecial is %d: raise length to at least %d or lower the minimums", length, sum, sum)
		}
	}

	anyTrue, allKnown := false, true
	for _, k := range append([]resource.PropertyKey{keyNumber}, classKeys...) {
		v := plain[k]
		switch {
		case v.ContainsUnknowns():
			allKnown = false
		case !v.IsBool():
			fail(k, "%s must be true or false, got a %s", k, v.TypeString())
			allKnown = false
		case k != keyNumber && v.BoolValue():
			anyTrue = true
		}
	}
	if allKnown && !anyTrue {
		fail(keyUpper, "upper, lower, numeric and special are all false, so no character can be drawn: set at least one of them to true")
	}

	if v, ok := plain[keyOverrideSpecial]; ok && !v.ContainsUnknowns() && !v.IsString() {
		fail(keyOverrideSpecial, "overrideSpecial must be a string of special characters, got a %s", v.TypeString())
	}
	if v, ok := plain[keyKeepers]; ok && !v.ContainsUnknowns() {
		if !v.IsObject() {
			fail(keyKeepers, "keepers must be a map of strings, got a %s", v.TypeString())
		} else {
			for _, name := range v.ObjectValue().StableKeys() {
				kv := v.ObjectValue()[name]
				if !kv.ContainsUnknowns() && !kv.IsString() {
					fail(keyKeepers, "keepers.%s must be a string, got a %s: convert the value to a string", name, kv.TypeString())
				}
			}
		}
	}
	return failures
}

// specFromInputs reads the generator's parameters from defaulted inputs
// whose values are all known. It fails if any of them is unknown or invalid.
func specFromInputs(inputs resource.PropertyMap) (passwordSpec, error) {
	plain := revealSecrets(resource.NewObjectProperty(inputs)).ObjectValue()
	if failures := checkInputs(inputs); len(failures) > 0 {
		reasons := make([]string, len(failures))
		for i, f := range failures {
			reasons[i] = f.Reason
		}
		return passwordSpec{}, errors.New(strings.Join(reasons, "; "))
	}
	for _, k := range inputKeys {
		if v, ok := plain[k]; ok && v.ContainsUnknowns() {
			return passwordSpec{}, fmt.Errorf("input %s is not known yet, so the password cannot be generated: make it depend only on values known before the update", k)
		}
	}
	number := func(k resource.PropertyKey) int {
		n, _ := wholeNumber(plain[k]) // checkInputs has accepted it
		return n
	}
	spec := passwordSpec{
		Length:     number(keyLength),
		Upper:      plain[keyUpper].BoolValue(),
		Lower:      plain[keyLower].BoolValue(),
		Numeric:    plain[keyNumeric].BoolValue(),
		Special:    plain[keySpecial].BoolValue(),
		MinUpper:   number(keyMinUpper),
		MinLower:   number(keyMinLower),
		MinNumeric: number(keyMinNumeric),
		MinSpecial: number(keyMinSpecial),
	}
	if v, ok := plain[keyOverrideSpecial]; ok {
		spec.OverrideSpecial = v.StringValue()
	}
	return spec, nil
}

// wholeNumber converts a number property to an int. The error text follows
// the property name in a failure message.
func wholeNumber(v resource.PropertyValue) (int, error) {
	if !v.IsNumber() {
		return 0, fmt.Errorf("must be a whole number, got a %s", v.TypeString())
	}
	f := v.NumberValue()
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("is %v: it must be a whole number", f)
	}
	if math.Abs(f) > maxLength {
		return 0, fmt.Errorf("is %v: it must be at most %d", f, maxLength)
	}
	return int(f), nil
}

// revealSecrets returns v with every secret replaced by its value, for
// validation and comparison. Values passed back to the engine keep their
// secret markers instead.
func revealSecrets(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return revealSecrets(v.SecretValue().Element)
	case v.IsObject():
		out := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			out[k] = revealSecrets(e)
		}
		return resource.NewObjectProperty(out)
	case v.IsArray():
		in := v.ArrayValue()
		out := make([]resource.PropertyValue, len(in))
		for i, e := range in {
			out[i] = revealSecrets(e)
		}
		return resource.NewArrayProperty(out)
	default:
		return v
	}
}

func inputKeyList() string {
	names := make([]string, len(inputKeys))
	for i, k := range inputKeys {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
