package controlplane

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ReadEtcdValue returns the raw value stored under key in the etcd at
// etcdURL, bypassing the apiserver, for example key
// /registry/secrets/juwan/jwt-secret. With encryption at rest on, a Secret's
// value starts with "k8s:enc:secretbox:v1:" and the key name.
func ReadEtcdValue(ctx context.Context, etcdURL, key string) ([]byte, error) {
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{etcdURL},
		DialTimeout: 5 * time.Second,
		// The client's default logger writes retries to stderr, which
		// would clutter test output.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("unable to connect to etcd at %s: %w", etcdURL, err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	response, err := client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("unable to read key %s from etcd at %s: %w", key, etcdURL, err)
	}
	if len(response.Kvs) == 0 {
		return nil, fmt.Errorf("unable to read key %s from etcd at %s: key not found; check the object exists (keys have the form /registry/<resource>/<namespace>/<name>)", key, etcdURL)
	}
	return response.Kvs[0].Value, nil
}
