package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// The character classes of the real provider. defaultSpecial is used unless
// overrideSpecial is a non-empty string.
const (
	upperChars     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lowerChars     = "abcdefghijklmnopqrstuvwxyz"
	numericChars   = "0123456789"
	defaultSpecial = "!@#$%&*()-_=+[]{}<>:?"
)

// passwordSpec is the validated, fully defaulted form of a RandomPassword's
// inputs that the generator needs.
type passwordSpec struct {
	Length          int
	Upper           bool
	Lower           bool
	Numeric         bool
	Special         bool
	MinUpper        int
	MinLower        int
	MinNumeric      int
	MinSpecial      int
	OverrideSpecial string
}

// specialChars returns the special characters in use: an empty
// overrideSpecial means "not set", as in the real provider.
func (s passwordSpec) specialChars() string {
	if s.OverrideSpecial != "" {
		return s.OverrideSpecial
	}
	return defaultSpecial
}

// pool returns the characters that fill the part of the result beyond the
// minimums: the union of the enabled classes.
func (s passwordSpec) pool() []rune {
	var pool []rune
	if s.Upper {
		pool = append(pool, []rune(upperChars)...)
	}
	if s.Lower {
		pool = append(pool, []rune(lowerChars)...)
	}
	if s.Numeric {
		pool = append(pool, []rune(numericChars)...)
	}
	if s.Special {
		pool = append(pool, []rune(s.specialChars())...)
	}
	return pool
}

// generatePassword draws a password for spec from rnd (crypto/rand.Reader
// outside tests).
//
// It follows the real provider's algorithm: minUpper characters from the
// upper-case class, minLower from the lower-case class and so on, the rest
// from the union of the enabled classes, then a uniform shuffle. As in the
// real provider, a minimum is honoured even when its class is disabled
// (upper=false with minUpper=2 still yields two upper-case letters), so a
// program behaves the same with the stand-in and with the real plugin.
//
// Characters are runes, not bytes, so an overrideSpecial with non-ASCII
// characters never produces invalid UTF-8; length counts runes.
func generatePassword(spec passwordSpec, rnd io.Reader) (string, error) {
	if err := spec.validate(); err != nil {
		return "", err
	}
	pool := spec.pool()
	if len(pool) == 0 {
		return "", errors.New("cannot generate a password: upper, lower, numeric and special are all false, so the character set is empty: set at least one of them to true")
	}

	result := make([]rune, 0, spec.Length)
	minimums := []struct {
		chars string
		count int
	}{
		{upperChars, spec.MinUpper},
		{lowerChars, spec.MinLower},
		{numericChars, spec.MinNumeric},
		{spec.specialChars(), spec.MinSpecial},
	}
	for _, m := range minimums {
		drawn, err := drawRunes(rnd, []rune(m.chars), m.count)
		if err != nil {
			return "", err
		}
		result = append(result, drawn...)
	}
	rest, err := drawRunes(rnd, pool, spec.Length-len(result))
	if err != nil {
		return "", err
	}
	result = append(result, rest...)

	// The minimums are at the front until the shuffle. A Fisher-Yates shuffle
	// with unbiased indexes gives every ordering the same probability.
	for i := len(result) - 1; i > 0; i-- {
		j, err := uniformIndex(rnd, i+1)
		if err != nil {
			return "", err
		}
		result[i], result[j] = result[j], result[i]
	}
	return string(result), nil
}

// validate repeats the checks that Check reports to the user, so that a
// spec that skipped Check (unknown values at preview time) cannot produce a
// result that breaks the contract.
func (s passwordSpec) validate() error {
	if s.Length < 1 {
		return fmt.Errorf("length is %d: it must be at least 1", s.Length)
	}
	for _, m := range []struct {
		name  string
		value int
	}{
		{"minUpper", s.MinUpper}, {"minLower", s.MinLower},
		{"minNumeric", s.MinNumeric}, {"minSpecial", s.MinSpecial},
	} {
		if m.value < 0 {
			return fmt.Errorf("%s is %d: it must be 0 or more", m.name, m.value)
		}
	}
	if sum := s.MinUpper + s.MinLower + s.MinNumeric + s.MinSpecial; sum > s.Length {
		return fmt.Errorf("length is %d but minUpper+minLower+minNumeric+minSpecial is %d: raise length to at least %d or lower the minimums", s.Length, sum, sum)
	}
	return nil
}

// drawRunes returns n runes drawn independently and uniformly from chars.
func drawRunes(rnd io.Reader, chars []rune, n int) ([]rune, error) {
	if n == 0 {
		return nil, nil
	}
	if len(chars) == 0 {
		return nil, fmt.Errorf("cannot draw %d characters from an empty character set", n)
	}
	out := make([]rune, n)
	for i := range out {
		j, err := uniformIndex(rnd, len(chars))
		if err != nil {
			return nil, err
		}
		out[i] = chars[j]
	}
	return out, nil
}

// uniformIndex returns an integer in [0, n) without modulo bias: rand.Int
// rejects and redraws the values that would make some results likelier.
func uniformIndex(rnd io.Reader, n int) (int, error) {
	v, err := rand.Int(rnd, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("reading the random source failed: %w", err)
	}
	return int(v.Int64()), nil
}
