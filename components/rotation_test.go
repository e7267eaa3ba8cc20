package components_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/juwan/jwt-secret/components"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSlotGenerationTable(t *testing.T) {
	cases := []struct {
		generation                  int
		slots                       [3]int
		current, previous, nextSlot int
	}{
		{generation: 1, slots: [3]int{0, 1, 2}, current: 1, previous: 0, nextSlot: 2},
		{generation: 2, slots: [3]int{3, 1, 2}, current: 2, previous: 1, nextSlot: 0},
		{generation: 3, slots: [3]int{3, 4, 2}, current: 0, previous: 2, nextSlot: 1},
		{generation: 10, slots: [3]int{9, 10, 11}, current: 1, previous: 0, nextSlot: 2},
	}
	for _, c := range cases {
		for slot := range components.SlotCount {
			assert.Equal(t, c.slots[slot], components.SlotGeneration(slot, c.generation), "slot %d at generation %d", slot, c.generation)
		}
		assert.Equal(t, c.current, components.CurrentSlot(c.generation), "current slot at generation %d", c.generation)
		assert.Equal(t, c.previous, components.PreviousSlot(c.generation), "previous slot at generation %d", c.generation)
		assert.Equal(t, c.nextSlot, components.NextSlot(c.generation), "next slot at generation %d", c.generation)
	}
}

func TestBumpChangesOneSlot(t *testing.T) {
	for generation := 1; generation < 20; generation++ {
		changed := 0
		for slot := range components.SlotCount {
			if components.SlotGeneration(slot, generation) != components.SlotGeneration(slot, generation+1) {
				changed++
				assert.Equal(t, components.PreviousSlot(generation), slot,
					"bumping %d must regenerate the slot of generation %d", generation, generation-1)
			}
		}
		assert.Equal(t, 1, changed, "bumping generation %d", generation)
		assert.Equal(t, components.CurrentSlot(generation), components.PreviousSlot(generation+1),
			"the current key of %d must become the previous key of %d", generation, generation+1)
		assert.Equal(t, components.NextSlot(generation), components.CurrentSlot(generation+1),
			"the next key of %d, already accepted everywhere, must become the current key of %d", generation, generation+1)
	}
}

func TestBuildJWKSKnownKey(t *testing.T) {
	// "hello world" in unpadded base64url is "aGVsbG8gd29ybGQ".
	encoded, err := components.BuildJWKS([]components.VersionedKey{
		{KeyID: "2", Secret: "hello world"},
		{KeyID: "1", Secret: "~~~?"},
	})
	require.NoError(t, err)

	var set components.JSONWebKeySet
	require.NoError(t, json.Unmarshal([]byte(encoded), &set))
	require.Len(t, set.Keys, 2)
	assert.Equal(t, components.JSONWebKey{KeyType: "oct", Algorithm: "HS256", Use: "sig", KeyID: "2", Key: "aGVsbG8gd29ybGQ"}, set.Keys[0])
	// Bytes that need the URL-safe alphabet: "~~~?" is fn5-Pw in base64url
	// and fn5+Pw== in standard base64.
	assert.Equal(t, "fn5-Pw", set.Keys[1].Key)
	decoded, err := base64.RawURLEncoding.DecodeString(set.Keys[1].Key)
	require.NoError(t, err)
	assert.Equal(t, "~~~?", string(decoded))
}

func TestBuildJWKSRejectsEmptyKey(t *testing.T) {
	_, err := components.BuildJWKS([]components.VersionedKey{{KeyID: "1", Secret: ""}})
	assert.ErrorContains(t, err, `key "1" is empty`)
}
