package jwtstack

import (
	"fmt"
	"strconv"

	"github.com/juwan/jwt-secret/components"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// deployedStateName is the logical name of the stack's reference to its
// own last deployment.
const deployedStateName = "deployed-state"

// Deployed is the record of the stack's last deployment, from its outputs.
type Deployed struct {
	// Exists is false if the stack has not been deployed yet.
	Exists     bool
	Generation int
	// SlotLengths are the key lengths of the slots, 0 where unknown.
	SlotLengths [components.SlotCount]int
}

// ReadDeployed reads the stack's last deployment from its own outputs
// through a StackReference.
func ReadDeployed(ctx *pulumi.Context) (Deployed, error) {
	name := StackName(ctx)
	reference, err := pulumi.NewStackReference(ctx, deployedStateName, &pulumi.StackReferenceArgs{Name: pulumi.String(name)})
	if err != nil {
		return Deployed{}, fmt.Errorf("unable to read the last deployment of stack %s: %w", name, err)
	}

	// GetOutputDetails waits for the read. Its value is nil when the stack
	// has no such output, and also when the output is unknown, as in a
	// preview of a stack that has never been deployed.
	generationOutput, err := reference.GetOutputDetails("keyGeneration")
	if err != nil {
		return Deployed{}, fmt.Errorf("unable to read the last deployment of stack %s: %w", name, err)
	}
	lengthsOutput, err := reference.GetOutputDetails("keySlotLengths")
	if err != nil {
		return Deployed{}, fmt.Errorf("unable to read the last deployment of stack %s: %w", name, err)
	}
	outputs := []any{generationOutput.Value, lengthsOutput.Value}

	generation, exists, err := parseGeneration(name, outputs[0])
	if err != nil || !exists {
		return Deployed{}, err
	}
	deployed := Deployed{Exists: true, Generation: generation}
	if lengths, ok := outputs[1].([]any); ok && len(lengths) == components.SlotCount {
		for slot, length := range lengths {
			if number, ok := length.(float64); ok {
				deployed.SlotLengths[slot] = int(number)
			}
		}
	}
	return deployed, nil
}

func parseGeneration(name string, value any) (int, bool, error) {
	switch v := value.(type) {
	case nil:
		return 0, false, nil
	case float64:
		return int(v), true, nil
	case int:
		return v, true, nil
	case string:
		generation, err := strconv.Atoi(v)
		if err != nil {
			return 0, false, fmt.Errorf("unable to read the last deployment of stack %s: keyGeneration output %q is not an integer", name, v)
		}
		return generation, true, nil
	default:
		return 0, false, fmt.Errorf("unable to read the last deployment of stack %s: keyGeneration output has type %T", name, value)
	}
}

// CheckGenerationStep rejects a generation that does not follow the
// deployed one by zero or one step. Going back, or forward by two or more,
// regenerates the slot that holds the current key, so every token signed
// with it would stop verifying.
func CheckGenerationStep(stack string, deployed, configured int) error {
	if configured == deployed || configured == deployed+1 {
		return nil
	}
	reason := fmt.Sprintf("the last deployment is at generation %d, and going back replaces the key that signs live tokens", deployed)
	if configured > deployed {
		reason = fmt.Sprintf("the last deployment is at generation %d, and a jump of more than one replaces both keys, so live tokens stop verifying; to revoke every token, rotate twice in a row instead", deployed)
	}
	return &ConfigError{Problems: []string{fmt.Sprintf("%s: invalid value %q: %s; fix: %s",
		FullKey(KeyKeyGeneration), strconv.Itoa(configured), reason, SetCommand(stack, KeyKeyGeneration, strconv.Itoa(deployed+1)))}}
}

// SlotLengths returns the key length of each slot: the deployed length for
// a slot that keeps its generation, because a new length would regenerate
// a live key, and keyLength for a slot that is generated in this run.
func SlotLengths(deployed Deployed, generation, keyLength int) [components.SlotCount]int {
	var lengths [components.SlotCount]int
	for slot := range components.SlotCount {
		lengths[slot] = keyLength
		unchanged := deployed.Exists && components.SlotGeneration(slot, deployed.Generation) == components.SlotGeneration(slot, generation)
		if unchanged && deployed.SlotLengths[slot] > 0 {
			lengths[slot] = deployed.SlotLengths[slot]
		}
	}
	return lengths
}
