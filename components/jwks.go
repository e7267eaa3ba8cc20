package components

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// JSONWebKey is one symmetric key of a JWK Set (RFC 7517), in the form
// Envoy's jwt_authn filter and most JWT libraries read for HS256.
type JSONWebKey struct {
	KeyType   string `json:"kty"`
	Algorithm string `json:"alg"`
	Use       string `json:"use"`
	KeyID     string `json:"kid"`
	Key       string `json:"k"`
}

// JSONWebKeySet is a JWK Set document.
type JSONWebKeySet struct {
	Keys []JSONWebKey `json:"keys"`
}

// VersionedKey is a key with the generation that identifies it.
type VersionedKey struct {
	KeyID  string
	Secret string
}

// BuildJWKS encodes keys as a JWK Set with one "oct" HS256 key each. The key
// ID is the generation, so a token's "kid" header names the key that signed
// it. The "k" member is the unpadded base64url encoding of the key bytes
// (RFC 7518 section 6.4.1).
func BuildJWKS(keys []VersionedKey) (string, error) {
	set := JSONWebKeySet{Keys: make([]JSONWebKey, 0, len(keys))}
	for _, key := range keys {
		if key.Secret == "" {
			return "", fmt.Errorf("unable to build JWKS: key %q is empty", key.KeyID)
		}
		set.Keys = append(set.Keys, JSONWebKey{
			KeyType:   "oct",
			Algorithm: "HS256",
			Use:       "sig",
			KeyID:     key.KeyID,
			Key:       base64.RawURLEncoding.EncodeToString([]byte(key.Secret)),
		})
	}

	encoded, err := json.Marshal(set)
	if err != nil {
		return "", fmt.Errorf("unable to encode JWKS: %w", err)
	}
	return string(encoded), nil
}
