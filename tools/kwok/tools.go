//go:build tools

// Package tools pins kwok for tools/build.sh, which also copies kwok's stage
// definitions from this version's module download. The blank import keeps
// the module and its dependencies in go.mod and go.sum under `go mod tidy`.
// The build tag keeps this file out of every real build, because a main
// package cannot be imported.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
