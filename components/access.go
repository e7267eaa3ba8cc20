package components

import (
	"fmt"
	"slices"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// KeyAccessArgs configures a KeyAccess.
type KeyAccessArgs struct {
	Namespace  string
	SecretName string
	RoleName   string
	// ServiceAccounts are the names of the ServiceAccounts that may read the
	// Secret. Each is created in Namespace and bound to the Role.
	ServiceAccounts []string
	// OwnerStack is the fully qualified name of the stack, recorded in each
	// object's OwnerStackAnnotation.
	OwnerStack string
}

// KeyAccess is who may read the signing key: one ServiceAccount per reader,
// a Role that allows only `get` on the one Secret, and one RoleBinding per
// ServiceAccount.
type KeyAccess struct {
	pulumi.ResourceState

	ServiceAccounts map[string]*corev1.ServiceAccount
	Role            *rbacv1.Role
	RoleBindings    map[string]*rbacv1.RoleBinding

	// Readers are the Kubernetes user names of the ServiceAccounts, in the
	// form an access review or the audit log uses.
	Readers pulumi.StringArrayOutput `pulumi:"readers"`
}

// KeyAccessType is the type token of KeyAccess.
const KeyAccessType = "juwan:jwt:KeyAccess"

// ServiceAccountUser returns the user name that Kubernetes authenticates a
// ServiceAccount's token as.
func ServiceAccountUser(namespace, serviceAccount string) string {
	return fmt.Sprintf("system:serviceaccount:%s:%s", namespace, serviceAccount)
}

// NewKeyAccess registers the ServiceAccounts, the Role and the RoleBindings.
func NewKeyAccess(ctx *pulumi.Context, name string, args *KeyAccessArgs, opts ...pulumi.ResourceOption) (*KeyAccess, error) {
	access := &KeyAccess{
		ServiceAccounts: map[string]*corev1.ServiceAccount{},
		RoleBindings:    map[string]*rbacv1.RoleBinding{},
	}
	if err := ctx.RegisterComponentResource(KeyAccessType, name, access, opts...); err != nil {
		return nil, fmt.Errorf("unable to register key access %q: %w", name, err)
	}

	// Sort the readers so that registration order, and so the engine's
	// output, does not depend on config order.
	serviceAccounts := slices.Clone(args.ServiceAccounts)
	slices.Sort(serviceAccounts)
	serviceAccounts = slices.Compact(serviceAccounts)

	// Allow exactly one verb on exactly one Secret. Without resourceNames
	// the rule would grant every Secret in the namespace. `list` and
	// `watch` are left out because, with resourceNames, they only allow a
	// request selecting this one name, which adds nothing to `get`.
	role, err := rbacv1.NewRole(ctx, name+"-role", &rbacv1.RoleArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:        pulumi.String(args.RoleName),
			Namespace:   pulumi.String(args.Namespace),
			Annotations: ownedAnnotations(args.OwnerStack),
		},
		Rules: rbacv1.PolicyRuleArray{
			&rbacv1.PolicyRuleArgs{
				ApiGroups:     pulumi.StringArray{pulumi.String("")},
				Resources:     pulumi.StringArray{pulumi.String("secrets")},
				Verbs:         pulumi.StringArray{pulumi.String("get")},
				ResourceNames: pulumi.StringArray{pulumi.String(args.SecretName)},
			},
		},
	}, pulumi.Parent(access))
	if err != nil {
		return nil, fmt.Errorf("unable to create Role %s/%s: %w", args.Namespace, args.RoleName, err)
	}
	access.Role = role

	readers := pulumi.StringArray{}
	for _, serviceAccountName := range serviceAccounts {
		// Create the ServiceAccount that the consumer's pods run as.
		serviceAccount, err := corev1.NewServiceAccount(ctx, fmt.Sprintf("%s-sa-%s", name, serviceAccountName), &corev1.ServiceAccountArgs{
			Metadata: &metav1.ObjectMetaArgs{
				Name:        pulumi.String(serviceAccountName),
				Namespace:   pulumi.String(args.Namespace),
				Annotations: ownedAnnotations(args.OwnerStack),
			},
		}, pulumi.Parent(access))
		if err != nil {
			return nil, fmt.Errorf("unable to create ServiceAccount %s/%s: %w", args.Namespace, serviceAccountName, err)
		}
		access.ServiceAccounts[serviceAccountName] = serviceAccount

		// Bind it to the Role.
		bindingName := fmt.Sprintf("%s-%s", args.RoleName, serviceAccountName)
		binding, err := rbacv1.NewRoleBinding(ctx, fmt.Sprintf("%s-binding-%s", name, serviceAccountName), &rbacv1.RoleBindingArgs{
			Metadata: &metav1.ObjectMetaArgs{
				Name:        pulumi.String(bindingName),
				Namespace:   pulumi.String(args.Namespace),
				Annotations: ownedAnnotations(args.OwnerStack),
			},
			RoleRef: &rbacv1.RoleRefArgs{
				ApiGroup: pulumi.String("rbac.authorization.k8s.io"),
				Kind:     pulumi.String("Role"),
				Name:     role.Metadata.Name().Elem(),
			},
			Subjects: rbacv1.SubjectArray{
				&rbacv1.SubjectArgs{
					Kind:      pulumi.String("ServiceAccount"),
					Name:      serviceAccount.Metadata.Name().Elem(),
					Namespace: pulumi.String(args.Namespace),
				},
			},
		}, pulumi.Parent(access))
		if err != nil {
			return nil, fmt.Errorf("unable to create RoleBinding %s/%s: %w", args.Namespace, bindingName, err)
		}
		access.RoleBindings[serviceAccountName] = binding
		readers = append(readers, pulumi.String(ServiceAccountUser(args.Namespace, serviceAccountName)))
	}

	access.Readers = readers.ToStringArrayOutput()
	if err := ctx.RegisterResourceOutputs(access, pulumi.Map{
		"readers": access.Readers,
	}); err != nil {
		return nil, fmt.Errorf("unable to register outputs of key access %q: %w", name, err)
	}
	return access, nil
}
