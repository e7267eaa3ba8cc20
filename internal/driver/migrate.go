package driver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/juwan/jwt-secret/components"
	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// lastAppliedAnnotation is the annotation in which `kubectl apply` keeps a
// copy of the applied manifest, which for a Secret includes its data.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// Migration is the report of Migrate.
type Migration struct {
	// Found is false when the cluster has no Secret to take over.
	Found bool
	// ImportedKey is true when the live key was stored as legacyKey.
	ImportedKey bool
	// RemovedLastApplied is true when the Secret carried a
	// last-applied-configuration annotation, with its data, that was removed.
	RemovedLastApplied bool
	// Adopted lists the existing objects the next `up` takes over.
	Adopted []string
}

// configSource reads stack config for jwtstack.ParseConfig.
type configSource auto.ConfigMap

func (s configSource) GetConfig(key string) (string, bool) {
	value, ok := s[key]
	return value.Value, ok
}

func (s configSource) IsConfigSecret(key string) bool {
	return s[key].Secret
}

// Migrate prepares the stack to take over a hand-applied setup without
// logging anybody out. It stores the live key of the existing Secret as the
// stack's legacyKey, a Pulumi secret, so the first `up` keeps it as the
// previous key. It removes the Secret's last-applied-configuration
// annotation, which contains a plaintext copy of the key. It returns the
// existing objects the next `up` adopts, and changes no key and no
// Deployment.
func (d *Driver) Migrate(ctx context.Context) (*Migration, error) {
	stackConfig, err := d.Stack.GetAllConfig(ctx)
	if err != nil {
		return nil, explain(d.opts.Stack, fmt.Errorf("unable to read the config of stack %q: %w", d.opts.Stack, err))
	}
	cfg, _, err := jwtstack.ParseConfig(configSource(stackConfig), d.opts.Stack, time.Now())
	if err != nil {
		return nil, err
	}
	if cfg.KeyGeneration != 1 {
		return nil, fmt.Errorf("unable to migrate stack %q: keyGeneration is %d, but the imported key is kept only at generation 1; fix: pulumi config set %s 1",
			d.opts.Stack, cfg.KeyGeneration, jwtstack.FullKey(jwtstack.KeyKeyGeneration))
	}
	if outputs, err := d.Stack.Outputs(ctx); err == nil && len(outputs) > 0 {
		return nil, fmt.Errorf("unable to migrate stack %q: it already manages the key; migration is only for a cluster whose Secret was applied by hand", d.opts.Stack)
	}

	clients, err := newClientset(d.opts.Kubeconfig)
	if err != nil {
		return nil, err
	}
	migration := &Migration{}
	secret, err := clients.CoreV1().Secrets(cfg.Namespace).Get(ctx, cfg.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return migration, nil
	}
	if err != nil {
		return nil, fmt.Errorf("unable to read Secret %s/%s: %w", cfg.Namespace, cfg.SecretName, err)
	}
	migration.Found = true

	// Keep the live key, so tokens it signed stay valid after the first up.
	liveKey := secret.Data[components.CurrentKeyDataKey]
	if len(liveKey) == 0 {
		keys := make([]string, 0, len(secret.Data))
		for key := range secret.Data {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		return nil, fmt.Errorf("unable to migrate: Secret %s/%s has no data key %q (it has: %s); fix: copy the signing key into that data key first",
			cfg.Namespace, cfg.SecretName, components.CurrentKeyDataKey, strings.Join(keys, ", "))
	}
	if err := d.Stack.SetConfig(ctx, jwtstack.FullKey(jwtstack.KeyLegacyKey), auto.ConfigValue{Value: string(liveKey), Secret: true}); err != nil {
		return nil, explain(d.opts.Stack, fmt.Errorf("unable to store the live key as %s: %w", jwtstack.FullKey(jwtstack.KeyLegacyKey), err))
	}
	migration.ImportedKey = true

	// Drop kubectl's copy of the manifest: it contains the key.
	if _, ok := secret.Annotations[lastAppliedAnnotation]; ok {
		patch := []byte(`{"metadata":{"annotations":{"` + lastAppliedAnnotation + `":null}}}`)
		if _, err := clients.CoreV1().Secrets(cfg.Namespace).Patch(ctx, cfg.SecretName, types.MergePatchType, patch,
			metav1.PatchOptions{FieldManager: components.FieldManager}); err != nil {
			return nil, fmt.Errorf("unable to remove the %s annotation from Secret %s/%s: %w", lastAppliedAnnotation, cfg.Namespace, cfg.SecretName, err)
		}
		migration.RemovedLastApplied = true
	}

	// List what `up` will adopt.
	migration.Adopted = append(migration.Adopted, "Secret "+cfg.SecretName)
	if _, err := clients.RbacV1().Roles(cfg.Namespace).Get(ctx, cfg.RoleName, metav1.GetOptions{}); err == nil {
		migration.Adopted = append(migration.Adopted, "Role "+cfg.RoleName)
	}
	for _, consumer := range cfg.Consumers {
		if _, err := clients.CoreV1().ServiceAccounts(cfg.Namespace).Get(ctx, consumer.ServiceAccount, metav1.GetOptions{}); err == nil {
			migration.Adopted = append(migration.Adopted, "ServiceAccount "+consumer.ServiceAccount)
		}
		binding := cfg.RoleName + "-" + consumer.ServiceAccount
		if _, err := clients.RbacV1().RoleBindings(cfg.Namespace).Get(ctx, binding, metav1.GetOptions{}); err == nil {
			migration.Adopted = append(migration.Adopted, "RoleBinding "+binding)
		}
	}
	return migration, nil
}
