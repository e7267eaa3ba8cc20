package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

// ProtectedInProductionPolicy is the name of the protect policy.
const ProtectedInProductionPolicy = "secrets-protected-in-production"

// keyHoldingTypes are the resource types that hold key material. Deleting
// one in production deletes the key, and every token signed with it stops
// verifying.
var keyHoldingTypes = map[string]bool{
	"kubernetes:core/v1:Secret": true,
	// Deleting a SecretPatch removes the data keys it set.
	"kubernetes:core/v1:SecretPatch":             true,
	"random:index/randomPassword:RandomPassword": true,
}

// IsProductionStack reports whether a stack holds production keys, by the
// naming convention of the program (jwtstack.IsProductionStack): prod,
// production or prod-<suffix>. The two must agree, and a test pins the
// names this one accepts.
func IsProductionStack(stack string) bool {
	return stack == "prod" || stack == "production" || strings.HasPrefix(stack, "prod-")
}

// NewProtectedInProductionPolicy returns the policy that requires resources
// holding key material to be protected when stack is a production stack.
// On any other stack it reports nothing.
func NewProtectedInProductionPolicy(stack string) policyx.ResourceValidationPolicy {
	production := IsProductionStack(stack)
	return policyx.NewResourceValidationPolicy(ProtectedInProductionPolicy, policyx.ResourceValidationPolicyArgs{
		Description: "On a production stack (named prod, production or prod-<suffix>), every Kubernetes Secret, " +
			"SecretPatch and random RandomPassword must be protected, so that pulumi destroy or a replacement " +
			"cannot delete the signing key and invalidate every issued token. " +
			"Fix: register the resource with the protect option; this program does that when the stack " +
			"config sets juwan-jwt-secret:protect to true.",
		EnforcementLevel: policyx.EnforcementLevelMandatory,
		ValidateResource: func(_ context.Context, args policyx.ResourceValidationArgs) error {
			if !production || !keyHoldingTypes[args.Resource.Type] || args.Resource.Options.Protect {
				return nil
			}
			args.Manager.ReportViolation(fmt.Sprintf(
				"%s is not protected, and stack %q is a production stack. "+
					"Fix: run `pulumi config set juwan-jwt-secret:protect true --stack %s` "+
					"(or pass pulumi.Protect(true) to the resource), then preview again.",
				describe(args.Resource), stack, stack), "")
			return nil
		},
	})
}
