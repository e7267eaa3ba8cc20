// Package controlplane runs a throwaway Kubernetes control plane on the
// loopback interface: etcd and kube-apiserver through controller-runtime's
// envtest, plus kube-controller-manager, kube-scheduler and kwok as child
// processes, with two kwok-simulated Nodes so that Deployments roll out and
// become Available. Every server listens on 127.0.0.1 only.
//
// The apiserver runs with RBAC authorization, the ServiceAccount admission
// plugin, Secrets encrypted at rest with secretbox, and an audit log that
// records Secret requests at Metadata level.
//
// The binaries come from a tools folder built by tools/build.sh:
// kube-apiserver, kube-controller-manager and kube-scheduler v1.37.2, etcd
// v3.7.0 and kwok v0.8.0, and kwok's stage definitions.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configures Start.
type Options struct {
	// ToolsDir is the folder with bin/ and kwok-stages/, for example
	// <repo>/.tools.
	ToolsDir string
	// StateDir is the folder for the kubeconfig, audit log, encryption
	// config, keys, etcd data and logs. Start creates it if it is missing.
	StateDir string
	// Log receives progress lines for a person. Nil discards them.
	Log io.Writer
}

// Cluster is a running control plane started by Start.
type Cluster struct {
	// Kubeconfig is the path of an admin kubeconfig file in StateDir.
	Kubeconfig string
	// RESTConfig authenticates as the admin user (group system:masters).
	RESTConfig *rest.Config
	// AuditLogPath is the apiserver's audit log file (JSON lines).
	AuditLogPath string
	// EtcdURL is the client URL of etcd on 127.0.0.1, for raw reads with
	// ReadEtcdValue.
	EtcdURL string
	// APIServerURL is the apiserver's URL on 127.0.0.1.
	APIServerURL string
	// StateDir is Options.StateDir as an absolute path.
	StateDir string
	// LogDir contains one log file per process: etcd.log,
	// kube-apiserver.log, kube-controller-manager.log, kube-scheduler.log and
	// kwok.log.
	LogDir string

	controlPlane *envtest.ControlPlane
	// envtestPIDs are the pids of the etcd and kube-apiserver processes that
	// envtest started, checked after Stop.
	envtestPIDs []int
	children    []*childProcess

	controllerManagerHealthURL string
	schedulerHealthURL         string
	lock                       *stateLock
	logOutput                  io.Writer
	startedAt                  time.Time

	stopOnce sync.Once
	stopErr  error
}

const (
	// startTimeout bounds Start. Measured on a 2-core machine, kube-apiserver
	// v1.37.2 is healthy in 5 to 15 s and the kwok Nodes are Ready a few
	// seconds later.
	startTimeout = 90 * time.Second
	// childStopGrace is how long a child process gets between SIGTERM and
	// SIGKILL.
	childStopGrace = 5 * time.Second
	// envtestStopTimeout is how long envtest waits for etcd and
	// kube-apiserver, each, between SIGTERM and SIGKILL.
	envtestStopTimeout = 10 * time.Second

	// Users that the components authenticate as. The controller-manager and
	// scheduler names are the ones that Kubernetes' bootstrap RBAC policy
	// binds to their roles.
	adminUser             = "admin"
	controllerManagerUser = "system:kube-controller-manager"
	schedulerUser         = "system:kube-scheduler"
	kwokUser              = "kwok-controller"

	// podCIDR is the range kwok takes pod IPs from. The IPs only appear in
	// pod status: no kube-proxy or network plugin runs, so nothing ever
	// connects to them.
	podCIDR = "10.244.0.0/16"
)

// binaries lists the files in ToolsDir/bin that Start runs.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// kwokStages lists the stage files in ToolsDir/kwok-stages that kwok runs
// with: Nodes become Ready and send heartbeats, and Pods become Running and
// Ready, complete and are deleted.
var kwokStages = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat/node-heartbeat.yaml",
	"pod/fast/pod-ready.yaml",
	"pod/fast/pod-complete.yaml",
	"pod/fast/pod-delete.yaml",
}

// paths contains the files and folders of one cluster.
type paths struct {
	stateDir         string
	binDir           string
	stagesDir        string
	logDir           string
	pkiDir           string
	etcdDataDir      string
	kubeconfigDir    string
	adminKubeconfig  string
	auditLog         string
	auditPolicy      string
	encryptionConfig string
	secretboxKey     string
	rootCA           string
}

func newPaths(toolsDir, stateDir string) paths {
	return paths{
		stateDir:         stateDir,
		binDir:           filepath.Join(toolsDir, "bin"),
		stagesDir:        filepath.Join(toolsDir, "kwok-stages"),
		logDir:           filepath.Join(stateDir, "logs"),
		pkiDir:           filepath.Join(stateDir, "pki"),
		etcdDataDir:      filepath.Join(stateDir, "etcd-data"),
		kubeconfigDir:    filepath.Join(stateDir, "kubeconfigs"),
		adminKubeconfig:  filepath.Join(stateDir, "kubeconfig"),
		auditLog:         filepath.Join(stateDir, "audit.log"),
		auditPolicy:      filepath.Join(stateDir, "audit-policy.yaml"),
		encryptionConfig: filepath.Join(stateDir, "encryption-config.yaml"),
		secretboxKey:     filepath.Join(stateDir, "pki", "secretbox.key"),
		rootCA:           filepath.Join(stateDir, "pki", "ca.crt"),
	}
}

func (p paths) logFile(name string) string {
	return filepath.Join(p.logDir, name+".log")
}

// Start starts a new, empty cluster from StateDir and returns once the
// apiserver, kube-controller-manager, kube-scheduler and both kwok Nodes are
// healthy, or fails within about 90 s naming what did not come up and the
// log to read. The cluster is fresh on every start: etcd data from an
// earlier run is deleted, while the secretbox key in StateDir is kept.
// Processes that a killed earlier run left behind in the same StateDir are
// ended first. Only one cluster can run from a StateDir at a time.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.ToolsDir == "" {
		return nil, errors.New("unable to start the control plane: Options.ToolsDir is empty; set it to the folder that tools/build.sh fills, for example <repo>/.tools")
	}
	if opts.StateDir == "" {
		return nil, errors.New("unable to start the control plane: Options.StateDir is empty; set it to a folder for the cluster's files")
	}
	toolsDir, err := filepath.Abs(opts.ToolsDir)
	if err != nil {
		return nil, fmt.Errorf("unable to resolve tools folder %q: %w", opts.ToolsDir, err)
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("unable to resolve state folder %q: %w", opts.StateDir, err)
	}
	p := newPaths(toolsDir, stateDir)
	if err := checkTools(p); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	logOutput := opts.Log
	if logOutput == nil {
		logOutput = io.Discard
	}
	c := &Cluster{
		Kubeconfig:   p.adminKubeconfig,
		AuditLogPath: p.auditLog,
		StateDir:     stateDir,
		LogDir:       p.logDir,
		logOutput:    logOutput,
		startedAt:    time.Now(),
	}

	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("unable to create state folder %s: %w", stateDir, err)
	}
	c.lock, err = lockStateDir(stateDir)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			if stopErr := c.Stop(); stopErr != nil {
				c.logf("cleanup after the failed start: %v", stopErr)
			}
		}
	}()

	if err := killLeftoverProcesses(stateDir, c.logf); err != nil {
		return nil, err
	}
	if err := prepareStateDir(p); err != nil {
		return nil, err
	}

	c.logf("starting etcd and kube-apiserver from %s", p.binDir)
	if err := c.startAPIServer(ctx, p); err != nil {
		return nil, err
	}
	c.logf("kube-apiserver is healthy at %s", c.APIServerURL)

	if err := c.startComponents(ctx, p); err != nil {
		return nil, err
	}
	if err := c.waitHealthy(ctx, p); err != nil {
		return nil, err
	}

	started = true
	c.logf("cluster ready, kubeconfig %s", c.Kubeconfig)
	return c, nil
}

// checkTools returns an error that lists every binary or stage file missing
// from the tools folder.
func checkTools(p paths) error {
	var missing []string
	for _, name := range binaries {
		path := filepath.Join(p.binDir, name)
		if info, err := os.Stat(path); err != nil || info.IsDir() {
			missing = append(missing, path)
		}
	}
	for _, stage := range kwokStages {
		path := filepath.Join(p.stagesDir, stage)
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, path)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("unable to start the control plane: missing %v; run tools/build.sh to build them", missing)
	}
	return nil
}

// prepareStateDir deletes the etcd data, kubeconfigs and audit log of an
// earlier run and writes this run's encryption config and audit policy.
// The secretbox key is kept. Log files are truncated when each process
// starts.
func prepareStateDir(p paths) error {
	for _, path := range []string{p.etcdDataDir, p.kubeconfigDir, p.auditLog, p.adminKubeconfig} {
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("unable to delete %s from an earlier run: %w", path, err)
		}
	}
	for _, dir := range []string{p.logDir, p.pkiDir, p.etcdDataDir, p.kubeconfigDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("unable to create %s: %w", dir, err)
		}
	}

	key, err := loadOrCreateSecretboxKey(p.secretboxKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(p.encryptionConfig, encryptionConfig(key), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(p.auditPolicy, []byte(auditPolicy), 0o600)
}

// startAPIServer starts etcd and kube-apiserver through envtest and writes
// the admin kubeconfig.
func (c *Cluster) startAPIServer(ctx context.Context, p paths) error {
	ports, err := freeLoopbackPorts(3)
	if err != nil {
		return err
	}
	etcdURL := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	etcdPeerURL := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}

	serviceAccountKey, serviceAccountPublicKey, err := writeServiceAccountKeys(p.pkiDir)
	if err != nil {
		return err
	}

	etcdLog, err := os.OpenFile(p.logFile("etcd"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("unable to create the etcd log file: %w", err)
	}
	defer etcdLog.Close()
	apiServerLog, err := os.OpenFile(p.logFile("kube-apiserver"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("unable to create the kube-apiserver log file: %w", err)
	}
	defer apiServerLog.Close()

	// The two start timeouts add up to what is left of the Start budget,
	// because envtest's start cannot be interrupted. The binary paths are
	// set explicitly, so KUBEBUILDER_ASSETS or TEST_ASSET_* variables in the
	// environment cannot swap in other versions.
	remaining := time.Until(deadlineOf(ctx))
	etcdStartTimeout := min(20*time.Second, remaining/3)
	controlPlane := &envtest.ControlPlane{
		Etcd: &envtest.Etcd{
			Path:         filepath.Join(p.binDir, "etcd"),
			URL:          etcdURL,
			DataDir:      p.etcdDataDir,
			StartTimeout: etcdStartTimeout,
			StopTimeout:  envtestStopTimeout,
			Out:          etcdLog,
			Err:          etcdLog,
		},
		APIServer: &envtest.APIServer{
			Path: filepath.Join(p.binDir, "kube-apiserver"),
			SecureServing: envtest.SecureServing{
				ListenAddr: envtest.ListenAddr{Address: "127.0.0.1", Port: strconv.Itoa(ports[2])},
			},
			StartTimeout: remaining - etcdStartTimeout,
			StopTimeout:  envtestStopTimeout,
			Out:          apiServerLog,
			Err:          apiServerLog,
		},
	}
	// envtest's etcd would take its peer port from a lookup of
	// "localhost", which may resolve to ::1. Pin it to 127.0.0.1.
	controlPlane.Etcd.Configure().Set("listen-peer-urls", etcdPeerURL.String())
	configureAPIServer(controlPlane.APIServer.Configure(), p, serviceAccountKey, serviceAccountPublicKey)

	err = controlPlane.Start()
	if err == nil {
		err = ctx.Err()
	}
	c.controlPlane = controlPlane
	// The pids are recorded even after a failed start: envtest stops what
	// it started then, and Stop checks that they are gone.
	c.recordEnvtestProcesses(p)
	if err != nil {
		return fmt.Errorf("unable to start etcd and kube-apiserver: %w; read %s and %s, which ends with:\n%s", err, p.logFile("etcd"), p.logFile("kube-apiserver"), LastLines(p.logFile("kube-apiserver"), 5))
	}

	c.EtcdURL = etcdURL.String()
	c.APIServerURL = controlPlane.APIServer.SecureServing.URL("https", "/").String()
	if err := writeFileAtomic(p.rootCA, controlPlane.APIServer.SecureServing.CA, 0o644); err != nil {
		return err
	}

	admin, err := controlPlane.AddUser(envtest.User{Name: adminUser, Groups: []string{"system:masters"}}, &rest.Config{QPS: 50, Burst: 100})
	if err != nil {
		return fmt.Errorf("unable to provision the admin user: %w", err)
	}
	c.RESTConfig = admin.Config()
	return writeKubeconfig(p.adminKubeconfig, adminUser, c.RESTConfig)
}

// configureAPIServer sets the kube-apiserver flags on top of envtest's
// defaults. envtest already binds the secure port to SecureServing.Address
// (127.0.0.1) and sets --service-cluster-ip-range=10.0.0.0/24.
func configureAPIServer(args *envtest.Arguments, p paths, serviceAccountKey, serviceAccountPublicKey string) {
	// envtest defaults to RBAC too. Setting it here keeps it even if that
	// default changes, because the tests prove RBAC denials.
	args.Set("authorization-mode", "RBAC")
	// envtest disables the ServiceAccount admission plugin because it runs
	// no controller-manager. This cluster runs one, so the plugin is back
	// on, as in a real cluster: a pod that names a missing ServiceAccount
	// is rejected, and pods get a projected token volume.
	args.Disable("disable-admission-plugins")
	// Without an advertise address the apiserver would publish the host's
	// default interface address in the endpoints of the "kubernetes"
	// Service. The endpoint reconciler rejects loopback addresses, so it is
	// off: no pod here talks to the apiserver through that Service.
	args.Set("advertise-address", "127.0.0.1")
	args.Set("endpoint-reconciler-type", "none")
	args.Set("encryption-provider-config", p.encryptionConfig)
	args.Set("audit-policy-file", p.auditPolicy)
	args.Set("audit-log-path", p.auditLog)
	// envtest writes its own signing key into a temporary folder that it
	// does not expose. A key pair in StateDir lets kube-controller-manager
	// read the same key.
	args.Set("service-account-key-file", serviceAccountPublicKey)
	args.Set("service-account-signing-key-file", serviceAccountKey)
}

// recordEnvtestProcesses finds the etcd and kube-apiserver processes that
// envtest started and records them for Stop and for killLeftoverProcesses.
func (c *Cluster) recordEnvtestProcesses(p paths) {
	for _, name := range []string{"etcd", "kube-apiserver"} {
		pids, err := childPIDsOf(filepath.Join(p.binDir, name), p.stateDir)
		if err != nil {
			c.logf("unable to find the %s process: %v", name, err)
			continue
		}
		for _, pid := range pids {
			c.envtestPIDs = append(c.envtestPIDs, pid)
			if err := recordProcess(p.stateDir, name, pid); err != nil {
				c.logf("%v", err)
			}
		}
	}
}

// Stop stops kwok, kube-scheduler and kube-controller-manager (SIGTERM,
// then SIGKILL after 5 s), then kube-apiserver and etcd through envtest,
// checks that no process is left, deletes the etcd data and releases
// StateDir. It returns within 35 s: 10 s for the children, 10 s each for
// kube-apiserver and etcd, and 5 s for the final check. It usually takes
// about 1 s. Calling it again returns the first result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.stopErr = c.stop()
	})
	return c.stopErr
}

func (c *Cluster) stop() error {
	begin := time.Now()
	var errs []error

	// The children stop together, so the total wait is one grace period.
	var wg sync.WaitGroup
	childErrs := make([]error, len(c.children))
	for i, child := range c.children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			childErrs[i] = child.stop(childStopGrace)
		}()
	}
	wg.Wait()
	errs = append(errs, childErrs...)

	if c.controlPlane != nil {
		if err := c.controlPlane.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("unable to stop etcd and kube-apiserver cleanly: %w", err))
		}
	}

	// envtest returns after SIGKILL without waiting for the process to go.
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range c.envtestPIDs {
		for processExists(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if processExists(pid) {
			errs = append(errs, fmt.Errorf("unable to stop process %d (etcd or kube-apiserver): it is still running; end it with kill -9 %d", pid, pid))
		}
	}

	err := errors.Join(errs...)
	if err == nil && c.StateDir != "" {
		// Nothing is left running, so the record of processes for the next
		// Start is no longer needed, and neither is the etcd data.
		for _, path := range []string{filepath.Join(c.StateDir, processesFileName), filepath.Join(c.StateDir, "etcd-data")} {
			if removeErr := os.RemoveAll(path); removeErr != nil && !errors.Is(removeErr, fs.ErrNotExist) {
				err = fmt.Errorf("unable to delete %s: %w", path, removeErr)
			}
		}
	}
	c.lock.release()
	c.logf("control plane stopped in %.1f s", time.Since(begin).Seconds())
	return err
}

func (c *Cluster) logf(format string, args ...any) {
	elapsed := time.Since(c.startedAt).Seconds()
	fmt.Fprintf(c.logOutput, "controlplane [%6.1fs] %s\n", elapsed, fmt.Sprintf(format, args...))
}

// freeLoopbackPorts returns n distinct TCP ports that are free on 127.0.0.1.
// All listeners stay open until every port is chosen, so the ports differ.
// Another process may still take a port before the server that it is meant
// for binds it.
func freeLoopbackPorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, listener := range listeners {
			listener.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		listener, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("unable to find a free port on 127.0.0.1: %w", err)
		}
		listeners = append(listeners, listener)
		ports = append(ports, listener.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func deadlineOf(ctx context.Context) time.Time {
	if deadline, ok := ctx.Deadline(); ok {
		return deadline
	}
	return time.Now().Add(startTimeout)
}

// LastLines returns the last n lines of the file at path, for error
// messages, or a note when the file cannot be read.
func LastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(unable to read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
