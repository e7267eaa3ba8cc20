// Command policy is a Pulumi policy pack that enforces the production
// checklist of the juwan JWT signing key: narrow RBAC on Secrets, key
// material only through secretKeyRef, read-only Secret volumes with narrow
// modes, and protected key resources on production stacks.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

func main() {
	if err := policyx.Main(NewPolicyPack); err != nil {
		fmt.Fprintf(os.Stderr, "policy pack %s failed: %v\n", PackName, err)
		os.Exit(1)
	}
}
