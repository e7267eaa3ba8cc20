// Command juwan-jwt-secret is the Pulumi program that owns the JWT signing
// key of the juwan backend. `pulumi up` runs it.
package main

import (
	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() {
	pulumi.Run(jwtstack.Program)
}
