package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

// EnvFromSecretPolicy is the name of the env var policy.
const EnvFromSecretPolicy = "env-key-material-from-secret"

// keyMaterialName matches env var names that suggest key material. It
// matches anywhere in the name, so JWT_SECRET_KEY, API_TOKEN and
// db_password all match.
var keyMaterialName = regexp.MustCompile(`(?i)JWT|SECRET|KEY|TOKEN|PASSWORD`)

// NewEnvFromSecretPolicy returns the policy that rejects literal env values
// that hold key material in a workload's containers.
func NewEnvFromSecretPolicy() policyx.ResourceValidationPolicy {
	return policyx.NewResourceValidationPolicy(EnvFromSecretPolicy, policyx.ResourceValidationPolicyArgs{
		Description: "Key material must reach a container through env valueFrom.secretKeyRef, never as a " +
			"literal env value. Kubernetes keeps a literal value in plain text in the workload object, where " +
			"anyone who may read the object, and kubectl describe, show it. An env var whose name contains " +
			"JWT, SECRET, KEY, TOKEN or PASSWORD (any case) must set valueFrom and no value, and an env value " +
			"that is a Pulumi secret is rejected whatever its name. Applies to Pods, Deployments, StatefulSets, " +
			"DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs, PodTemplates and their patches. " +
			"Fix: store the value in a Secret and set valueFrom.secretKeyRef (name and key) instead of value.",
		EnforcementLevel: policyx.EnforcementLevelMandatory,
		ValidateResource: validateEnvFromSecret,
	})
}

func validateEnvFromSecret(_ context.Context, args policyx.ResourceValidationArgs) error {
	spec, ok := podSpecOf(args.Resource)
	if !ok {
		return nil
	}
	resource := describe(args.Resource)
	kind := baseKind(args.Resource)

	for _, c := range spec.containers() {
		envList := field(c.value, "env")
		for index, envVar := range elements(envList) {
			if !envVar.IsMap() {
				continue
			}
			name := knownString(field(envVar, "name"))
			label := fmt.Sprintf("env %s", name)
			if name == "" {
				label = fmt.Sprintf("env[%d]", index)
			}
			value := field(envVar, "value")
			valueFrom := field(envVar, "valueFrom")
			secret := c.secret || envList.Secret() || envVar.Secret() || value.Secret()

			// A secret value is checked first, because its message is the
			// more specific one. No message quotes the value.
			if !value.IsNull() && secret {
				args.Manager.ReportViolation(fmt.Sprintf(
					"%s: %s %s sets a value that is a Pulumi secret. Pulumi encrypts it in the state, but "+
						"Kubernetes keeps it in plain text in the %s. "+
						"Fix: store it in a Secret and set valueFrom.secretKeyRef instead of value.",
					resource, c.label(), label, kind), "")
				continue
			}

			match := keyMaterialName.FindString(name)
			if match == "" {
				continue
			}
			switch {
			case !value.IsNull():
				args.Manager.ReportViolation(fmt.Sprintf(
					"%s: %s %s sets a literal value, and its name contains %q, so it looks like key material "+
						"that Kubernetes would keep in plain text in the %s. "+
						"Fix: store it in a Secret and set valueFrom.secretKeyRef instead of value.",
					resource, c.label(), label, strings.ToUpper(match), kind), "")
			case valueFrom.IsNull():
				args.Manager.ReportViolation(fmt.Sprintf(
					"%s: %s %s has no valueFrom, and its name contains %q, so it looks like key material. "+
						"Fix: set valueFrom.secretKeyRef to the Secret and key that hold it.",
					resource, c.label(), label, strings.ToUpper(match)), "")
			}
		}
	}
	return nil
}
