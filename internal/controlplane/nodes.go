package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// kwokNodeAnnotation marks the Nodes that kwok manages: kwok runs with
	// --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake and
	// ignores every other Node.
	kwokNodeAnnotation      = "kwok.x-k8s.io/node"
	kwokNodeAnnotationValue = "fake"
)

// FakeNodeNames are the Nodes that Start creates for kwok to run.
var FakeNodeNames = []string{"kwok-node-0", "kwok-node-1"}

// fakeNode returns a Node as a kubelet would register it, with room for a
// few dozen small pods. kwok's node-initialize stage fills in the
// conditions, addresses and node info.
func fakeNode(name string) *corev1.Node {
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				kwokNodeAnnotation:             kwokNodeAnnotationValue,
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				"kubernetes.io/hostname":         name,
				"kubernetes.io/os":               "linux",
				"kubernetes.io/arch":             "amd64",
				"beta.kubernetes.io/os":          "linux",
				"node-role.kubernetes.io/worker": "",
				"type":                           "kwok",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources.DeepCopy(),
		},
	}
}

// createFakeNodes creates the Nodes in FakeNodeNames. A Node that already
// exists is left as it is.
func createFakeNodes(ctx context.Context, clientset kubernetes.Interface) error {
	for _, name := range FakeNodeNames {
		_, err := clientset.CoreV1().Nodes().Create(ctx, fakeNode(name), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("unable to create fake node %s: %w", name, err)
		}
	}
	return nil
}

// nodesNotReady returns the names of the nodes in FakeNodeNames that are not
// Ready yet.
func nodesNotReady(ctx context.Context, clientset kubernetes.Interface) ([]string, error) {
	var notReady []string
	for _, name := range FakeNodeNames {
		node, err := clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("unable to get node %s: %w", name, err)
		}
		if !nodeReady(node) {
			notReady = append(notReady, name)
		}
	}
	return notReady, nil
}

func nodeReady(node *corev1.Node) bool {
	for _, condition := range node.Status.Conditions {
		if condition.Type == corev1.NodeReady {
			return condition.Status == corev1.ConditionTrue
		}
	}
	return false
}
