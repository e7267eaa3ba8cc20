package main

import (
	"fmt"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

// PackName is the name of the policy pack, as the engine reports it next to
// each violation.
const PackName = "juwan-jwt-secret-production"

// PackVersion is the version of the policy pack.
var PackVersion = semver.MustParse("1.0.0")

// NewPolicyPack builds the pack for the stack that the engine is previewing
// or updating. policyx calls it when the engine sends ConfigureStack, whose
// stack name reaches the pack through ctx.Stack().
func NewPolicyPack(ctx *pulumi.Context) (policyx.PolicyPack, error) {
	return NewPolicyPackForStack(ctx.Stack())
}

// NewPolicyPackForStack builds the pack for the named stack.
func NewPolicyPackForStack(stack string) (policyx.PolicyPack, error) {
	// NOTE: policyx v3.276.0 ignores the pack-level enforcement level, so
	// each policy sets its own.
	pack, err := policyx.NewPolicyPack(PackName, PackVersion, policyx.EnforcementLevelMandatory, []policyx.Policy{
		NewSecretRulesNamedPolicy(),
		NewSecretRulesNoListPolicy(),
		NewEnvFromSecretPolicy(),
		NewSecretVolumesPolicy(),
		NewProtectedInProductionPolicy(stack),
	})
	if err != nil {
		return nil, fmt.Errorf("unable to build policy pack %s for stack %q: %w", PackName, stack, err)
	}
	return pack, nil
}
