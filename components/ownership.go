package components

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// ownedAnnotations returns the annotations of every object this program
// owns (the Secret, the ServiceAccounts, the Role and the RoleBindings).
// They make the Kubernetes provider apply with force, so a first `up` on a
// cluster where these objects were created with `kubectl apply` takes them
// over instead of failing on the fields kubectl's field manager holds. The
// Deployment patches never force unless a consumer sets forceConflicts.
// ownerStack, when set, is recorded in OwnerStackAnnotation.
func ownedAnnotations(ownerStack string) pulumi.StringMap {
	annotations := pulumi.StringMap{patchForceAnnotation: pulumi.String("true")}
	if ownerStack != "" {
		annotations[OwnerStackAnnotation] = pulumi.String(ownerStack)
	}
	return annotations
}

// OwnerStackAnnotation records on every object the program creates or
// patches the fully qualified name of the stack that owns it, so another
// stack refuses to take it over.
const OwnerStackAnnotation = "jwt.juwan.io/owner-stack"
