package jwtstack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// KnownKeys are the config keys the project declares in Pulumi.yaml.
var KnownKeys = []string{
	KeyNamespace, KeySecretName, KeyRoleName, KeyKeyLength, KeyKeyGeneration,
	KeyProtect, KeyConsumers, KeyLegacyKey, KeyKeyRotatedAt, KeyMaxKeyAgeDays,
}

// CheckStackFileKeys returns one problem for each key of the project's
// namespace in the stack file at path that the project does not declare.
// Pulumi itself passes such keys through silently, so a misspelt
// keyGeneration would make a rotation do nothing. A missing file is no
// problem: the stack may keep its config elsewhere.
func CheckStackFileKeys(path string) ([]string, error) {
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("unable to read stack file: %w", err)
	}

	var stackFile struct {
		Config map[string]yaml.Node `yaml:"config"`
	}
	if err := yaml.Unmarshal(content, &stackFile); err != nil {
		return nil, fmt.Errorf("unable to parse stack file %s: %w", path, err)
	}

	var problems []string
	for fullKey := range stackFile.Config {
		// Pulumi reads a key without a namespace as the project's.
		namespace, key, found := strings.Cut(fullKey, ":")
		if !found {
			namespace, key = Project, fullKey
		}
		if namespace != Project {
			// Another package's config, unless the namespace is a typo
			// of the project's, which would silently drop the value.
			if editDistance(namespace, Project) <= 2 {
				problems = append(problems, fmt.Sprintf("%s: unknown config namespace %q in %s; fix: rename it to %s",
					fullKey, namespace, filepath.Base(path), FullKey(key)))
			}
			continue
		}
		if slices.Contains(KnownKeys, key) {
			continue
		}
		problem := fmt.Sprintf("%s: unknown config key in %s; fix: remove it", fullKey, filepath.Base(path))
		if suggestion := closestKey(key); suggestion != "" {
			problem += fmt.Sprintf(" or rename it to %s", FullKey(suggestion))
		}
		problems = append(problems, problem)
	}
	slices.Sort(problems)
	return problems, nil
}

// closestKey returns the known key that key is most likely a misspelling
// of, or "" if none is within two edits.
func closestKey(key string) string {
	best, bestDistance := "", 3
	for _, known := range KnownKeys {
		if distance := editDistance(strings.ToLower(key), strings.ToLower(known)); distance < bestDistance {
			best, bestDistance = known, distance
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	previous := make([]int, len(b)+1)
	for j := range previous {
		previous[j] = j
	}
	for i := 1; i <= len(a); i++ {
		current := make([]int, len(b)+1)
		current[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			current[j] = min(previous[j]+1, current[j-1]+1, previous[j-1]+cost)
		}
		previous = current
	}
	return previous[len(b)]
}
