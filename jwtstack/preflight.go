package jwtstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/juwan/jwt-secret/components"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// DeploymentGetter reads a Deployment. It returns an error for which
// apierrors.IsNotFound is true when the Deployment does not exist.
type DeploymentGetter func(ctx context.Context, namespace, name string) (*appsv1.Deployment, error)

// SecretOwnerGetter reports whether a Secret exists and returns the stack
// recorded in its OwnerStackAnnotation, "" if it has none.
type SecretOwnerGetter func(ctx context.Context, namespace, name string) (owner string, exists bool, err error)

// CheckSecretOwner fails when the Secret belongs to another stack of this
// project, for example dev's config run on the local cluster, because two
// stacks that share one Secret overwrite each other's key. It also fails
// when a first deployment would take over a Secret created by hand without
// keeping its key, which would invalidate every live token.
func CheckSecretOwner(ctx context.Context, cfg *Config, stack string, deployed bool, getOwner SecretOwnerGetter) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	owner, exists, err := getOwner(ctx, cfg.Namespace, cfg.SecretName)
	if err != nil {
		return fmt.Errorf("unable to read Secret %s/%s: %w", cfg.Namespace, cfg.SecretName, err)
	}
	if exists && owner == "" && !deployed && !cfg.HasLegacyKey {
		return &ConfigError{Problems: []string{fmt.Sprintf(
			"%s: Secret %s/%s already exists and was not created by this program, so a first up would replace the key that signs live tokens; fix: go run ./cmd/jwtctl --stack %s migrate, which keeps its key as the previous key (see docs/migration.md)",
			FullKey(KeySecretName), cfg.Namespace, cfg.SecretName, shortStackName(stack))}}
	}
	if owner == "" || owner == stack {
		return nil
	}
	return &ConfigError{Problems: []string{fmt.Sprintf(
		"%s: Secret %s/%s belongs to stack %s, and two stacks sharing one Secret overwrite each other's key; fix: run this stack against another cluster or namespace, or destroy stack %s first",
		FullKey(KeySecretName), cfg.Namespace, cfg.SecretName, owner, owner)}}
}

// preflightTimeout bounds the reads of the consumer Deployments, so an
// unreachable API server fails the preview instead of hanging it.
const preflightTimeout = 30 * time.Second

// CheckConsumers reads every consumer Deployment before anything is
// registered. A Deployment that is missing fails the run unless the
// consumer is optional, in which case it is dropped with a warning. A
// container the Deployment lacks fails the run, because server-side apply
// would otherwise add an empty container of that name.
func CheckConsumers(ctx context.Context, cfg *Config, get DeploymentGetter) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()

	var problems, warnings []string
	kept := cfg.Consumers[:0:0]
	for i, consumer := range cfg.Consumers {
		field := fmt.Sprintf("%s[%d]", FullKey(KeyConsumers), i)
		deployment, err := get(ctx, cfg.Namespace, consumer.Deployment)
		switch {
		case apierrors.IsNotFound(err) && consumer.Optional:
			warnings = append(warnings, fmt.Sprintf("Deployment %s/%s not found; skipping the optional consumer %s", cfg.Namespace, consumer.Deployment, field))
			continue
		case apierrors.IsNotFound(err):
			problems = append(problems, fmt.Sprintf("%s.deployment: Deployment %s/%s not found; fix: deploy it first, correct the name, or set optional: true on the consumer to skip it while it is missing",
				field, cfg.Namespace, consumer.Deployment))
			continue
		case err != nil:
			return nil, fmt.Errorf("unable to read Deployment %s/%s: %w", cfg.Namespace, consumer.Deployment, err)
		}

		containers := make([]string, 0, len(deployment.Spec.Template.Spec.Containers))
		for _, c := range deployment.Spec.Template.Spec.Containers {
			containers = append(containers, c.Name)
		}
		if !slices.Contains(containers, consumer.Container) {
			problems = append(problems, fmt.Sprintf("%s.container: Deployment %s/%s has no container %q; fix: use one of its containers: %s",
				field, cfg.Namespace, consumer.Deployment, consumer.Container, strings.Join(containers, ", ")))
			continue
		}

		// Fields the patch sets that someone changed by hand.
		drift := Drift(cfg.SecretName, consumer, deployment)
		switch {
		case len(drift) > 0 && consumer.ForceConflicts:
			consumer.Drift = strings.Join(drift, "; ")
			warnings = append(warnings, fmt.Sprintf("Deployment %s/%s was changed outside this program (%s); up restores it because forceConflicts is set",
				cfg.Namespace, consumer.Deployment, consumer.Drift))
		case len(drift) > 0:
			problems = append(problems, fmt.Sprintf("%s: Deployment %s/%s was changed outside this program: %s; fix: undo the change, or set forceConflicts: true on the consumer and run up to restore it",
				field, cfg.Namespace, consumer.Deployment, strings.Join(drift, "; ")))
			continue
		}
		kept = append(kept, consumer)
	}

	if len(problems) > 0 {
		return warnings, &ConfigError{Problems: problems}
	}
	if len(kept) == 0 {
		return warnings, &ConfigError{Problems: []string{FullKey(KeyConsumers) + ": every consumer Deployment is missing, so nothing would read the key; fix: deploy at least one of them first"}}
	}
	cfg.Consumers = kept
	return warnings, nil
}

// ClusterReaders returns a DeploymentGetter and a SecretOwnerGetter for
// the cluster that the Kubernetes provider also targets: kubeconfig if set,
// else the kubernetes:kubeconfig config, else $KUBECONFIG or
// ~/.kube/config, with the kubernetes:context config as the context.
func ClusterReaders(source Source, kubeconfig string) (DeploymentGetter, SecretOwnerGetter, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig == "" {
		kubeconfig, _ = source.GetConfig("kubernetes:kubeconfig")
	}
	overrides := &clientcmd.ConfigOverrides{}
	if kubeContext, ok := source.GetConfig("kubernetes:context"); ok {
		overrides.CurrentContext = kubeContext
	}

	var clientConfig clientcmd.ClientConfig
	switch {
	case kubeconfig == "":
		clientConfig = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	case strings.Contains(kubeconfig, "apiVersion:") || strings.HasPrefix(strings.TrimSpace(kubeconfig), "{"):
		// The provider accepts the kubeconfig's content as well as its path.
		var err error
		clientConfig, err = clientcmd.NewClientConfigFromBytes([]byte(kubeconfig))
		if err != nil {
			return nil, nil, fmt.Errorf("unable to parse kubernetes:kubeconfig: %w", err)
		}
	default:
		rules.ExplicitPath = expandHome(kubeconfig)
		clientConfig = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	}

	restConfig, err := clientConfig.ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("unable to load the kubeconfig: %w; fix: point --kubeconfig, KUBECONFIG or kubernetes:kubeconfig at the target cluster's kubeconfig", err)
	}
	clients, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("unable to create a Kubernetes client for %s: %w", restConfig.Host, err)
	}

	server := restConfig.Host
	unreachable := func(err error) error {
		var status apierrors.APIStatus
		if err != nil && !errors.As(err, &status) {
			return fmt.Errorf("the Kubernetes API server %s is unreachable: %w; fix: check that the cluster is up and the kubeconfig names it, then run again", server, err)
		}
		return err
	}
	getDeployment := func(ctx context.Context, namespace, name string) (*appsv1.Deployment, error) {
		deployment, err := clients.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		return deployment, unreachable(err)
	}
	getOwner := func(ctx context.Context, namespace, name string) (string, bool, error) {
		secret, err := clients.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", false, nil
		}
		if err != nil {
			return "", false, unreachable(err)
		}
		return secret.Annotations[components.OwnerStackAnnotation], true, nil
	}
	return getDeployment, getOwner, nil
}

func expandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return home + "/" + rest
		}
	}
	return path
}

// shortStackName returns the last part of a fully qualified stack name.
func shortStackName(stack string) string {
	return stack[strings.LastIndex(stack, "/")+1:]
}

// Drift returns a description of each field the consumer's patch sets that
// the live Deployment holds with another value. A field that is absent is
// no drift: the patch has not been applied yet, and applying it adds it.
func Drift(secretName string, consumer Consumer, deployment *appsv1.Deployment) []string {
	var drift []string
	spec := deployment.Spec.Template.Spec
	var container *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == consumer.Container {
			container = &spec.Containers[i]
		}
	}
	if container == nil {
		return nil
	}

	if consumer.Env != nil {
		expected := map[string]string{consumer.Env.Current: components.CurrentKeyDataKey}
		if consumer.Env.Previous != "" {
			expected[consumer.Env.Previous] = components.PreviousKeyDataKey
		}
		if consumer.Env.Next != "" {
			expected[consumer.Env.Next] = components.NextKeyDataKey
		}
		for _, env := range container.Env {
			key, ours := expected[env.Name]
			if !ours {
				continue
			}
			ref := env.ValueFrom
			if env.Value != "" || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != secretName || ref.SecretKeyRef.Key != key {
				drift = append(drift, fmt.Sprintf("env %s of container %s no longer reads %s/%s%s", env.Name, container.Name, secretName, key,
					setBy(deployment, "f:spec", "f:template", "f:spec", "f:containers", nameKey(container.Name), "f:env", nameKey(env.Name))))
			}
		}
	}

	if consumer.Mount != nil {
		for _, volume := range spec.Volumes {
			if volume.Name != consumer.Mount.Volume {
				continue
			}
			if volume.Secret == nil || volume.Secret.SecretName != secretName ||
				volume.Secret.DefaultMode == nil || int(*volume.Secret.DefaultMode) != consumer.Mount.FileMode {
				drift = append(drift, fmt.Sprintf("volume %s is no longer Secret %s with mode %s%s", volume.Name, secretName, consumer.Mount.Mode,
					setBy(deployment, "f:spec", "f:template", "f:spec", "f:volumes", nameKey(volume.Name))))
			}
		}
		for _, mount := range container.VolumeMounts {
			if mount.MountPath != consumer.Mount.Path {
				continue
			}
			if mount.Name != consumer.Mount.Volume || !mount.ReadOnly || mount.SubPath != "" {
				drift = append(drift, fmt.Sprintf("mount %s of container %s is no longer volume %s, read-only, without subPath", mount.MountPath, container.Name, consumer.Mount.Volume))
			}
		}
	}

	if name := spec.ServiceAccountName; name != "" && name != "default" && name != consumer.ServiceAccount {
		drift = append(drift, fmt.Sprintf("serviceAccountName is %s instead of %s%s", name, consumer.ServiceAccount,
			setBy(deployment, "f:spec", "f:template", "f:spec", "f:serviceAccountName")))
	}
	return drift
}

// setBy returns " (set by field manager X)" for the managers other than
// this program's whose managed fields contain path, or "".
func setBy(deployment *appsv1.Deployment, path ...string) string {
	var managers []string
	for _, entry := range deployment.ManagedFields {
		if entry.FieldsV1 == nil || entry.Manager == components.FieldManager {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(entry.FieldsV1.Raw, &fields) != nil {
			continue
		}
		found := true
		for _, part := range path {
			next, ok := fields[part].(map[string]any)
			if !ok {
				found = false
				break
			}
			fields = next
		}
		if found && !slices.Contains(managers, entry.Manager) {
			managers = append(managers, entry.Manager)
		}
	}
	if len(managers) == 0 {
		return ""
	}
	return fmt.Sprintf(" (set by field manager %s)", strings.Join(managers, ", "))
}

// nameKey returns the managed-fields key of a list item keyed by name.
func nameKey(name string) string {
	encoded, _ := json.Marshal(map[string]string{"name": name})
	return "k:" + string(encoded)
}
