package jwtstack_test

import (
	"testing"
	"time"

	"github.com/juwan/jwt-secret/internal/mocks"
	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckGenerationStep(t *testing.T) {
	assert.NoError(t, jwtstack.CheckGenerationStep("dev", 3, 3), "no change")
	assert.NoError(t, jwtstack.CheckGenerationStep("dev", 3, 4), "one rotation")

	err := jwtstack.CheckGenerationStep("dev", 3, 2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `juwan-jwt-secret:keyGeneration: invalid value "2": the last deployment is at generation 3, and going back`)
	assert.Contains(t, err.Error(), "fix: pulumi config set juwan-jwt-secret:keyGeneration 4 --stack dev")

	err = jwtstack.CheckGenerationStep("dev", 3, 5)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `invalid value "5"`)
	assert.Contains(t, err.Error(), "a jump of more than one replaces both keys")
	assert.Contains(t, err.Error(), "fix: pulumi config set juwan-jwt-secret:keyGeneration 4 --stack dev")
}

func runWithDeployed(t *testing.T, deployed any, configured string) (*mocks.Engine, error) {
	t.Helper()
	engine := mocks.New()
	if deployed != nil {
		engine.StackOutputs = map[string]any{"keyGeneration": deployed, "secretName": "jwt-secret", "keySlotLengths": []any{48, 48, 48}}
	}
	program := jwtstack.NewProgram(jwtstack.Options{Now: func() time.Time { return today }, GetDeployment: fakeCluster(backend), GetOwner: noOwner})
	return mocks.RunOn(t, engine, jwtstack.Project, "dev", map[string]string{jwtstack.FullKey("keyGeneration"): configured}, nil, program)
}

func TestProgramRejectsGenerationJump(t *testing.T) {
	engine, err := runWithDeployed(t, 3, "5")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a jump of more than one")
	assert.Equal(t, []string{"deployed-state"}, engine.Names())
}

func TestProgramRejectsGenerationGoingBack(t *testing.T) {
	engine, err := runWithDeployed(t, 3, "2")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "going back replaces the key")
	assert.Equal(t, []string{"deployed-state"}, engine.Names())
}

func TestProgramAcceptsNextGeneration(t *testing.T) {
	for _, configured := range []string{"3", "4"} {
		engine, err := runWithDeployed(t, 3, configured)
		require.NoError(t, err, configured)
		assert.Contains(t, engine.Names(), "jwt-key-secret")
	}
}

func TestProgramFirstDeployAcceptsAnyGeneration(t *testing.T) {
	_, err := runWithDeployed(t, nil, "7")
	require.NoError(t, err)
}

func TestSlotLengthsChangeOnlyWithGeneration(t *testing.T) {
	deployed := jwtstack.Deployed{Exists: true, Generation: 2, SlotLengths: [3]int{48, 48, 48}}
	assert.Equal(t, [3]int{96, 96, 96}, jwtstack.SlotLengths(jwtstack.Deployed{}, 1, 96), "a first deployment uses keyLength")
	assert.Equal(t, [3]int{48, 48, 48}, jwtstack.SlotLengths(deployed, 2, 96), "no rotation keeps every live key")
	// 2 -> 3 regenerates slot 1, the slot of generation 1.
	assert.Equal(t, [3]int{48, 96, 48}, jwtstack.SlotLengths(deployed, 3, 96))
}

func TestProgramKeepsLiveKeyLength(t *testing.T) {
	engine := mocks.New()
	engine.StackOutputs = map[string]any{"keyGeneration": 2, "keySlotLengths": []any{48, 48, 48}}
	program := jwtstack.NewProgram(jwtstack.Options{Now: func() time.Time { return today }, GetDeployment: fakeCluster(backend), GetOwner: noOwner})
	_, err := mocks.RunOn(t, engine, jwtstack.Project, "dev", map[string]string{
		jwtstack.FullKey("keyGeneration"): "2", jwtstack.FullKey("keyLength"): "96",
	}, nil, program)
	require.NoError(t, err)
	for slot := range 3 {
		r, ok := engine.Resource("jwt-key-slot-" + string(rune('0'+slot)))
		require.True(t, ok)
		assert.Equal(t, float64(48), r.Inputs["length"].NumberValue(), "changing keyLength must not regenerate slot %d", slot)
	}
}
