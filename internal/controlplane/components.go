package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// startComponents writes a kubeconfig per component and starts
// kube-controller-manager, kube-scheduler and kwok, then creates the fake
// Nodes.
func (c *Cluster) startComponents(ctx context.Context, p paths) error {
	ports, err := freeLoopbackPorts(2)
	if err != nil {
		return err
	}
	controllerManagerPort, schedulerPort := ports[0], ports[1]

	controllerManagerKubeconfig, err := c.writeUserKubeconfig(p, "kube-controller-manager", envtest.User{Name: controllerManagerUser})
	if err != nil {
		return err
	}
	schedulerKubeconfig, err := c.writeUserKubeconfig(p, "kube-scheduler", envtest.User{Name: schedulerUser})
	if err != nil {
		return err
	}
	// kwok plays the kubelet of every fake Node and updates Node and Pod
	// status across namespaces, so it gets admin rights instead of a role
	// of its own.
	kwokKubeconfig, err := c.writeUserKubeconfig(p, "kwok", envtest.User{Name: kwokUser, Groups: []string{"system:masters"}})
	if err != nil {
		return err
	}

	controllerManagerArgs := []string{
		"--kubeconfig=" + controllerManagerKubeconfig,
		"--authentication-kubeconfig=" + controllerManagerKubeconfig,
		"--authorization-kubeconfig=" + controllerManagerKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(controllerManagerPort),
		"--leader-elect=false",
		// Every controller that is on by default: deployment, replicaset,
		// namespace, serviceaccount, serviceaccount-token, garbage
		// collector, node lifecycle, root CA publisher and the rest.
		"--controllers=*",
		// Each controller gets its own ServiceAccount token, as in a
		// kubeadm cluster, so it acts with the rights of its bootstrap
		// role and not of a superuser.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + filepath.Join(p.pkiDir, "service-account.key"),
		"--root-ca-file=" + p.rootCA,
		"--v=2",
	}
	schedulerArgs := []string{
		"--kubeconfig=" + schedulerKubeconfig,
		"--authentication-kubeconfig=" + schedulerKubeconfig,
		"--authorization-kubeconfig=" + schedulerKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(schedulerPort),
		"--leader-elect=false",
		"--v=2",
	}
	kwokArgs := []string{
		"--kubeconfig=" + kwokKubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=" + kwokNodeAnnotationValue,
		// Nodes report 127.0.0.1, so a kubectl logs or exec that the
		// apiserver forwards to a "kubelet" stays on this machine.
		"--node-ip=127.0.0.1",
		"--cidr=" + podCIDR,
		// kwok's HTTP server (kubelet API and metrics) stays off. With a
		// node port and no server address it would listen on 0.0.0.0.
		"--server-address=",
		"--node-port=0",
		// kwok renews a Lease per Node every 10 s. The heartbeat stage
		// updates Node status only every 20 to 45 s, close to the
		// controller-manager's 50 s grace period, after which it would mark
		// the Nodes and their pods not ready.
		"--node-lease-duration-seconds=40",
	}
	for _, stage := range kwokStages {
		kwokArgs = append(kwokArgs, "--config="+filepath.Join(p.stagesDir, stage))
	}

	// kwok also reads ~/.kwok/kwok.yaml when it exists. A home folder of
	// its own keeps a person's kwok settings out of this cluster.
	kwokHome := filepath.Join(p.stateDir, "kwok-home")
	if err := os.MkdirAll(kwokHome, 0o700); err != nil {
		return fmt.Errorf("unable to create %s: %w", kwokHome, err)
	}

	starts := []struct {
		name string
		args []string
		env  []string
	}{
		{name: "kube-controller-manager", args: controllerManagerArgs},
		{name: "kube-scheduler", args: schedulerArgs},
		{name: "kwok", args: kwokArgs, env: []string{"HOME=" + kwokHome}},
	}
	for _, start := range starts {
		child, err := startChild(start.name, filepath.Join(p.binDir, start.name), start.args, start.env, p.logFile(start.name))
		if err != nil {
			return err
		}
		c.children = append(c.children, child)
		if err := recordProcess(p.stateDir, start.name, child.pid()); err != nil {
			return err
		}
		c.logf("started %s (pid %d), log %s", start.name, child.pid(), child.logPath)
	}
	c.controllerManagerHealthURL = fmt.Sprintf("https://127.0.0.1:%d/healthz", controllerManagerPort)
	c.schedulerHealthURL = fmt.Sprintf("https://127.0.0.1:%d/healthz", schedulerPort)

	clientset, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("unable to create a Kubernetes client: %w", err)
	}
	if err := createFakeNodes(ctx, clientset); err != nil {
		return err
	}
	c.logf("created fake nodes %s", strings.Join(FakeNodeNames, ", "))
	return nil
}

// writeUserKubeconfig provisions user with a client certificate and writes
// a kubeconfig for it into StateDir/kubeconfigs.
func (c *Cluster) writeUserKubeconfig(p paths, component string, user envtest.User) (string, error) {
	authenticated, err := c.controlPlane.AddUser(user, nil)
	if err != nil {
		return "", fmt.Errorf("unable to provision user %s for %s: %w", user.Name, component, err)
	}
	path := filepath.Join(p.kubeconfigDir, component+".kubeconfig")
	if err := writeKubeconfig(path, user.Name, authenticated.Config()); err != nil {
		return "", err
	}
	return path, nil
}

// waitHealthy waits until kube-controller-manager and kube-scheduler pass
// their health checks, the controller-manager has created the default
// ServiceAccount, and both fake Nodes are Ready.
func (c *Cluster) waitHealthy(ctx context.Context, p paths) error {
	clientset, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("unable to create a Kubernetes client: %w", err)
	}
	controllerManager, scheduler, kwok := c.children[0], c.children[1], c.children[2]

	err = c.waitFor(ctx, "kube-controller-manager health check "+c.controllerManagerHealthURL, controllerManager, func(ctx context.Context) error {
		return checkHealthz(ctx, c.controllerManagerHealthURL)
	})
	if err != nil {
		return err
	}
	err = c.waitFor(ctx, "kube-scheduler health check "+c.schedulerHealthURL, scheduler, func(ctx context.Context) error {
		return checkHealthz(ctx, c.schedulerHealthURL)
	})
	if err != nil {
		return err
	}
	// The serviceaccount controller creates "default" in every namespace.
	// Pods need it, because the ServiceAccount admission plugin rejects a
	// pod whose ServiceAccount does not exist.
	err = c.waitFor(ctx, "ServiceAccount default/default from kube-controller-manager", controllerManager, func(ctx context.Context) error {
		_, err := clientset.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("not created yet")
		}
		return err
	})
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "kwok nodes "+strings.Join(FakeNodeNames, ", ")+" to be Ready", kwok, func(ctx context.Context) error {
		notReady, err := nodesNotReady(ctx, clientset)
		if err != nil {
			return err
		}
		if len(notReady) > 0 {
			return fmt.Errorf("not Ready: %s", strings.Join(notReady, ", "))
		}
		return nil
	})
}

// waitFor polls check every 250 ms until it returns nil. It fails when ctx
// ends or process exits, with the last check error and the log to read.
func (c *Cluster) waitFor(ctx context.Context, what string, process *childProcess, check func(context.Context) error) error {
	begin := time.Now()
	var lastErr error
	for {
		checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lastErr = check(checkCtx)
		cancel()
		if lastErr == nil {
			c.logf("ready: %s (%.1f s)", what, time.Since(begin).Seconds())
			return nil
		}
		if err := process.exitError(); err != nil {
			return fmt.Errorf("unable to start the control plane: %s never became ready because %w; the log ends with:\n%s", what, err, LastLines(process.logPath, 5))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("unable to start the control plane: timed out waiting for %s (last error: %v); read %s", what, lastErr, process.logPath)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// healthClient checks the health endpoints of kube-controller-manager and
// kube-scheduler on 127.0.0.1. They serve a self-signed certificate made at
// startup, which there is no CA file to verify against.
var healthClient = &http.Client{
	Timeout: 5 * time.Second,
	Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health check of a child process
		Proxy:           nil,
	},
}

func checkHealthz(ctx context.Context, url string) error {
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	response, err := healthClient.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", response.StatusCode)
	}
	return nil
}
