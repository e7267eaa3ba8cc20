package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIsProductionStack(t *testing.T) {
	for _, stack := range []string{"prod", "production", "prod-eu", "prod-2"} {
		assert.True(t, IsProductionStack(stack), "stack %q", stack)
	}
	for _, stack := range []string{"dev", "local", "staging", "preprod", "prod_eu", "production-eu", "Prod", ""} {
		assert.False(t, IsProductionStack(stack), "stack %q", stack)
	}
}

func TestProtectedInProductionProgramResources(t *testing.T) {
	for _, r := range programResources {
		t.Run(r.name, func(t *testing.T) {
			res := engineResource(t, r.typeToken, r.name, fixture(t, r.file), true)
			assert.Empty(t, validate(t, NewProtectedInProductionPolicy("prod"), res))
		})
	}
}

func TestProtectedInProductionUnprotected(t *testing.T) {
	cases := []struct {
		name      string
		stack     string
		typeToken string
		props     string
		want      []string
	}{
		{
			name:      "Secret on prod",
			stack:     "prod",
			typeToken: "kubernetes:core/v1:Secret",
			props:     fixture(t, "secret-jwt-secret.json"),
			want: []string{`Secret juwan/jwt-secret (Pulumi resource "key") is not protected, and stack "prod" is a ` +
				`production stack. Fix: run ` + "`pulumi config set juwan-jwt-secret:protect true --stack prod`" +
				` (or pass pulumi.Protect(true) to the resource), then preview again.`},
		},
		{
			name:      "RandomPassword on prod-eu",
			stack:     "prod-eu",
			typeToken: "random:index/randomPassword:RandomPassword",
			props:     fixture(t, "random-password-slot-0.json"),
			want: []string{`RandomPassword (Pulumi resource "key") is not protected, and stack "prod-eu" is a ` +
				`production stack. Fix: run ` + "`pulumi config set juwan-jwt-secret:protect true --stack prod-eu`" +
				` (or pass pulumi.Protect(true) to the resource), then preview again.`},
		},
		{
			name:      "SecretPatch on production",
			stack:     "production",
			typeToken: "kubernetes:core/v1:SecretPatch",
			props:     `{"metadata": {"name": "jwt-secret", "namespace": "juwan"}, "stringData": {"extra": "x"}}`,
			want: []string{`SecretPatch juwan/jwt-secret (Pulumi resource "key") is not protected, and stack ` +
				`"production" is a production stack. Fix: run ` +
				"`pulumi config set juwan-jwt-secret:protect true --stack production`" +
				` (or pass pulumi.Protect(true) to the resource), then preview again.`},
		},
		{
			name:      "Secret on dev",
			stack:     "dev",
			typeToken: "kubernetes:core/v1:Secret",
			props:     fixture(t, "secret-jwt-secret.json"),
		},
		{
			name:      "ConfigMap on prod",
			stack:     "prod",
			typeToken: "kubernetes:core/v1:ConfigMap",
			props:     `{"metadata": {"name": "settings", "namespace": "juwan"}, "data": {"LOG_LEVEL": "info"}}`,
		},
		{
			name:      "Role on prod",
			stack:     "prod",
			typeToken: roleType,
			props:     fixture(t, "role-jwt-secret-reader.json"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := engineResource(t, tc.typeToken, "key", tc.props, false)
			assert.Equal(t, tc.want, validate(t, NewProtectedInProductionPolicy(tc.stack), res))
		})
	}
}
