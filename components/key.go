package components

import (
	"fmt"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi-random/sdk/v4/go/random"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Data keys of the Secret that holds the signing keys.
const (
	CurrentKeyDataKey  = "secret-key"
	PreviousKeyDataKey = "previous-secret-key"
	NextKeyDataKey     = "next-secret-key"
	JWKSDataKey        = "jwks.json"
)

// KeyAlphabetSpecial is the only punctuation a key may contain. Together with
// letters and digits it is the unpadded base64url alphabet, which survives
// YAML, env files and shells without quoting.
const KeyAlphabetSpecial = "-_"

// LegacyKeyID is the JWKS key ID of a key imported from before this program
// managed the Secret.
const LegacyKeyID = "legacy"

// SigningKeyArgs configures a SigningKey.
type SigningKeyArgs struct {
	Namespace  string
	SecretName string
	// SlotLengths are the key lengths in bytes of the slots. Every byte is
	// one character of the base64url alphabet, so a key carries about 6
	// bits of entropy per byte. A slot's length changes only together with
	// its generation, because any change of a slot's inputs regenerates it.
	SlotLengths [SlotCount]int
	// Generation is the current key generation, 1 or more.
	Generation int
	// LegacyKey, when set, is the key that signed tokens before this program
	// managed the Secret. It stays the previous key while Generation is 1.
	LegacyKey pulumi.StringInput
	// Protect marks the slots and the Secret as protected, so that
	// `pulumi destroy` or a replacement cannot delete the key.
	Protect bool
	// OwnerStack is the fully qualified name of the stack, recorded in the
	// Secret's OwnerStackAnnotation.
	OwnerStack string
}

// SigningKey is the JWT signing key: three RandomPassword slots that rotate
// with the key generation, and the Secret that holds the current, previous
// and next keys and a JWKS of them.
type SigningKey struct {
	pulumi.ResourceState

	Slots  [SlotCount]*random.RandomPassword
	Secret *corev1.Secret

	// CurrentKey, PreviousKey and NextKey are Pulumi secrets.
	CurrentKey  pulumi.StringOutput
	PreviousKey pulumi.StringOutput
	NextKey     pulumi.StringOutput

	SecretName pulumi.StringOutput `pulumi:"secretName"`
	Generation pulumi.IntOutput    `pulumi:"generation"`
}

// SigningKeyType is the type token of SigningKey. Changing it replaces the
// component and all of its children.
const SigningKeyType = "juwan:jwt:SigningKey"

// NewSigningKey registers the key slots and the Secret.
func NewSigningKey(ctx *pulumi.Context, name string, args *SigningKeyArgs, opts ...pulumi.ResourceOption) (*SigningKey, error) {
	if args.Generation < 1 {
		return nil, fmt.Errorf("unable to create signing key %q: generation %d is below 1", name, args.Generation)
	}

	key := &SigningKey{}
	if err := ctx.RegisterComponentResource(SigningKeyType, name, key, opts...); err != nil {
		return nil, fmt.Errorf("unable to register signing key %q: %w", name, err)
	}
	protect := pulumi.Protect(args.Protect)

	// Generate one key per slot. A slot is regenerated only when the
	// generation it holds changes, which the keeper records.
	for slot := range SlotCount {
		password, err := random.NewRandomPassword(ctx, fmt.Sprintf("%s-slot-%d", name, slot), &random.RandomPasswordArgs{
			Length:          pulumi.Int(args.SlotLengths[slot]),
			Special:         pulumi.Bool(true),
			OverrideSpecial: pulumi.String(KeyAlphabetSpecial),
			Keepers: pulumi.StringMap{
				"generation": pulumi.String(strconv.Itoa(SlotGeneration(slot, args.Generation))),
			},
		}, pulumi.Parent(key), protect)
		if err != nil {
			return nil, fmt.Errorf("unable to create key slot %d: %w", slot, err)
		}
		key.Slots[slot] = password
	}

	// Pick the current and previous keys. At generation 1 there is no
	// earlier generated key: the previous key is the imported legacy key if
	// there is one, else the current key, so verifiers accept only real keys.
	key.CurrentKey = pulumi.ToSecret(key.Slots[CurrentSlot(args.Generation)].Result).(pulumi.StringOutput)
	key.NextKey = pulumi.ToSecret(key.Slots[NextSlot(args.Generation)].Result).(pulumi.StringOutput)
	previousKeyID := strconv.Itoa(args.Generation - 1)
	switch {
	case args.Generation > 1:
		key.PreviousKey = pulumi.ToSecret(key.Slots[PreviousSlot(args.Generation)].Result).(pulumi.StringOutput)
	case args.LegacyKey != nil:
		key.PreviousKey = pulumi.ToSecret(args.LegacyKey).(pulumi.StringOutput)
		previousKeyID = LegacyKeyID
	default:
		key.PreviousKey = key.CurrentKey
		previousKeyID = ""
	}

	// Build the JWKS that Envoy reads: the current key, the next key and
	// the previous key, if there is one.
	currentKeyID, nextKeyID := strconv.Itoa(args.Generation), strconv.Itoa(args.Generation+1)
	jwks := pulumi.All(key.CurrentKey, key.NextKey, key.PreviousKey).ApplyT(func(values []any) (string, error) {
		keys := []VersionedKey{
			{KeyID: currentKeyID, Secret: values[0].(string)},
			{KeyID: nextKeyID, Secret: values[1].(string)},
		}
		if previousKeyID != "" {
			keys = append(keys, VersionedKey{KeyID: previousKeyID, Secret: values[2].(string)})
		}
		return BuildJWKS(keys)
	}).(pulumi.StringOutput)

	// Store the keys. The provider of this program updates Secret data in
	// place, so the Secret keeps its UID across rotations.
	secret, err := corev1.NewSecret(ctx, name+"-secret", &corev1.SecretArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:        pulumi.String(args.SecretName),
			Namespace:   pulumi.String(args.Namespace),
			Annotations: ownedAnnotations(args.OwnerStack),
			Labels: pulumi.StringMap{
				"app.kubernetes.io/managed-by": pulumi.String("pulumi"),
				"app.kubernetes.io/part-of":    pulumi.String("juwan"),
			},
		},
		Type: pulumi.String("Opaque"),
		StringData: pulumi.StringMap{
			CurrentKeyDataKey:  key.CurrentKey,
			PreviousKeyDataKey: key.PreviousKey,
			NextKeyDataKey:     key.NextKey,
			JWKSDataKey:        pulumi.ToSecret(jwks).(pulumi.StringOutput),
		},
	}, pulumi.Parent(key), protect)
	if err != nil {
		return nil, fmt.Errorf("unable to create Secret %s/%s: %w", args.Namespace, args.SecretName, err)
	}
	key.Secret = secret

	key.SecretName = secret.Metadata.Name().Elem()
	key.Generation = pulumi.Int(args.Generation).ToIntOutput()
	if err := ctx.RegisterResourceOutputs(key, pulumi.Map{
		"secretName": key.SecretName,
		"generation": key.Generation,
	}); err != nil {
		return nil, fmt.Errorf("unable to register outputs of signing key %q: %w", name, err)
	}
	return key, nil
}
