package controlplane

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// secretboxKeySize is the key length that the apiserver's secretbox
// provider requires (XSalsa20-Poly1305).
const secretboxKeySize = 32

// secretboxKeyName is the key name in the EncryptionConfiguration. The
// apiserver writes it into every encrypted value, after the
// "k8s:enc:secretbox:v1:" prefix.
const secretboxKeyName = "local-key-1"

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so a reader never sees a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("unable to create a temporary file beside %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("unable to set mode %o on %s: %w", mode, tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("unable to write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("unable to write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("unable to move %s to %s: %w", tmp.Name(), path, err)
	}
	return nil
}

// loadOrCreateSecretboxKey returns the secretbox key stored at path, or
// generates a random one and stores it (mode 0600) when the file is missing.
// The key outlives restarts so that an etcd data folder written with it stays
// readable.
func loadOrCreateSecretboxKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, decodeErr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if decodeErr != nil || len(key) != secretboxKeySize {
			return nil, fmt.Errorf("unable to use the secretbox key in %s: expected %d bytes in base64; delete the file to generate a new key", path, secretboxKeySize)
		}
		return key, nil
	case errors.Is(err, fs.ErrNotExist):
		key := make([]byte, secretboxKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("unable to generate a secretbox key: %w", err)
		}
		encoded := base64.StdEncoding.EncodeToString(key) + "\n"
		if err := writeFileAtomic(path, []byte(encoded), 0o600); err != nil {
			return nil, err
		}
		return key, nil
	default:
		return nil, fmt.Errorf("unable to read the secretbox key %s: %w", path, err)
	}
}

// encryptionConfig returns an EncryptionConfiguration that writes Secrets
// with secretbox and still reads Secrets stored unencrypted (identity), as a
// cluster does while it migrates to encryption at rest.
func encryptionConfig(key []byte) []byte {
	return []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - secretbox:
          keys:
            - name: ` + secretboxKeyName + `
              secret: ` + base64.StdEncoding.EncodeToString(key) + `
      - identity: {}
`)
}

// auditPolicy is the apiserver's audit policy. The first matching rule wins,
// and a rule that lists both users and userGroups needs both to match, so the
// controllers' user names and their ServiceAccounts' group get a rule each.
// Secrets are logged at Metadata level only: the Request and RequestResponse
// levels would copy Secret data, and so the signing key, into the log. Reads
// by the controllers and kwok, health checks, Events and Leases are left out
// because they would bury the requests that a test looks for.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
  - RequestReceived
rules:
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets"]
  - level: None
    nonResourceURLs: ["*"]
  - level: None
    resources:
      - group: ""
        resources: ["events"]
      - group: events.k8s.io
        resources: ["events"]
      - group: coordination.k8s.io
        resources: ["leases"]
  - level: None
    users:
      - ` + controllerManagerUser + `
      - ` + schedulerUser + `
      - ` + kwokUser + `
    verbs: ["get", "list", "watch"]
  - level: None
    userGroups:
      - system:serviceaccounts:kube-system
    verbs: ["get", "list", "watch"]
  - level: Metadata
`

// writeServiceAccountKeys writes a new RSA key pair that the apiserver signs
// ServiceAccount tokens with and kube-controller-manager reads, and returns
// the paths of the private key and the public key.
func writeServiceAccountKeys(pkiDir string) (privatePath, publicPath string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("unable to generate the ServiceAccount signing key: %w", err)
	}
	privateDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("unable to encode the ServiceAccount signing key: %w", err)
	}
	publicDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("unable to encode the ServiceAccount public key: %w", err)
	}

	privatePath = filepath.Join(pkiDir, "service-account.key")
	publicPath = filepath.Join(pkiDir, "service-account.pub")
	privatePEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privateDER})
	publicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: publicDER})
	if err := writeFileAtomic(privatePath, privatePEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(publicPath, publicPEM, 0o644); err != nil {
		return "", "", err
	}
	return privatePath, publicPath, nil
}

// writeKubeconfig writes a kubeconfig (mode 0600) with the client
// certificate, the CA and the server of cfg.
func writeKubeconfig(path, user string, cfg *rest.Config) error {
	const name = "juwan-local"
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: bytes.Clone(cfg.CAData),
	}
	kubeconfig.AuthInfos[user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: bytes.Clone(cfg.CertData),
		ClientKeyData:         bytes.Clone(cfg.KeyData),
	}
	kubeconfig.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
	kubeconfig.CurrentContext = name

	data, err := clientcmd.Write(*kubeconfig)
	if err != nil {
		return fmt.Errorf("unable to encode the kubeconfig for %s: %w", user, err)
	}
	return writeFileAtomic(path, data, 0o600)
}
