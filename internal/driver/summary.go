package driver

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/juwan/jwt-secret/components"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Summary is the state a person checks after `up`, read from the cluster.
type Summary struct {
	Namespace  string
	SecretName string
	SecretUID  string
	// DataKeys are the Secret's data keys; never their values.
	DataKeys   []string
	Generation string
	// Access maps a user to the verbs an access review allowed on the Secret.
	Access      map[string][]string
	Deployments []DeploymentSummary
	// PreviousRevisions maps "namespace/name" to the Deployment's revision
	// before the run, to tell which Deployments rolled in this run.
	PreviousRevisions map[string]string
}

// DeploymentSummary is the rollout state of one patched Deployment.
type DeploymentSummary struct {
	Name               string
	ServiceAccount     string
	KeyGeneration      string
	Revision           string
	UpdatedReplicas    int32
	AvailableReplicas  int32
	Replicas           int32
	ObservedGeneration bool
}

// reviewedVerbs are the verbs the summary checks for each identity.
var reviewedVerbs = []string{"get", "list", "watch", "update", "delete"}

// Summarize reads the Secret, runs access reviews for every reader and for
// the namespace's default ServiceAccount, and reads the patched Deployments.
func Summarize(ctx context.Context, kubeconfig string, outputs map[string]any) (*Summary, error) {
	clients, err := newClientset(kubeconfig)
	if err != nil {
		return nil, err
	}
	s := &Summary{
		Namespace:  fmt.Sprint(outputs["namespace"]),
		SecretName: fmt.Sprint(outputs["secretName"]),
		Generation: fmt.Sprint(outputs["keyGeneration"]),
		Access:     map[string][]string{},
	}

	secret, err := clients.CoreV1().Secrets(s.Namespace).Get(ctx, s.SecretName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("unable to read Secret %s/%s: %w", s.Namespace, s.SecretName, err)
	}
	s.SecretUID = string(secret.UID)
	for key := range secret.Data {
		s.DataKeys = append(s.DataKeys, key)
	}
	slices.Sort(s.DataKeys)

	users := toStrings(outputs["readers"])
	users = append(users, components.ServiceAccountUser(s.Namespace, "default"))
	for _, user := range users {
		allowed, err := AllowedVerbs(ctx, clients, user, s.Namespace, s.SecretName)
		if err != nil {
			return nil, err
		}
		s.Access[user] = allowed
	}

	for _, name := range toStrings(outputs["patchedDeployments"]) {
		namespace, deploymentName, _ := strings.Cut(name, "/")
		deployment, err := clients.AppsV1().Deployments(namespace).Get(ctx, deploymentName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("unable to read Deployment %s: %w", name, err)
		}
		replicas := int32(1)
		if deployment.Spec.Replicas != nil {
			replicas = *deployment.Spec.Replicas
		}
		s.Deployments = append(s.Deployments, DeploymentSummary{
			Name:               name,
			ServiceAccount:     deployment.Spec.Template.Spec.ServiceAccountName,
			KeyGeneration:      deployment.Spec.Template.Annotations[components.GenerationAnnotation],
			Revision:           deployment.Annotations["deployment.kubernetes.io/revision"],
			UpdatedReplicas:    deployment.Status.UpdatedReplicas,
			AvailableReplicas:  deployment.Status.AvailableReplicas,
			Replicas:           replicas,
			ObservedGeneration: deployment.Status.ObservedGeneration >= deployment.Generation,
		})
	}
	return s, nil
}

// Revisions returns the revision of each Deployment the stack's last
// deployment patched, keyed "namespace/name". It returns nil when the stack
// has no outputs yet or the cluster cannot be read, because it only
// annotates the summary.
func Revisions(ctx context.Context, kubeconfig string, d *Driver) map[string]string {
	outputs, err := d.Stack.Outputs(ctx)
	if err != nil || len(outputs) == 0 {
		return nil
	}
	clients, err := newClientset(kubeconfig)
	if err != nil {
		return nil
	}
	revisions := map[string]string{}
	for _, name := range toStrings(outputs["patchedDeployments"].Value) {
		namespace, deploymentName, _ := strings.Cut(name, "/")
		deployment, err := clients.AppsV1().Deployments(namespace).Get(ctx, deploymentName, metav1.GetOptions{})
		if err == nil {
			revisions[name] = deployment.Annotations["deployment.kubernetes.io/revision"]
		}
	}
	return revisions
}

// AllowedVerbs returns the verbs that a SubjectAccessReview allows user on
// the Secret, out of get, list, watch, update and delete.
func AllowedVerbs(ctx context.Context, clients kubernetes.Interface, user, namespace, secretName string) ([]string, error) {
	var allowed []string
	for _, verb := range reviewedVerbs {
		attributes := &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Resource: "secrets", Name: secretName}
		if verb == "list" || verb == "watch" {
			attributes.Name = ""
		}
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             serviceAccountGroups(user),
			ResourceAttributes: attributes,
		}}
		result, err := clients.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("unable to review %s access of %s to Secret %s/%s: %w", verb, user, namespace, secretName, err)
		}
		if result.Status.Allowed {
			allowed = append(allowed, verb)
		}
	}
	return allowed, nil
}

// serviceAccountGroups returns the groups Kubernetes puts a ServiceAccount
// in, so the review gets the groups a real token carries.
func serviceAccountGroups(user string) []string {
	parts := strings.Split(user, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" {
		return nil
	}
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + parts[2], "system:authenticated"}
}

// Print writes the summary for a person.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\nKey generation %s\n", s.Generation)
	fmt.Fprintf(w, "Secret %s/%s (uid %s), data keys: %s (values not shown)\n", s.Namespace, s.SecretName, s.SecretUID, strings.Join(s.DataKeys, ", "))

	fmt.Fprintf(w, "Who can read it (SubjectAccessReview of %s):\n", strings.Join(reviewedVerbs, ", "))
	users := make([]string, 0, len(s.Access))
	for user := range s.Access {
		users = append(users, user)
	}
	slices.Sort(users)
	for _, user := range users {
		verbs := "nothing"
		if len(s.Access[user]) > 0 {
			verbs = strings.Join(s.Access[user], ", ")
		}
		fmt.Fprintf(w, "  %-55s %s\n", user, verbs)
	}

	fmt.Fprintln(w, "Patched Deployments:")
	for _, d := range s.Deployments {
		state := "rolled out"
		if !d.ObservedGeneration || d.UpdatedReplicas < d.Replicas || d.AvailableReplicas < d.Replicas {
			state = "rolling"
		}
		if previous, ok := s.PreviousRevisions[d.Name]; ok {
			if previous == d.Revision {
				state += ", unchanged in this run"
			} else {
				state += fmt.Sprintf(", rolled in this run (revision %s -> %s)", previous, d.Revision)
			}
		}
		fmt.Fprintf(w, "  %-28s serviceAccount %s, key generation %s, revision %s, %d/%d updated and available: %s\n",
			d.Name, d.ServiceAccount, d.KeyGeneration, d.Revision, d.AvailableReplicas, d.Replicas, state)
	}
}

func newClientset(kubeconfig string) (*kubernetes.Clientset, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	config, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("unable to load kubeconfig: %w", err)
	}
	clients, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("unable to create a Kubernetes client: %w", err)
	}
	return clients, nil
}

func toStrings(value any) []string {
	items, _ := value.([]any)
	out := make([]string, 0, len(items))
	for _, item := range items {
		out = append(out, fmt.Sprint(item))
	}
	return out
}
