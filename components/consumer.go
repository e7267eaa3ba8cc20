package components

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// FieldManager is the server-side apply field manager of every patch this
// program makes. A fixed name lets `kubectl` show who owns a field and lets
// a later run take back exactly the fields it set.
const FieldManager = "juwan-jwt-secret"

// GenerationAnnotation is the pod template annotation that carries the key
// generation. Changing it rolls the Deployment, so every pod restarts with
// the rotated key. It holds the generation number only, never key material.
const GenerationAnnotation = "jwt.juwan.io/key-generation"

// patchFieldManagerAnnotation names the field manager the Kubernetes
// provider applies a patch with. Without it each patch gets a random one.
const patchFieldManagerAnnotation = "pulumi.com/patchFieldManager"

// DriftRepairAnnotation marks a patch applied again to restore fields
// changed by hand. Its value is a digest of the drift found.
const DriftRepairAnnotation = "jwt.juwan.io/drift-repair"

// patchForceAnnotation makes the provider take over fields that another
// field manager owns instead of failing with a conflict.
const patchForceAnnotation = "pulumi.com/patchForce"

// EnvBinding passes the keys to a container as environment variables.
type EnvBinding struct {
	// CurrentKeyVar receives the current key.
	CurrentKeyVar string
	// PreviousKeyVar, if set, receives the previous key.
	PreviousKeyVar string
	// NextKeyVar, if set, receives the next key, which a verifier should
	// accept so that it accepts tokens from pods that restarted before it.
	NextKeyVar string
}

// FileBinding mounts the Secret into a container as files.
type FileBinding struct {
	// MountPath is the absolute directory that holds one file per data key.
	MountPath string
	// Mode is the permission bits of the files, for example 0o400.
	Mode int
	// VolumeName is the name of the pod volume.
	VolumeName string
}

// KeyConsumerArgs configures a KeyConsumer.
type KeyConsumerArgs struct {
	Namespace  string
	SecretName string
	// Deployment is the name of an existing Deployment that this program
	// does not own.
	Deployment string
	// Container is the container in the pod template that reads the key.
	Container      string
	ServiceAccount string
	Env            *EnvBinding
	File           *FileBinding
	Generation     int
	// DependsOn are resources the patch waits for, such as the Secret and
	// the RoleBindings, so that new pods find both. The engine does not pass
	// a component's dependencies on to its children, so they go here.
	DependsOn []pulumi.Resource
	// ForceConflicts takes over fields another field manager set, such as
	// a serviceAccountName from `kubectl edit`. Off, a conflict fails the
	// patch and names the field and the manager.
	ForceConflicts bool
	// OwnerStack is the fully qualified name of the stack, recorded in the
	// Deployment's OwnerStackAnnotation.
	OwnerStack string
	// Drift, when not empty, describes fields changed by hand that this
	// run restores. It goes into an annotation of the patch, so the inputs
	// change and the engine applies the patch again.
	Drift string
}

// KeyConsumer is a Deployment that reads the signing key, patched by
// server-side apply so that its pods run as their ServiceAccount and see the
// key. The patch merges into the live Deployment: lists are merged by their
// keys (container name, env var name, volume name, mount path), so nothing
// the Deployment already has is dropped or duplicated.
type KeyConsumer struct {
	pulumi.ResourceState

	Patch *appsv1.DeploymentPatch

	Deployment pulumi.StringOutput `pulumi:"deployment"`
}

// KeyConsumerType is the type token of KeyConsumer.
const KeyConsumerType = "juwan:jwt:KeyConsumer"

// NewKeyConsumer registers the Deployment patch. The patch waits for the
// rollout to finish, as the Kubernetes provider does for every Deployment.
func NewKeyConsumer(ctx *pulumi.Context, name string, args *KeyConsumerArgs, opts ...pulumi.ResourceOption) (*KeyConsumer, error) {
	if args.Env == nil && args.File == nil {
		return nil, fmt.Errorf("unable to patch Deployment %s/%s: it needs an env binding, a file binding or both", args.Namespace, args.Deployment)
	}

	consumer := &KeyConsumer{}
	if err := ctx.RegisterComponentResource(KeyConsumerType, name, consumer, opts...); err != nil {
		return nil, fmt.Errorf("unable to register key consumer %q: %w", name, err)
	}

	// Describe the container: env vars from the Secret and the mount.
	container := &corev1.ContainerPatchArgs{Name: pulumi.String(args.Container)}
	if args.Env != nil {
		env := corev1.EnvVarPatchArray{secretEnvVar(args.Env.CurrentKeyVar, args.SecretName, CurrentKeyDataKey)}
		if args.Env.PreviousKeyVar != "" {
			env = append(env, secretEnvVar(args.Env.PreviousKeyVar, args.SecretName, PreviousKeyDataKey))
		}
		if args.Env.NextKeyVar != "" {
			env = append(env, secretEnvVar(args.Env.NextKeyVar, args.SecretName, NextKeyDataKey))
		}
		container.Env = env
	}
	// The API server copies serviceAccountName into the deprecated
	// serviceAccount field. Setting both makes this field manager own both,
	// so a destroy removes both and leaves no reference to a deleted
	// ServiceAccount.
	podSpec := &corev1.PodSpecPatchArgs{
		ServiceAccountName: pulumi.String(args.ServiceAccount),
		ServiceAccount:     pulumi.String(args.ServiceAccount),
		Containers:         corev1.ContainerPatchArray{container},
	}
	if args.File != nil {
		// A whole-volume mount, not subPath: the kubelet updates the files
		// of a Secret volume in place only when no subPath is used.
		container.VolumeMounts = corev1.VolumeMountPatchArray{
			&corev1.VolumeMountPatchArgs{
				Name:      pulumi.String(args.File.VolumeName),
				MountPath: pulumi.String(args.File.MountPath),
				ReadOnly:  pulumi.Bool(true),
			},
		}
		podSpec.Volumes = corev1.VolumePatchArray{
			&corev1.VolumePatchArgs{
				Name: pulumi.String(args.File.VolumeName),
				Secret: &corev1.SecretVolumeSourcePatchArgs{
					SecretName:  pulumi.String(args.SecretName),
					DefaultMode: pulumi.Int(args.File.Mode),
				},
			},
		}
	}

	// Apply the patch with the project's field manager.
	annotations := pulumi.StringMap{patchFieldManagerAnnotation: pulumi.String(FieldManager)}
	if args.OwnerStack != "" {
		annotations[OwnerStackAnnotation] = pulumi.String(args.OwnerStack)
	}
	if args.ForceConflicts {
		annotations[patchForceAnnotation] = pulumi.String("true")
	}
	if args.Drift != "" {
		sum := sha256.Sum256([]byte(args.Drift))
		annotations[DriftRepairAnnotation] = pulumi.String(hex.EncodeToString(sum[:8]))
	}
	patch, err := appsv1.NewDeploymentPatch(ctx, name+"-patch", &appsv1.DeploymentPatchArgs{
		Metadata: &metav1.ObjectMetaPatchArgs{
			Name:        pulumi.String(args.Deployment),
			Namespace:   pulumi.String(args.Namespace),
			Annotations: annotations,
		},
		Spec: &appsv1.DeploymentSpecPatchArgs{
			Template: &corev1.PodTemplateSpecPatchArgs{
				Metadata: &metav1.ObjectMetaPatchArgs{
					Annotations: pulumi.StringMap{
						GenerationAnnotation: pulumi.String(strconv.Itoa(args.Generation)),
					},
				},
				Spec: podSpec,
			},
		},
	}, pulumi.Parent(consumer), pulumi.DependsOn(args.DependsOn))
	if err != nil {
		return nil, fmt.Errorf("unable to patch Deployment %s/%s: %w", args.Namespace, args.Deployment, err)
	}
	consumer.Patch = patch

	consumer.Deployment = pulumi.String(args.Deployment).ToStringOutput()
	if err := ctx.RegisterResourceOutputs(consumer, pulumi.Map{
		"deployment": consumer.Deployment,
	}); err != nil {
		return nil, fmt.Errorf("unable to register outputs of key consumer %q: %w", name, err)
	}
	return consumer, nil
}

// secretEnvVar returns an env var that Kubernetes fills from a Secret key at
// container start, so the key never appears in the Deployment itself.
func secretEnvVar(name, secretName, dataKey string) *corev1.EnvVarPatchArgs {
	return &corev1.EnvVarPatchArgs{
		Name: pulumi.String(name),
		ValueFrom: &corev1.EnvVarSourcePatchArgs{
			SecretKeyRef: &corev1.SecretKeySelectorPatchArgs{
				Name: pulumi.String(secretName),
				Key:  pulumi.String(dataKey),
			},
		},
	}
}
