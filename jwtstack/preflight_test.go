package jwtstack_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/juwan/jwt-secret/internal/mocks"
	"github.com/juwan/jwt-secret/jwtstack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeCluster returns what the API server returns: the Deployments it has, and a
// NotFound status error for the rest.
func fakeCluster(deployments map[string][]string) jwtstack.DeploymentGetter {
	return func(ctx context.Context, namespace, name string) (*appsv1.Deployment, error) {
		containers, ok := deployments[name]
		if !ok {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, name)
		}
		d := &appsv1.Deployment{}
		for _, c := range containers {
			d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: c})
		}
		return d, nil
	}
}

var backend = map[string][]string{"user-rpc": {"user-rpc", "metrics"}, "envoy-gateway": {"envoy"}}

func TestCheckConsumersPassesBackend(t *testing.T) {
	cfg, _, err := parse(t, "dev", nil)
	require.NoError(t, err)
	warnings, err := jwtstack.CheckConsumers(context.Background(), &cfg, false, fakeCluster(backend))
	require.NoError(t, err)
	assert.Empty(t, warnings)
	assert.Len(t, cfg.Consumers, 2)
}

func TestCheckConsumersMissingDeployment(t *testing.T) {
	cfg, _, err := parse(t, "dev", nil)
	require.NoError(t, err)
	_, err = jwtstack.CheckConsumers(context.Background(), &cfg, false, fakeCluster(map[string][]string{"user-rpc": {"user-rpc"}}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "juwan-jwt-secret:consumers[1].deployment: Deployment juwan/envoy-gateway not found")
	assert.Contains(t, err.Error(), "set optional: true")
}

func TestCheckConsumersSkipsOptional(t *testing.T) {
	cfg, _, err := parse(t, "dev", map[string]string{"consumers": `[
		{"deployment":"user-rpc","container":"user-rpc","env":{"current":"K"}},
		{"deployment":"billing","container":"app","env":{"current":"K"},"optional":true}]`})
	require.NoError(t, err)
	warnings, err := jwtstack.CheckConsumers(context.Background(), &cfg, false, fakeCluster(backend))
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "Deployment juwan/billing not found; skipping the optional consumer")
	require.Len(t, cfg.Consumers, 1)
	assert.Equal(t, "user-rpc", cfg.Consumers[0].Deployment)
}

func TestCheckConsumersAllOptionalMissing(t *testing.T) {
	cfg, _, err := parse(t, "dev", map[string]string{"consumers": `[{"deployment":"billing","container":"app","env":{"current":"K"},"optional":true}]`})
	require.NoError(t, err)
	_, err = jwtstack.CheckConsumers(context.Background(), &cfg, false, fakeCluster(backend))
	assert.ErrorContains(t, err, "every consumer Deployment is missing")
}

func TestCheckConsumersMissingContainer(t *testing.T) {
	cfg, _, err := parse(t, "dev", map[string]string{"consumers": `[{"deployment":"user-rpc","container":"api","env":{"current":"K"}}]`})
	require.NoError(t, err)
	_, err = jwtstack.CheckConsumers(context.Background(), &cfg, false, fakeCluster(backend))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Deployment juwan/user-rpc has no container "api"; fix: use one of its containers: user-rpc, metrics`)
}

func TestCheckConsumersPassesOtherErrors(t *testing.T) {
	cfg, _, err := parse(t, "dev", nil)
	require.NoError(t, err)
	unreachable := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	_, err = jwtstack.CheckConsumers(context.Background(), &cfg, false, func(context.Context, string, string) (*appsv1.Deployment, error) {
		return nil, unreachable
	})
	assert.ErrorIs(t, err, unreachable)
	assert.Contains(t, err.Error(), "unable to read Deployment juwan/user-rpc")
}

func TestProgramMissingDeploymentRegistersNothing(t *testing.T) {
	program := jwtstack.NewProgram(jwtstack.Options{Now: func() time.Time { return today }, GetDeployment: fakeCluster(map[string][]string{}), GetOwner: noOwner})
	engine, err := mocks.Run(t, jwtstack.Project, "dev", nil, nil, program)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Deployment juwan/user-rpc not found")
	assert.Equal(t, []string{"deployed-state"}, engine.Names(), "only the read of the last deployment, no resource")
}

func TestProgramRegistersWithBackend(t *testing.T) {
	program := jwtstack.NewProgram(jwtstack.Options{Now: func() time.Time { return today }, GetDeployment: fakeCluster(backend), GetOwner: noOwner})
	engine, err := mocks.Run(t, jwtstack.Project, "dev", nil, nil, program)
	require.NoError(t, err)
	assert.Contains(t, engine.Names(), "consumer-envoy-gateway-patch")
}

// noOwner returns what a cluster without any of the objects returns.
func noOwner(context.Context, string, string, string) (string, bool, error) { return "", false, nil }

// ownedBy returns what a cluster returns whose objects of kind belong to stack.
func ownedBy(kind, stack string) jwtstack.OwnerGetter {
	return func(_ context.Context, k, _, _ string) (string, bool, error) {
		if k != kind {
			return "", false, nil
		}
		return stack, true, nil
	}
}

// handApplied returns what a cluster with a Secret from kubectl returns.
func handApplied(_ context.Context, kind, _, _ string) (string, bool, error) {
	return "", kind == "Secret", nil
}

func TestCheckSecretOwner(t *testing.T) {
	cfg, _, err := parse(t, "dev", nil)
	require.NoError(t, err)
	const self = "organization/juwan-jwt-secret/dev"
	assert.NoError(t, jwtstack.CheckOwners(context.Background(), &cfg, self, false, noOwner), "no objects yet")
	assert.NoError(t, jwtstack.CheckOwners(context.Background(), &cfg, self, true, ownedBy("Secret", self)))
	assert.NoError(t, jwtstack.CheckOwners(context.Background(), &cfg, self, true, handApplied), "deployed before the owner annotation existed")

	err = jwtstack.CheckOwners(context.Background(), &cfg, self, false, handApplied)
	require.Error(t, err, "a first up must not replace a hand-applied key")
	assert.Contains(t, err.Error(), "Secret juwan/jwt-secret already exists and was not created by this program")
	assert.Contains(t, err.Error(), "fix: go run ./cmd/jwtctl --stack dev migrate")

	cfg.HasLegacyKey = true
	assert.NoError(t, jwtstack.CheckOwners(context.Background(), &cfg, self, false, handApplied), "after migrate")

	// Any object of another stack is refused, not only the Secret: a
	// second stack with its own secretName would still share the Role,
	// the ServiceAccounts and the Deployments.
	for _, kind := range []string{"Secret", "Role", "ServiceAccount", "RoleBinding", "Deployment"} {
		err = jwtstack.CheckOwners(context.Background(), &cfg, self, true, ownedBy(kind, "organization/juwan-jwt-secret/local"))
		require.Error(t, err, kind)
		assert.Contains(t, err.Error(), kind+" juwan/")
		assert.Contains(t, err.Error(), "belongs to stack organization/juwan-jwt-secret/local")
		assert.Contains(t, err.Error(), "fix: run this stack against another cluster or namespace")
	}
}

func TestProgramRefusesAnotherStacksSecret(t *testing.T) {
	program := jwtstack.NewProgram(jwtstack.Options{Now: func() time.Time { return today },
		GetDeployment: fakeCluster(backend), GetOwner: ownedBy("Secret", "organization/juwan-jwt-secret/local")})
	engine, err := mocks.Run(t, jwtstack.Project, "dev", nil, nil, program)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "belongs to stack organization/juwan-jwt-secret/local")
	assert.Equal(t, []string{"deployed-state"}, engine.Names())
}

func TestProgramRecordsOwnerStack(t *testing.T) {
	program := jwtstack.NewProgram(jwtstack.Options{Now: func() time.Time { return today }, GetDeployment: fakeCluster(backend), GetOwner: noOwner})
	engine, err := mocks.Run(t, jwtstack.Project, "dev", nil, nil, program)
	require.NoError(t, err)
	secret, ok := engine.Resource("jwt-key-secret")
	require.True(t, ok)
	annotations := secret.Inputs["metadata"].ObjectValue()["annotations"].ObjectValue()
	assert.Equal(t, "organization/juwan-jwt-secret/dev", annotations["jwt.juwan.io/owner-stack"].StringValue())
}

func TestDriftFindsHandEdits(t *testing.T) {
	consumers := jwtstack.DefaultConsumers()
	mode := int32(0o400)
	patched := func() *appsv1.Deployment {
		d := &appsv1.Deployment{}
		d.Spec.Template.Spec.ServiceAccountName = "user-rpc"
		d.Spec.Template.Spec.Containers = []corev1.Container{{
			Name: "user-rpc",
			Env: []corev1.EnvVar{
				{Name: "LOG_LEVEL", Value: "info"},
				{Name: "JWT_SECRET_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "jwt-secret"}, Key: "secret-key"}}},
				{Name: "JWT_PREVIOUS_SECRET_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "jwt-secret"}, Key: "previous-secret-key"}}},
			},
		}}
		return d
	}

	consumers[0].Env.Next = ""
	changed, removed := jwtstack.Drift("jwt-secret", consumers[0], patched(), true)
	assert.Empty(t, changed, "the patched state is no drift")
	assert.Empty(t, removed, "the patched state is no drift")
	unpatched := &appsv1.Deployment{}
	unpatched.Spec.Template.Spec.Containers = []corev1.Container{{Name: "user-rpc"}}
	changed, removed = jwtstack.Drift("jwt-secret", consumers[0], unpatched, false)
	assert.Empty(t, changed)
	assert.Empty(t, removed, "before the first deployment nothing is missing")
	_, removed = jwtstack.Drift("jwt-secret", consumers[0], unpatched, true)
	assert.ElementsMatch(t, []string{
		"env JWT_SECRET_KEY of container user-rpc was removed",
		"env JWT_PREVIOUS_SECRET_KEY of container user-rpc was removed",
		"serviceAccountName was removed",
	}, removed, "after a deployment a missing field was removed by hand")

	edited := patched()
	edited.Spec.Template.Spec.Containers[0].Env[2].ValueFrom.SecretKeyRef.Key = "secret-key"
	edited.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager:  "kubectl-edit",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"user-rpc\"}":{"f:env":{"k:{\"name\":\"JWT_PREVIOUS_SECRET_KEY\"}":{".":{}}}}}}}}}`)},
	}}
	changed, _ = jwtstack.Drift("jwt-secret", consumers[0], edited, true)
	assert.Equal(t, []string{"env JWT_PREVIOUS_SECRET_KEY of container user-rpc no longer reads jwt-secret/previous-secret-key (set by field manager kubectl-edit)"}, changed)

	for _, account := range []string{"legacy-reader", "default"} {
		otherAccount := patched()
		otherAccount.Spec.Template.Spec.ServiceAccountName = account
		changed, _ = jwtstack.Drift("jwt-secret", consumers[0], otherAccount, true)
		assert.Equal(t, []string{"serviceAccountName is " + account + " instead of user-rpc"}, changed)
	}

	envoy := &appsv1.Deployment{}
	envoy.Spec.Template.Spec.ServiceAccountName = "envoy-gateway"
	envoy.Spec.Template.Spec.Containers = []corev1.Container{{Name: "envoy", VolumeMounts: []corev1.VolumeMount{{Name: "jwt-secret", MountPath: "/etc/jwt"}}}}
	envoy.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "jwt-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "jwt-secret", DefaultMode: &mode}}}}
	envoy.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager:  "kubectl-edit",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"envoy\"}":{"f:volumeMounts":{"k:{\"mountPath\":\"/etc/jwt\"}":{"f:readOnly":{}}}}}}}}}`)},
	}}
	changed, removed = jwtstack.Drift("jwt-secret", consumers[1], envoy, true)
	assert.Equal(t, []string{"mount /etc/jwt of container envoy is no longer volume jwt-secret, read-only, without subPath (set by field manager kubectl-edit)"},
		changed, "a mount made writable is drift")
	assert.Empty(t, removed)
}

func TestCheckConsumersDrift(t *testing.T) {
	edited := func(context.Context, string, string) (*appsv1.Deployment, error) {
		d := &appsv1.Deployment{}
		d.Spec.Template.Spec.ServiceAccountName = "legacy-reader"
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "user-rpc"}, {Name: "envoy"}}
		return d, nil
	}
	cfg, _, err := parse(t, "dev", nil)
	require.NoError(t, err)
	_, err = jwtstack.CheckConsumers(context.Background(), &cfg, false, edited)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Deployment juwan/user-rpc was changed outside this program: serviceAccountName is legacy-reader instead of user-rpc")
	assert.Contains(t, err.Error(), "set forceConflicts: true")

	cfg, _, err = parse(t, "dev", map[string]string{"consumers": `[{"deployment":"user-rpc","container":"user-rpc","env":{"current":"K"},"forceConflicts":true}]`})
	require.NoError(t, err)
	warnings, err := jwtstack.CheckConsumers(context.Background(), &cfg, false, edited)
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "up restores it")
	assert.NotEmpty(t, cfg.Consumers[0].Drift, "the drift reaches the patch, which is then applied again")
}
