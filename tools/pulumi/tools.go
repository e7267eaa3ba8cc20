//go:build tools

// Package tools pins the Pulumi CLI for tools/build.sh. The blank import keeps
// the CLI's module and its dependencies in go.mod and go.sum under
// `go mod tidy`. The build tag keeps this file out of every real build,
// because a main package cannot be imported.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
