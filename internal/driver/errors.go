package driver

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// HintPrefix starts the advice that explain appends to an error.
const HintPrefix = "\n\nhint: "

// explain adds what happened and how to recover to the engine errors a
// person is most likely to meet on stack. Other errors pass through
// unchanged.
func explain(stack string, err error) error {
	if err == nil {
		return nil
	}
	message := err.Error()
	switch {
	case auto.IsConcurrentUpdateError(err), strings.Contains(message, "the stack is currently locked"):
		return fmt.Errorf("%w"+HintPrefix+"The stack is locked: another run is in progress, or an earlier run was killed before it finished. "+
			"If no other run is active, recover with: go run ./cmd/jwtctl --stack %s recover", err, stack)
	case strings.Contains(message, "interrupted while resources were being updated"), strings.Contains(message, "pending operations"):
		return fmt.Errorf("%w"+HintPrefix+"An earlier run was killed while it changed resources, so the stack state has pending operations. "+
			"Recover with: go run ./cmd/jwtctl --stack %s recover", err, stack)
	case strings.Contains(message, "connection refused"), strings.Contains(message, "no such host"), strings.Contains(message, "i/o timeout"):
		return fmt.Errorf("%w"+HintPrefix+"The Kubernetes API server named by the kubeconfig is unreachable, so the failed step changed nothing. "+
			"Check the cluster (for the local one: make cluster) and run again", err)
	}
	return err
}
