// Package repo finds the root of this repository, where the Makefile,
// Pulumi.yaml, .tools/ and .state/ are.
package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Module is the module path that the root go.mod declares.
const Module = "github.com/juwan/jwt-secret"

// FindRoot walks up from the working directory to the folder whose go.mod
// declares Module. The go.mod files of the tool modules under tools/
// declare other modules and are passed over.
func FindRoot() (string, error) {
	start, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("unable to read the working directory: %w", err)
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(data, Module) {
			return dir, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("unable to read %s: %w", filepath.Join(dir, "go.mod"), err)
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("unable to find the repository root: no go.mod for module %s in %s or above; run from inside the repository", Module, start)
		}
	}
}

func declaresModule(goMod []byte, module string) bool {
	for line := range strings.SplitSeq(string(goMod), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == module
		}
	}
	return false
}
