//go:build tools

// Package tools pins the control plane binaries for tools/build.sh. The blank
// imports keep their modules and dependencies in go.mod and go.sum under
// `go mod tidy`. The build tag keeps this file out of every real build,
// because a main package cannot be imported.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
