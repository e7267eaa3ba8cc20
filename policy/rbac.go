package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

// Names of the RBAC policies, as `--policy-pack-config` files refer to them.
const (
	SecretRulesNamedPolicy  = "rbac-secret-rules-use-resource-names"
	SecretRulesNoListPolicy = "rbac-secret-rules-no-list-watch"
)

// rbacGroup is the API group of Role and ClusterRole.
const rbacGroup = "rbac.authorization.k8s.io"

// secretRule is one rule of a Role or ClusterRole that applies to Secrets.
type secretRule struct {
	index         int
	verbs         stringList
	resourceNames stringList
}

// isRoleType reports whether a type token is a Role or ClusterRole of any
// RBAC API version, or a patch of one.
func isRoleType(typeToken string) bool {
	if apiGroupOf(typeToken) != rbacGroup {
		return false
	}
	switch strings.TrimSuffix(kindOf(typeToken), "Patch") {
	case "Role", "ClusterRole":
		return true
	}
	return false
}

// secretRulesOf returns the rules of a Role or ClusterRole that apply to
// Secrets: apiGroups contains "" (the core group) or "*", and resources
// contains "secrets" or "*". Secrets have no subresources, so no other
// resource string matches them. A rule whose apiGroups or resources are
// still unknown is skipped, unless its known elements already match.
func secretRulesOf(properties property.Map) []secretRule {
	var rules []secretRule
	for index, rule := range elements(properties.Get("rules")) {
		apiGroups := stringsOf(field(rule, "apiGroups"))
		resources := stringsOf(field(rule, "resources"))
		if !apiGroups.contains("", "*") || !resources.contains("secrets", "*") {
			continue
		}
		rules = append(rules, secretRule{
			index:         index,
			verbs:         stringsOf(field(rule, "verbs")),
			resourceNames: stringsOf(field(rule, "resourceNames")),
		})
	}
	return rules
}

// formatVerbs lists a rule's verbs for a message.
func formatVerbs(verbs stringList) string {
	if len(verbs.values) == 0 {
		return "no known verb"
	}
	return strings.Join(verbs.values, ", ")
}

// roleScope describes the Secrets that a rule without resourceNames grants.
func roleScope(resource policyx.AnalyzerResource) string {
	if strings.HasPrefix(kindOf(resource.Type), "ClusterRole") {
		return "every namespace it is bound in (all of them through a ClusterRoleBinding)"
	}
	if namespace := knownString(field(resource.Properties.Get("metadata"), "namespace")); namespace != "" {
		return fmt.Sprintf("namespace %q", namespace)
	}
	return "its namespace"
}

// NewSecretRulesNamedPolicy returns the policy that rejects a Role or
// ClusterRole rule on Secrets without resourceNames.
func NewSecretRulesNamedPolicy() policyx.ResourceValidationPolicy {
	return policyx.NewResourceValidationPolicy(SecretRulesNamedPolicy, policyx.ResourceValidationPolicyArgs{
		Description: "Every Role and ClusterRole rule on Secrets (apiGroups \"\" or \"*\" with resources " +
			"\"secrets\" or \"*\") must list resourceNames. Without them the rule grants every Secret in its " +
			"scope, the JWT signing key included. Fix: add resourceNames with only the Secrets the subjects " +
			"read, as the Role jwt-secret-reader does. A rule whose only verb is create is exempt, because " +
			"Kubernetes cannot restrict create by name.",
		EnforcementLevel: policyx.EnforcementLevelMandatory,
		ValidateResource: validateSecretRulesNamed,
	})
}

func validateSecretRulesNamed(_ context.Context, args policyx.ResourceValidationArgs) error {
	if !isRoleType(args.Resource.Type) {
		return nil
	}

	for _, rule := range secretRulesOf(args.Resource.Properties) {
		// An unknown list may hold names once it is known.
		if rule.resourceNames.unknown || len(rule.resourceNames.values) > 0 {
			continue
		}
		// The name of an object to create is not known when the request
		// is authorized, so a create rule with resourceNames never matches.
		if !rule.verbs.unknown && len(rule.verbs.values) > 0 && allEqual(rule.verbs.values, "create") {
			continue
		}
		args.Manager.ReportViolation(fmt.Sprintf(
			"%s: rules[%d] allows %s on Secrets without resourceNames, so it grants every Secret in %s. "+
				"Fix: set resourceNames to the Secrets the subjects need, for example [\"jwt-secret\"] with verbs [\"get\"].",
			describe(args.Resource), rule.index, formatVerbs(rule.verbs), roleScope(args.Resource)), "")
	}
	return nil
}

// NewSecretRulesNoListPolicy returns the policy that rejects list, watch or
// "*" on Secrets in a Role or ClusterRole rule.
func NewSecretRulesNoListPolicy() policyx.ResourceValidationPolicy {
	return policyx.NewResourceValidationPolicy(SecretRulesNoListPolicy, policyx.ResourceValidationPolicyArgs{
		Description: "No Role or ClusterRole rule may allow list, watch or \"*\" on Secrets, with or without " +
			"resourceNames. list and watch return the full data of each Secret they match, not only its name. " +
			"Without resourceNames that is every Secret in the rule's scope. With resourceNames the API server " +
			"allows a list or watch only when the request selects one listed name by the field selector " +
			"metadata.name, and rejects a plain collection request, so the verbs give a reader nothing that get " +
			"does not. Fix: allow only get, with resourceNames.",
		EnforcementLevel: policyx.EnforcementLevelMandatory,
		ValidateResource: validateSecretRulesNoList,
	})
}

func validateSecretRulesNoList(_ context.Context, args policyx.ResourceValidationArgs) error {
	if !isRoleType(args.Resource.Type) {
		return nil
	}

	for _, rule := range secretRulesOf(args.Resource.Properties) {
		var listing []string
		for _, verb := range rule.verbs.values {
			if verb == "list" || verb == "watch" || verb == "*" {
				listing = append(listing, verb)
			}
		}
		if len(listing) == 0 {
			continue
		}

		verbs := strings.Join(listing, ", ")
		if slices.Contains(listing, "*") {
			verbs += ` ("*" is every verb, list and watch included)`
		}
		if len(rule.resourceNames.values) == 0 && !rule.resourceNames.unknown {
			args.Manager.ReportViolation(fmt.Sprintf(
				"%s: rules[%d] allows %s on Secrets without resourceNames, so it returns the data of every Secret in %s. "+
					"Fix: replace the verbs with [\"get\"] and set resourceNames to the Secrets the subjects need.",
				describe(args.Resource), rule.index, verbs, roleScope(args.Resource)), "")
			continue
		}
		args.Manager.ReportViolation(fmt.Sprintf(
			"%s: rules[%d] allows %s on Secrets. With resourceNames the API server allows them only for "+
				"requests that select a listed name by the field selector metadata.name, which return the same "+
				"data as get. Fix: replace the verbs with [\"get\"] and keep resourceNames naming the Secret.",
			describe(args.Resource), rule.index, verbs), "")
	}
	return nil
}

// allEqual reports whether every value equals want.
func allEqual(values []string, want string) bool {
	for _, value := range values {
		if value != want {
			return false
		}
	}
	return true
}
