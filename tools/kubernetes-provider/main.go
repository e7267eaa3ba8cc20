// Command pulumi-resource-kubernetes is the Pulumi Kubernetes provider plugin,
// v4.25.0, built from its Go module.
//
// Upstream's main embeds schema-embed.json and terraform-mapping-embed.json,
// which its release process generates and which the module download lacks.
// tools/build.sh generates both next to a copy of this file (see gen.go)
// before it builds, so this folder does not build on its own.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	// version.Version is set by -ldflags -X in tools/build.sh, as upstream
	// sets it.
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
