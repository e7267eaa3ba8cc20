package jwtstack

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/juwan/jwt-secret/components"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Resource names of the stack. They are part of every child's URN, so
// changing one replaces live resources.
const (
	providerName  = "cluster"
	keyName       = "jwt-key"
	accessName    = "jwt-access"
	consumerNamer = "consumer-"
)

// Options configures the stack program.
type Options struct {
	// Now returns the time the key age is measured against; time.Now if nil.
	Now func() time.Time
	// Kubeconfig is the kubeconfig file of the cluster whose consumer
	// Deployments are checked before anything is registered. Empty means
	// the provider's own choice: kubernetes:kubeconfig, $KUBECONFIG or
	// ~/.kube/config.
	Kubeconfig string
	// GetDeployment replaces the cluster lookup of consumer Deployments.
	GetDeployment DeploymentGetter
	// GetOwner replaces the cluster lookup of the objects' owner stacks.
	GetOwner OwnerGetter
	// ProjectDir is the folder with Pulumi.yaml and the stack files, whose
	// keys are checked. Empty means the project root the CLI reports, which
	// an Automation API inline program does not have.
	ProjectDir string
}

// Program is the stack program: main.go passes it to pulumi.Run.
func Program(ctx *pulumi.Context) error {
	return NewProgram(Options{})(ctx)
}

// NewProgram returns the stack program with opts, for the Automation API
// driver and the tests. It validates the whole config and reads the
// consumer Deployments before it registers any resource, so an invalid
// config or a missing Deployment fails `pulumi preview` with nothing
// changed.
func NewProgram(opts Options) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		projectDir := opts.ProjectDir
		if projectDir == "" {
			projectDir = ctx.RootDirectory()
		}
		cfg, err := loadConfig(ctx, now(), projectDir)
		if err != nil {
			return err
		}

		// A rotation moves the generation by exactly one step.
		deployed, err := ReadDeployed(ctx)
		if err != nil {
			return err
		}
		if deployed.Exists {
			if err := CheckGenerationStep(ctx.Stack(), deployed.Generation, cfg.KeyGeneration); err != nil {
				return err
			}
		}

		// Mocks have no cluster to read.
		if !ctx.RunningWithMocks() || opts.GetDeployment != nil {
			get, getOwner := opts.GetDeployment, opts.GetOwner
			if get == nil || getOwner == nil {
				clusterGet, clusterOwner, err := ClusterReaders(ctx, opts.Kubeconfig)
				if err != nil {
					return err
				}
				if get == nil {
					get = clusterGet
				}
				if getOwner == nil {
					getOwner = clusterOwner
				}
			}
			if err := CheckOwners(ctx.Context(), &cfg, StackName(ctx), deployed.Exists, getOwner); err != nil {
				return err
			}
			warnings, err := CheckConsumers(ctx.Context(), &cfg, deployed.Exists, get)
			if logErr := logWarnings(ctx, warnings); logErr != nil {
				return logErr
			}
			if err != nil {
				return err
			}
		}

		stack, err := NewStack(ctx, cfg, deployed)
		if err != nil {
			return err
		}
		for name, value := range stack.Outputs {
			ctx.Export(name, value)
		}
		return nil
	}
}

// loadConfig parses the config and checks the stack file for unknown keys.
func loadConfig(ctx *pulumi.Context, now time.Time, projectDir string) (Config, error) {
	cfg, warnings, err := ParseConfig(ctx, ctx.Stack(), now)
	if logErr := logWarnings(ctx, warnings); logErr != nil {
		return Config{}, logErr
	}

	stackFile := filepath.Join(projectDir, "Pulumi."+ctx.Stack()+".yaml")
	unknownKeys, fileErr := CheckStackFileKeys(stackFile)
	if fileErr != nil {
		return Config{}, fileErr
	}
	if len(unknownKeys) > 0 {
		var configErr *ConfigError
		if !errors.As(err, &configErr) {
			configErr = &ConfigError{}
		}
		configErr.Problems = append(configErr.Problems, unknownKeys...)
		err = configErr
	}
	return cfg, err
}

// StackName returns the fully qualified name of the running stack.
func StackName(ctx *pulumi.Context) string {
	return fmt.Sprintf("%s/%s/%s", ctx.Organization(), ctx.Project(), ctx.Stack())
}

func logWarnings(ctx *pulumi.Context, warnings []string) error {
	for _, warning := range warnings {
		if err := ctx.Log.Warn(warning, nil); err != nil {
			return fmt.Errorf("unable to log a warning: %w", err)
		}
	}
	return nil
}

// Stack is the registered stack: its components and its outputs.
type Stack struct {
	Provider  *kubernetes.Provider
	Key       *components.SigningKey
	Access    *components.KeyAccess
	Consumers []*components.KeyConsumer
	// Outputs name things and never carry key material.
	Outputs pulumi.Map
}

// NewStack registers every resource of a validated config. deployed is
// the stack's last deployment, or the zero value.
func NewStack(ctx *pulumi.Context, cfg Config, deployed Deployed) (*Stack, error) {
	// Own the provider settings, so that every stack updates Secret data in
	// place and keeps the Secret's UID, whatever its stack file sets.
	providerArgs := &kubernetes.ProviderArgs{
		EnableSecretMutable:   pulumi.Bool(true),
		EnableServerSideApply: pulumi.Bool(true),
	}
	if kubeconfig, ok := ctx.GetConfig("kubernetes:kubeconfig"); ok {
		providerArgs.Kubeconfig = pulumi.String(kubeconfig)
	}
	if kubeContext, ok := ctx.GetConfig("kubernetes:context"); ok {
		providerArgs.Context = pulumi.String(kubeContext)
	}
	provider, err := kubernetes.NewProvider(ctx, providerName, providerArgs)
	if err != nil {
		return nil, fmt.Errorf("unable to create the Kubernetes provider: %w", err)
	}
	providers := pulumi.Providers(provider)
	stack := &Stack{Provider: provider}
	ownerStack := StackName(ctx)

	// The key and the Secret that holds it.
	var legacyKey pulumi.StringInput
	if cfg.HasLegacyKey {
		value, _ := ctx.GetConfig(FullKey(KeyLegacyKey))
		legacyKey = pulumi.ToSecret(pulumi.String(value)).(pulumi.StringOutput)
	}
	slotLengths := SlotLengths(deployed, cfg.KeyGeneration, cfg.KeyLength)
	if current := slotLengths[components.CurrentSlot(cfg.KeyGeneration)]; current != cfg.KeyLength {
		message := fmt.Sprintf("%s is %d, but the current key keeps its %d bytes: a new length applies to keys generated from now on, fully from the rotation after next",
			FullKey(KeyKeyLength), cfg.KeyLength, current)
		if err := ctx.Log.Warn(message, nil); err != nil {
			return nil, fmt.Errorf("unable to log a warning: %w", err)
		}
	}
	key, err := components.NewSigningKey(ctx, keyName, &components.SigningKeyArgs{
		Namespace:   cfg.Namespace,
		SecretName:  cfg.SecretName,
		SlotLengths: slotLengths,
		Generation:  cfg.KeyGeneration,
		LegacyKey:   legacyKey,
		Protect:     cfg.Protect,
		OwnerStack:  ownerStack,
	}, providers)
	if err != nil {
		return nil, err
	}
	stack.Key = key

	// Who may read it.
	serviceAccounts := make([]string, 0, len(cfg.Consumers))
	for _, consumer := range cfg.Consumers {
		serviceAccounts = append(serviceAccounts, consumer.ServiceAccount)
	}
	access, err := components.NewKeyAccess(ctx, accessName, &components.KeyAccessArgs{
		Namespace:       cfg.Namespace,
		SecretName:      cfg.SecretName,
		RoleName:        cfg.RoleName,
		ServiceAccounts: serviceAccounts,
		OwnerStack:      ownerStack,
	}, providers, pulumi.Protect(cfg.Protect))
	if err != nil {
		return nil, err
	}
	stack.Access = access

	// The Deployments that read it. They start after the Secret and the
	// RoleBindings exist, so new pods find both.
	patched := pulumi.StringArray{}
	for _, consumer := range cfg.Consumers {
		args := &components.KeyConsumerArgs{
			Namespace:      cfg.Namespace,
			SecretName:     cfg.SecretName,
			Deployment:     consumer.Deployment,
			Container:      consumer.Container,
			ServiceAccount: consumer.ServiceAccount,
			Generation:     cfg.KeyGeneration,
			DependsOn:      []pulumi.Resource{key, access},
			ForceConflicts: consumer.ForceConflicts,
			Drift:          consumer.Drift,
			OwnerStack:     ownerStack,
		}
		if consumer.Env != nil {
			args.Env = &components.EnvBinding{CurrentKeyVar: consumer.Env.Current, PreviousKeyVar: consumer.Env.Previous, NextKeyVar: consumer.Env.Next}
		}
		if consumer.Mount != nil {
			args.File = &components.FileBinding{MountPath: consumer.Mount.Path, Mode: consumer.Mount.FileMode, VolumeName: consumer.Mount.Volume}
		}
		// Protected consumers keep a production destroy from stripping the
		// key from running Deployments before it fails at the Secret.
		keyConsumer, err := components.NewKeyConsumer(ctx, consumerNamer+consumer.Deployment, args, providers, pulumi.Protect(cfg.Protect))
		if err != nil {
			return nil, err
		}
		stack.Consumers = append(stack.Consumers, keyConsumer)
		patched = append(patched, pulumi.String(cfg.Namespace+"/"+consumer.Deployment))
	}

	stack.Outputs = pulumi.Map{
		"namespace":  pulumi.String(cfg.Namespace),
		"secretName": key.SecretName,
		"secretDataKeys": pulumi.ToStringArray([]string{
			components.CurrentKeyDataKey, components.PreviousKeyDataKey, components.NextKeyDataKey, components.JWKSDataKey,
		}),
		// Read back by the next run, so a slot keeps its length until it
		// is regenerated.
		"keySlotLengths":     pulumi.ToIntArray(slotLengths[:]),
		"keyGeneration":      key.Generation,
		"roleName":           access.Role.Metadata.Name().Elem(),
		"readers":            access.Readers,
		"patchedDeployments": patched,
		"fieldManager":       pulumi.String(components.FieldManager),
	}
	return stack, nil
}
