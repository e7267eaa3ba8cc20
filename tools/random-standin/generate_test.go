package main

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// classCounts counts the characters of s per class, with special meaning
// "in specials".
func classCounts(s, specials string) (upper, lower, numeric, special, other int) {
	for _, r := range s {
		switch {
		case strings.ContainsRune(upperChars, r):
			upper++
		case strings.ContainsRune(lowerChars, r):
			lower++
		case strings.ContainsRune(numericChars, r):
			numeric++
		case strings.ContainsRune(specials, r):
			special++
		default:
			other++
		}
	}
	return
}

func TestGenerateRespectsClassesAndMinimums(t *testing.T) {
	cases := []struct {
		name string
		spec passwordSpec
	}{
		{"defaults", passwordSpec{Length: 16, Upper: true, Lower: true, Numeric: true, Special: true}},
		{"length one", passwordSpec{Length: 1, Upper: true, Lower: true, Numeric: true, Special: true}},
		{"jwt key", passwordSpec{Length: 64, Upper: true, Lower: true, Numeric: true, Special: false}},
		{"only digits", passwordSpec{Length: 12, Numeric: true}},
		{"only lower", passwordSpec{Length: 12, Lower: true}},
		{"minimums fill the length", passwordSpec{Length: 8, Upper: true, Lower: true, Numeric: true, Special: true, MinUpper: 2, MinLower: 2, MinNumeric: 2, MinSpecial: 2}},
		{"minimums and rest", passwordSpec{Length: 20, Upper: true, Lower: true, Numeric: true, Special: true, MinUpper: 3, MinNumeric: 5, MinSpecial: 1}},
		{"override special", passwordSpec{Length: 24, Lower: true, Special: true, MinSpecial: 4, OverrideSpecial: "_%@"}},
		{"long", passwordSpec{Length: 200, Upper: true, Lower: true, Numeric: true, Special: true, MinSpecial: 10}},
	}
	const draws = 300
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			specials := tc.spec.specialChars()
			for i := 0; i < draws; i++ {
				pw, err := generatePassword(tc.spec, rand.Reader)
				require.NoError(t, err)
				require.Equal(t, tc.spec.Length, utf8.RuneCountInString(pw), "password %d has the wrong length", i)

				upper, lower, numeric, special, other := classCounts(pw, specials)
				require.Zero(t, other, "password %d has characters outside every class", i)
				if !tc.spec.Upper {
					require.Zero(t, upper, "upper-case drawn although upper is false")
				}
				if !tc.spec.Lower {
					require.Zero(t, lower, "lower-case drawn although lower is false")
				}
				if !tc.spec.Numeric {
					require.Zero(t, numeric, "digit drawn although numeric is false")
				}
				if !tc.spec.Special {
					require.Zero(t, special, "special drawn although special is false")
				}
				require.GreaterOrEqual(t, upper, tc.spec.MinUpper)
				require.GreaterOrEqual(t, lower, tc.spec.MinLower)
				require.GreaterOrEqual(t, numeric, tc.spec.MinNumeric)
				require.GreaterOrEqual(t, special, tc.spec.MinSpecial)
			}
		})
	}
}

func TestGenerateOverrideSpecialReplacesDefaults(t *testing.T) {
	spec := passwordSpec{Length: 30, Special: true, MinSpecial: 30, OverrideSpecial: "_%@"}
	seen := map[rune]bool{}
	for i := 0; i < 200; i++ {
		pw, err := generatePassword(spec, rand.Reader)
		require.NoError(t, err)
		for _, r := range pw {
			require.Contains(t, "_%@", string(r))
			seen[r] = true
		}
	}
	assert.Len(t, seen, 3, "every override character should appear over 6000 draws")
}

func TestGenerateNonASCIIStaysValidUTF8(t *testing.T) {
	spec := passwordSpec{Length: 40, Special: true, OverrideSpecial: "äö€"}
	for i := 0; i < 100; i++ {
		pw, err := generatePassword(spec, rand.Reader)
		require.NoError(t, err)
		require.True(t, utf8.ValidString(pw))
		require.Equal(t, 40, utf8.RuneCountInString(pw))
	}
}

// The real provider honours a minimum even for a disabled class, and the
// stand-in does the same, so a program behaves alike with either plugin.
// Exactly the minimum is drawn from that class.
func TestGenerateHonoursDisabledClassMinimum(t *testing.T) {
	spec := passwordSpec{Length: 10, Lower: true, Upper: false, MinUpper: 3}
	for i := 0; i < 200; i++ {
		pw, err := generatePassword(spec, rand.Reader)
		require.NoError(t, err)
		upper, lower, _, _, _ := classCounts(pw, defaultSpecial)
		require.Equal(t, 3, upper)
		require.Equal(t, 7, lower)
	}
}

// Each character should appear about equally often. This catches a broken
// draw, such as a wrong range, a stuck index or a class left out. It cannot
// resolve a small modulo bias, which rand.Int's rejection sampling rules out.
func TestGenerateIsUniformOverCharacters(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec passwordSpec
		set  string
	}{
		{"digits", passwordSpec{Length: 50, Numeric: true}, numericChars},
		{"alphanumeric", passwordSpec{Length: 62, Upper: true, Lower: true, Numeric: true}, upperChars + lowerChars + numericChars},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const draws = 2000
			counts := map[rune]int{}
			for i := 0; i < draws; i++ {
				pw, err := generatePassword(tc.spec, rand.Reader)
				require.NoError(t, err)
				for _, r := range pw {
					counts[r]++
				}
			}
			expected := float64(draws*tc.spec.Length) / float64(len(tc.set))
			for _, r := range tc.set {
				// The standard deviation is about sqrt(expected) (at most 100
				// here); 15% of expected is more than 6 of them.
				assert.InDelta(t, expected, float64(counts[r]), expected*0.15, "character %q drawn %d times", r, counts[r])
			}
		})
	}
}

// The minimums are drawn first; the shuffle must spread them over every
// position, or the first characters would always be upper-case.
func TestGenerateShufflesMinimumsOverAllPositions(t *testing.T) {
	spec := passwordSpec{Length: 4, Lower: true, MinUpper: 1}
	const draws = 4000
	var positions [4]int
	for i := 0; i < draws; i++ {
		pw, err := generatePassword(spec, rand.Reader)
		require.NoError(t, err)
		idx := strings.IndexAny(pw, upperChars)
		require.GreaterOrEqual(t, idx, 0)
		positions[idx]++
	}
	for p, n := range positions {
		assert.InDelta(t, draws/4, n, draws/4*0.15, "position %d held the upper-case letter %d times", p, n)
	}
}

func TestGenerateDrawsDifferentPasswords(t *testing.T) {
	spec := passwordSpec{Length: 32, Upper: true, Lower: true, Numeric: true, Special: true}
	seen := map[string]bool{}
	for i := 0; i < 500; i++ {
		pw, err := generatePassword(spec, rand.Reader)
		require.NoError(t, err)
		require.False(t, seen[pw], "the same 32-character password was drawn twice")
		seen[pw] = true
	}
}

func TestGenerateRejectsInvalidSpecs(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec passwordSpec
		want string
	}{
		{"zero length", passwordSpec{Length: 0, Lower: true}, "length is 0: it must be at least 1"},
		{"minimums too large", passwordSpec{Length: 4, Lower: true, MinLower: 3, MinNumeric: 2}, "minUpper+minLower+minNumeric+minSpecial is 5"},
		{"negative minimum", passwordSpec{Length: 4, Lower: true, MinSpecial: -1}, "minSpecial is -1"},
		{"no class", passwordSpec{Length: 4}, "character set is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := generatePassword(tc.spec, rand.Reader)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy source closed") }

func TestGenerateReportsRandomSourceFailure(t *testing.T) {
	_, err := generatePassword(passwordSpec{Length: 8, Lower: true}, failingReader{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reading the random source failed")
	assert.Contains(t, err.Error(), "entropy source closed")
}
