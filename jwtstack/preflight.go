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

// OwnerGetter reports whether an object of kind (Secret, ServiceAccount,
// Role, RoleBinding or Deployment) exists and returns the stack recorded in
// its OwnerStackAnnotation, "" if it has none.
type OwnerGetter func(ctx context.Context, kind, namespace, name string) (owner string, exists bool, err error)

// CheckOwners fails when an object the stack would create or patch
// belongs to another stack of this project, for example dev's config run
// on the local cluster. Two stacks on one object undo each other's changes,
// and one's destroy deletes the other's access. It also fails when a first
// deployment would take over a Secret created by hand without keeping its
// key, which would invalidate every live token.
func CheckOwners(ctx context.Context, cfg *Config, stack string, deployed bool, getOwner OwnerGetter) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()

	type object struct{ kind, name string }
	objects := []object{{"Secret", cfg.SecretName}, {"Role", cfg.RoleName}}
	for _, consumer := range cfg.Consumers {
		objects = append(objects,
			object{"ServiceAccount", consumer.ServiceAccount},
			object{"RoleBinding", cfg.RoleName + "-" + consumer.ServiceAccount},
			object{"Deployment", consumer.Deployment})
	}

	var problems []string
	for _, o := range objects {
		owner, exists, err := getOwner(ctx, o.kind, cfg.Namespace, o.name)
		if err != nil {
			return fmt.Errorf("unable to read %s %s/%s: %w", o.kind, cfg.Namespace, o.name, err)
		}
		if o.kind == "Secret" && exists && owner == "" && !deployed && !cfg.HasLegacyKey {
			problems = append(problems, fmt.Sprintf(
				"%s: Secret %s/%s already exists and was not created by this program, so a first up would replace the key that signs live tokens; fix: go run ./cmd/jwtctl --stack %s migrate, which keeps its key as the previous key (see docs/migration.md)",
				FullKey(KeySecretName), cfg.Namespace, o.name, shortStackName(stack)))
		}
		if owner != "" && owner != stack {
			problems = append(problems, fmt.Sprintf(
				"%s %s/%s belongs to stack %s, and two stacks on one object undo each other's changes; fix: run this stack against another cluster or namespace, or destroy stack %s first",
				o.kind, cfg.Namespace, o.name, owner, owner))
		}
	}
	if len(problems) > 0 {
		return &ConfigError{Problems: problems}
	}
	return nil
}

// preflightTimeout bounds the reads of the consumer Deployments, so an
// unreachable API server fails the preview instead of hanging it.
const preflightTimeout = 30 * time.Second

// CheckConsumers reads every consumer Deployment before anything is
// registered. deployed is true once the stack has been deployed, so its
// patches' fields should be in place. A missing Deployment fails the run
// unless the consumer is optional, in which case it is dropped with a
// warning. A container the Deployment lacks fails the run, because
// server-side apply would otherwise add an empty container of that name.
func CheckConsumers(ctx context.Context, cfg *Config, deployed bool, get DeploymentGetter) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()

	var problems, warnings []string
	present := cfg.Consumers[:0:0]
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

		// Fields the patch sets that someone changed or removed by hand.
		// A removed field is put back without a conflict; a changed one
		// belongs to another field manager now.
		changed, removed := Drift(cfg.SecretName, consumer, deployment, deployed)
		switch {
		case len(changed) > 0 && !consumer.ForceConflicts:
			problems = append(problems, fmt.Sprintf("%s: Deployment %s/%s was changed outside this program: %s; fix: undo the change, or set forceConflicts: true on the consumer and run up to restore it",
				field, cfg.Namespace, consumer.Deployment, strings.Join(changed, "; ")))
			continue
		case len(changed)+len(removed) > 0:
			consumer.Drift = strings.Join(append(changed, removed...), "; ")
			warnings = append(warnings, fmt.Sprintf("Deployment %s/%s was changed outside this program (%s); up restores it",
				cfg.Namespace, consumer.Deployment, consumer.Drift))
		}
		present = append(present, consumer)
	}

	if len(problems) > 0 {
		return warnings, &ConfigError{Problems: problems}
	}
	if len(present) == 0 {
		return warnings, &ConfigError{Problems: []string{FullKey(KeyConsumers) + ": every consumer Deployment is missing, so nothing would read the key; fix: deploy at least one of them first"}}
	}
	cfg.Consumers = present
	return warnings, nil
}

// ClusterReaders returns a DeploymentGetter and an OwnerGetter for
// the cluster that the Kubernetes provider also targets: kubeconfig if set,
// else the kubernetes:kubeconfig config, else $KUBECONFIG or
// ~/.kube/config, with the kubernetes:context config as the context.
func ClusterReaders(source Source, kubeconfig string) (DeploymentGetter, OwnerGetter, error) {
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
	getOwner := func(ctx context.Context, kind, namespace, name string) (string, bool, error) {
		var meta metav1.Object
		var err error
		get := metav1.GetOptions{}
		switch kind {
		case "Secret":
			meta, err = clients.CoreV1().Secrets(namespace).Get(ctx, name, get)
		case "ServiceAccount":
			meta, err = clients.CoreV1().ServiceAccounts(namespace).Get(ctx, name, get)
		case "Role":
			meta, err = clients.RbacV1().Roles(namespace).Get(ctx, name, get)
		case "RoleBinding":
			meta, err = clients.RbacV1().RoleBindings(namespace).Get(ctx, name, get)
		case "Deployment":
			meta, err = clients.AppsV1().Deployments(namespace).Get(ctx, name, get)
		default:
			return "", false, fmt.Errorf("unknown kind %s", kind)
		}
		if apierrors.IsNotFound(err) {
			return "", false, nil
		}
		if err != nil {
			return "", false, unreachable(err)
		}
		return meta.GetAnnotations()[components.OwnerStackAnnotation], true, nil
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

// Drift describes each field the consumer's patch sets that the live
// Deployment holds with another value (changed) or, once the stack is
// deployed, lacks (removed). Before the first deployment a missing field
// is expected: applying the patch adds it.
func Drift(secretName string, consumer Consumer, deployment *appsv1.Deployment, deployed bool) (changed, removed []string) {
	spec := deployment.Spec.Template.Spec
	var container *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == consumer.Container {
			container = &spec.Containers[i]
		}
	}
	if container == nil {
		return nil, nil
	}
	containerPath := []string{"f:spec", "f:template", "f:spec", "f:containers", nameKey(container.Name)}

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
			delete(expected, env.Name)
			ref := env.ValueFrom
			if env.Value != "" || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != secretName || ref.SecretKeyRef.Key != key {
				changed = append(changed, fmt.Sprintf("env %s of container %s no longer reads %s/%s%s", env.Name, container.Name, secretName, key,
					setBy(deployment, append(containerPath, "f:env", nameKey(env.Name))...)))
			}
		}
		for name := range expected {
			if deployed {
				removed = append(removed, fmt.Sprintf("env %s of container %s was removed", name, container.Name))
			}
		}
	}

	if consumer.Mount != nil {
		foundVolume, foundMount := false, false
		for _, volume := range spec.Volumes {
			if volume.Name != consumer.Mount.Volume {
				continue
			}
			foundVolume = true
			if volume.Secret == nil || volume.Secret.SecretName != secretName ||
				volume.Secret.DefaultMode == nil || int(*volume.Secret.DefaultMode) != consumer.Mount.FileMode {
				changed = append(changed, fmt.Sprintf("volume %s is no longer Secret %s with mode %s%s", volume.Name, secretName, consumer.Mount.Mode,
					setBy(deployment, "f:spec", "f:template", "f:spec", "f:volumes", nameKey(volume.Name))))
			}
		}
		for _, mount := range container.VolumeMounts {
			if mount.MountPath != consumer.Mount.Path {
				continue
			}
			foundMount = true
			if mount.Name != consumer.Mount.Volume || !mount.ReadOnly || mount.SubPath != "" {
				changed = append(changed, fmt.Sprintf("mount %s of container %s is no longer volume %s, read-only, without subPath%s", mount.MountPath, container.Name, consumer.Mount.Volume,
					setBy(deployment, append(containerPath, "f:volumeMounts", mountPathKey(mount.MountPath))...)))
			}
		}
		if deployed && !foundVolume {
			removed = append(removed, fmt.Sprintf("volume %s was removed", consumer.Mount.Volume))
		}
		if deployed && !foundMount {
			removed = append(removed, fmt.Sprintf("mount %s of container %s was removed", consumer.Mount.Path, container.Name))
		}
	}

	switch name := spec.ServiceAccountName; {
	case name != "" && name != consumer.ServiceAccount:
		changed = append(changed, fmt.Sprintf("serviceAccountName is %s instead of %s%s", name, consumer.ServiceAccount,
			setBy(deployment, "f:spec", "f:template", "f:spec", "f:serviceAccountName")))
	case name == "" && deployed:
		removed = append(removed, "serviceAccountName was removed")
	}
	return changed, removed
}

// mountPathKey returns the managed-fields key of a volume mount, which is
// keyed by its mount path.
func mountPathKey(path string) string {
	encoded, _ := json.Marshal(map[string]string{"mountPath": path})
	return "k:" + string(encoded)
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
