package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/juwan/jwt-secret/fixtures"
)

const (
	// BackendNamespace is the namespace of the fixture Deployments.
	BackendNamespace = "juwan"
	// ClientSideApplyFieldManager is the field manager that `kubectl apply`
	// (client-side, its default) records for what it creates and patches.
	ClientSideApplyFieldManager = "kubectl-client-side-apply"
)

// BackendDeployments are the Deployments in fixtures/backend.yaml.
var BackendDeployments = []string{"user-rpc", "envoy-gateway"}

// SeedBackend applies fixtures/backend.yaml (namespace juwan, the user-rpc
// and envoy-gateway Deployments and their ConfigMaps) as the backend team's
// `kubectl apply -f` would. Calling it again changes nothing, and it keeps
// fields that another field manager has set since, such as a
// serviceAccountName set by server-side apply.
func SeedBackend(ctx context.Context, cfg *rest.Config) error {
	if err := ApplyManifest(ctx, cfg, fixtures.BackendYAML); err != nil {
		return fmt.Errorf("unable to seed the backend fixture: %w", err)
	}
	return nil
}

// ApplyManifest applies every object in a multi-document YAML manifest the
// way client-side `kubectl apply` does. An object that does not exist is
// created with the kubectl.kubernetes.io/last-applied-configuration
// annotation. An object that exists gets a three-way strategic merge patch
// computed from that annotation, the manifest and the live object, so only
// the fields that the manifest changed or dropped since the last apply
// change. Both use the field manager kubectl-client-side-apply. Client-side
// apply is what `kubectl apply` does without --server-side, so the live
// objects' managedFields look as they do in a cluster where a team deploys
// with plain kubectl.
func ApplyManifest(ctx context.Context, cfg *rest.Config, manifest []byte) error {
	objects, err := decodeManifest(manifest)
	if err != nil {
		return err
	}

	discoveryClient, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("unable to create a discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discoveryClient))
	dynamicClient, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("unable to create a dynamic client: %w", err)
	}

	for _, object := range objects {
		if err := applyObject(ctx, mapper, dynamicClient, object); err != nil {
			return err
		}
	}
	return nil
}

// decodeManifest returns the objects of a multi-document YAML manifest,
// skipping empty documents.
func decodeManifest(manifest []byte) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var objects []*unstructured.Unstructured
	for index := 0; ; index++ {
		var content map[string]any
		if err := decoder.Decode(&content); err != nil {
			if errors.Is(err, io.EOF) {
				return objects, nil
			}
			return nil, fmt.Errorf("unable to decode document %d of the manifest: %w", index, err)
		}
		if len(content) == 0 {
			continue
		}
		object := &unstructured.Unstructured{Object: content}
		if object.GetKind() == "" || object.GetName() == "" {
			return nil, fmt.Errorf("unable to apply document %d of the manifest: it has no kind or no metadata.name", index)
		}
		objects = append(objects, object)
	}
}

func applyObject(ctx context.Context, mapper meta.RESTMapper, dynamicClient dynamic.Interface, object *unstructured.Unstructured) error {
	gvk := object.GroupVersionKind()
	description := fmt.Sprintf("%s %s", gvk.Kind, object.GetName())
	if object.GetNamespace() != "" {
		description = fmt.Sprintf("%s %s/%s", gvk.Kind, object.GetNamespace(), object.GetName())
	}

	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("unable to find the API resource for %s: %w", description, err)
	}
	var resource dynamic.ResourceInterface = dynamicClient.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		resource = dynamicClient.Resource(mapping.Resource).Namespace(object.GetNamespace())
	}

	// kubectl stores the manifest's object, without the annotation itself,
	// in the annotation, and sends the object with the annotation.
	withoutAnnotation := object.DeepCopy()
	annotations := withoutAnnotation.GetAnnotations()
	delete(annotations, corev1.LastAppliedConfigAnnotation)
	withoutAnnotation.SetAnnotations(annotations)
	lastApplied, err := withoutAnnotation.MarshalJSON()
	if err != nil {
		return fmt.Errorf("unable to encode %s: %w", description, err)
	}
	modifiedObject := withoutAnnotation.DeepCopy()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[corev1.LastAppliedConfigAnnotation] = string(lastApplied)
	modifiedObject.SetAnnotations(annotations)
	modified, err := modifiedObject.MarshalJSON()
	if err != nil {
		return fmt.Errorf("unable to encode %s: %w", description, err)
	}

	live, err := resource.Get(ctx, object.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = resource.Create(ctx, modifiedObject, metav1.CreateOptions{FieldManager: ClientSideApplyFieldManager})
		if err != nil {
			return fmt.Errorf("unable to create %s: %w", description, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("unable to get %s: %w", description, err)
	}

	current, err := live.MarshalJSON()
	if err != nil {
		return fmt.Errorf("unable to encode the live %s: %w", description, err)
	}
	original := []byte(live.GetAnnotations()[corev1.LastAppliedConfigAnnotation])

	typed, err := scheme.Scheme.New(gvk)
	if err != nil {
		return fmt.Errorf("unable to apply %s: kind %s is not a built-in Kubernetes type, and only those have strategic merge patch metadata: %w", description, gvk, err)
	}
	patchMeta, err := strategicpatch.NewPatchMetaFromStruct(typed)
	if err != nil {
		return fmt.Errorf("unable to read the patch metadata of %s: %w", gvk, err)
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, patchMeta, true)
	if err != nil {
		return fmt.Errorf("unable to compute the apply patch for %s: %w", description, err)
	}
	if string(patch) == "{}" {
		return nil
	}
	_, err = resource.Patch(ctx, object.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: ClientSideApplyFieldManager})
	if err != nil {
		return fmt.Errorf("unable to patch %s: %w", description, err)
	}
	return nil
}

// WaitForDeployments waits until every named Deployment in namespace has
// rolled out as `kubectl rollout status` judges it: the controller has seen
// the latest spec, every replica runs the latest pod template, and all of
// them are available. It fails when ctx ends, naming the Deployments that
// are not ready and why.
func WaitForDeployments(ctx context.Context, cfg *rest.Config, namespace string, names ...string) error {
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("unable to create a Kubernetes client: %w", err)
	}
	for {
		var pending []string
		for _, name := range names {
			deployment, err := clientset.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				pending = append(pending, fmt.Sprintf("%s (%v)", name, err))
				continue
			}
			if reason := deploymentNotReadyReason(deployment); reason != "" {
				pending = append(pending, fmt.Sprintf("%s (%s)", name, reason))
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for Deployments in namespace %s to become available: %s; check the pods with kubectl describe and the kube-controller-manager, kube-scheduler and kwok logs", namespace, strings.Join(pending, "; "))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// deploymentNotReadyReason returns why deployment has not rolled out, or ""
// once it has.
func deploymentNotReadyReason(deployment *appsv1.Deployment) string {
	status := deployment.Status
	if status.ObservedGeneration < deployment.Generation {
		return fmt.Sprintf("controller observed generation %d, latest is %d", status.ObservedGeneration, deployment.Generation)
	}
	want := int32(1)
	if deployment.Spec.Replicas != nil {
		want = *deployment.Spec.Replicas
	}
	if status.UpdatedReplicas < want {
		return fmt.Sprintf("%d of %d replicas updated", status.UpdatedReplicas, want)
	}
	if status.Replicas > status.UpdatedReplicas {
		return fmt.Sprintf("%d old replicas pending termination", status.Replicas-status.UpdatedReplicas)
	}
	if status.AvailableReplicas < status.UpdatedReplicas {
		return fmt.Sprintf("%d of %d updated replicas available", status.AvailableReplicas, status.UpdatedReplicas)
	}
	for _, condition := range status.Conditions {
		if condition.Type == appsv1.DeploymentAvailable && condition.Status != corev1.ConditionTrue {
			return fmt.Sprintf("condition Available is %s: %q", condition.Status, condition.Message)
		}
	}
	return ""
}
