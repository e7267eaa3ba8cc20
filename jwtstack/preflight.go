package jwtstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/juwan/jwt-secret/components"
	appsv1 "k8s.io/api/apps/v1"
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
