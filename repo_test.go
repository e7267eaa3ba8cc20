package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// workflow is the part of a GitHub Actions workflow the tests read.
type workflow struct {
	On   map[string]any `yaml:"on"`
	Env  map[string]string
	Jobs map[string]struct {
		If       string
		Needs    any
		Strategy struct {
			Matrix struct {
				Include []map[string]string
			}
		}
		Steps []struct {
			Uses string
			Run  string
			With map[string]any
			Env  map[string]string
		}
	}
}

func readWorkflow(t *testing.T) workflow {
	t.Helper()
	content, err := os.ReadFile(".github/workflows/pulumi.yml")
	require.NoError(t, err)
	var w workflow
	require.NoError(t, yaml.Unmarshal(content, &w))
	return w
}

func makeTargets(t *testing.T) []string {
	t.Helper()
	content, err := os.ReadFile("Makefile")
	require.NoError(t, err)
	return regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllString(string(content), -1)
}

func TestWorkflowPreviewsOnPullRequests(t *testing.T) {
	w := readWorkflow(t)
	require.Contains(t, w.On, "pull_request")
	require.Contains(t, w.On, "push")

	preview, ok := w.Jobs["preview"]
	require.True(t, ok, "a preview job")
	assert.Contains(t, preview.If, "pull_request")
	stacks := []string{}
	for _, entry := range preview.Strategy.Matrix.Include {
		stacks = append(stacks, entry["stack"])
	}
	assert.ElementsMatch(t, []string{"dev", "prod"}, stacks)

	var pulumiStep map[string]any
	for _, step := range preview.Steps {
		if strings.HasPrefix(step.Uses, "pulumi/actions@") {
			pulumiStep = step.With
		}
	}
	require.NotNil(t, pulumiStep, "the preview job runs pulumi/actions")
	assert.Equal(t, "preview", pulumiStep["command"])
	assert.Equal(t, true, pulumiStep["diff"])
	assert.Equal(t, "policy", pulumiStep["policyPacks"])
	assert.DirExists(t, "policy", "the policy pack the workflow runs")
}

func TestWorkflowUpsEachEnvironmentOnMerge(t *testing.T) {
	w := readWorkflow(t)
	for job, stack := range map[string]string{"up-dev": "dev", "up-prod": "prod"} {
		j, ok := w.Jobs[job]
		require.True(t, ok, job)
		assert.Contains(t, j.If, "push", job)
		found := false
		for _, step := range j.Steps {
			if strings.HasPrefix(step.Uses, "pulumi/actions@") {
				found = true
				assert.Equal(t, "up", step.With["command"], job)
				assert.Equal(t, stack, step.With["stack-name"], job)
			}
		}
		assert.True(t, found, "%s runs pulumi/actions", job)
		assert.FileExists(t, "Pulumi."+stack+".yaml")
	}
	assert.Equal(t, "up-dev", w.Jobs["up-prod"].Needs, "prod goes after dev")
}

func TestWorkflowNamesSecretsWithoutValues(t *testing.T) {
	content, err := os.ReadFile(".github/workflows/pulumi.yml")
	require.NoError(t, err)
	w := readWorkflow(t)
	for name, value := range w.Env {
		if name == "PULUMI_ENABLE_LEGACY_DIFF" {
			assert.Equal(t, "true", value, "the provider's list diffs need legacy diffs")
			continue
		}
		assert.Regexp(t, `^\$\{\{ secrets\.[A-Z_]+ \}\}$`, value, "%s must come from a repository secret", name)
	}
	assert.NotContains(t, string(content), "PULUMI_ACCESS_TOKEN: \"")
	for _, secret := range []string{"PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL", "DEV_KUBECONFIG", "PROD_KUBECONFIG"} {
		assert.Contains(t, string(content), secret)
	}
}

func TestWorkflowRunsCommandsThatExist(t *testing.T) {
	w := readWorkflow(t)
	targets := makeTargets(t)
	makeCall := regexp.MustCompile(`\bmake ([a-z][a-z-]*)`)
	runs := 0
	for job, j := range w.Jobs {
		for _, step := range j.Steps {
			for _, call := range makeCall.FindAllStringSubmatch(step.Run, -1) {
				runs++
				assert.True(t, slices.Contains(targets, call[1]+":"), "job %s runs make %s, which the Makefile lacks", job, call[1])
			}
		}
	}
	assert.Positive(t, runs, "the workflow runs the unit tests through make")
}

// TestDocsNameCommandsThatExist checks that every make target and jwtctl
// command in the README and docs/ exists.
func TestDocsNameCommandsThatExist(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	require.NoError(t, err)
	files = append(files, "README.md")
	targets := makeTargets(t)
	usage, err := os.ReadFile("cmd/jwtctl/main.go")
	require.NoError(t, err)

	makeCall := regexp.MustCompile("`?make ([a-z][a-z0-9-]*)")
	jwtctlCall := regexp.MustCompile(`jwtctl (?:--[a-z]+(?: [a-z0-9./~-]+)? )*([a-z]+)`)
	checked := 0
	for _, file := range files {
		content, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, call := range makeCall.FindAllStringSubmatch(string(content), -1) {
			checked++
			assert.True(t, slices.Contains(targets, call[1]+":"), "%s names make %s, which the Makefile lacks", file, call[1])
		}
		for _, call := range jwtctlCall.FindAllStringSubmatch(string(content), -1) {
			checked++
			assert.Contains(t, string(usage), "\n  "+call[1]+" ", "%s names jwtctl %s, which jwtctl lacks", file, call[1])
		}
	}
	assert.Greater(t, checked, 20, "the docs name commands")
}

// TestDocsNamePulumiCommandsThatExist checks every `pulumi` subcommand in
// the README and docs/ against the pinned CLI that tools/build.sh builds.
func TestDocsNamePulumiCommandsThatExist(t *testing.T) {
	cli := filepath.Join(".tools", "bin", "pulumi")
	if _, err := os.Stat(cli); err != nil {
		t.Skip("the pinned Pulumi CLI is not built; make test builds it with tools/build.sh")
	}
	files, err := filepath.Glob("docs/*.md")
	require.NoError(t, err)
	files = append(files, "README.md", "policy/README.md")

	call := regexp.MustCompile(`(?m)^\s*(?:[A-Z_]+=\S+ )*pulumi ((?:[a-z-]+ ?){1,2})`)
	seen := map[string]bool{}
	for _, file := range files {
		content, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, match := range call.FindAllStringSubmatch(string(content), -1) {
			words := strings.Fields(match[1])
			// The second word is a subcommand only for command groups.
			if len(words) == 2 && !slices.Contains([]string{"config", "state", "stack", "plugin", "policy"}, words[0]) {
				words = words[:1]
			}
			command := strings.Join(words, " ")
			if seen[command] {
				continue
			}
			seen[command] = true
			output, err := exec.Command(cli, append(words, "--help")...).CombinedOutput()
			assert.NoError(t, err, "%s names `pulumi %s`, which the CLI rejects: %s", file, command, output)
		}
	}
	assert.NotEmpty(t, seen, "the docs name pulumi commands")
	t.Logf("checked: %v", seen)
}
