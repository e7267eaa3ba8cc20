package components

// SlotCount is the number of RandomPassword slots that hold keys. Two slots
// are enough to keep the current key and the one before it.
const SlotCount = 2

// SlotGeneration returns the key generation that slot holds while the stack
// is at generation. The current generation lives in slot generation%2 and
// the previous one in the other slot, so bumping N to N+1 regenerates only
// the slot that held N-1. At generation 1 the other slot holds generation 0,
// a key that was never used for signing.
func SlotGeneration(slot, generation int) int {
	if generation%SlotCount == slot {
		return generation
	}
	return generation - 1
}

// CurrentSlot returns the slot that holds the key of generation.
func CurrentSlot(generation int) int {
	return generation % SlotCount
}

// PreviousSlot returns the slot that holds the key of generation-1.
func PreviousSlot(generation int) int {
	return (generation + 1) % SlotCount
}
