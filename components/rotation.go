package components

// SlotCount is the number of RandomPassword slots that hold keys: the
// previous key, the current key and the next key.
const SlotCount = 3

// SlotGeneration returns the key generation that slot holds while the stack
// is at generation: the one of generation-1, generation and generation+1
// that equals slot modulo SlotCount. Bumping N to N+1 therefore regenerates
// only the slot that held N-1, which then holds N+2. At generation 1 the
// previous slot holds generation 0, a key that was never used for signing.
func SlotGeneration(slot, generation int) int {
	for candidate := generation - 1; candidate <= generation+1; candidate++ {
		if candidate%SlotCount == slot {
			return candidate
		}
	}
	panic("unreachable: three consecutive generations cover every slot")
}

// CurrentSlot returns the slot that holds the key of generation, the key
// consumers sign with.
func CurrentSlot(generation int) int {
	return generation % SlotCount
}

// PreviousSlot returns the slot that holds the key of generation-1.
func PreviousSlot(generation int) int {
	return (generation + SlotCount - 1) % SlotCount
}

// NextSlot returns the slot that holds the key of generation+1. Consumers
// accept it before anyone signs with it, so pods that have not restarted
// yet after a rotation still accept tokens that restarted pods sign.
func NextSlot(generation int) int {
	return (generation + 1) % SlotCount
}
