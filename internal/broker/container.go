package broker

// Containers: a generic testcontainers-go starter every broker kind uses.
//
// A broker kind describes its container with a ContainerSpec and calls
// StartContainer; it gets back a running *Container (or an error carrying
// the broker's last log lines) and turns it into a Broker plus the
// container's Stop as the stop function. For example, a two-process broker
// such as RocketMQ starts two containers on host networking with ports it
// picked itself:
//
//	ports, err := broker.FreePorts(3)          // namesrv, broker, +spare
//	if err != nil { ... }
//	ns, err := broker.StartContainer(ctx, broker.ContainerSpec{
//		Kind:   "rocketmq-namesrv",
//		Images: []broker.Image{{Name: "apache/rocketmq:5.3.1", Cmd: []string{"sh", "mqnamesrv"}},
//			{Name: "rpcbench.local/rocketmq:5.3", Cmd: []string{"/opt/rocketmq/bin/namesrv"}}},
//		Env:      map[string]string{"JAVA_OPT_EXT": "-Xmx256m"},
//		Ports:    []int{ports[0]},
//		ReadyLog: "The Name Server boot success",
//	})
//	if err != nil { return broker.Broker{}, nil, err }
//	bk, err := broker.StartContainer(ctx, broker.ContainerSpec{Kind: "rocketmq-broker", ..., Ports: ports[1:2],
//		ReadyLog: "boot success"})
//	if err != nil { ns.Stop(context.WithoutCancel(ctx)); return ... }
//	stop := func(ctx context.Context) error { return errors.Join(bk.Stop(ctx), ns.Stop(ctx)) }
//
// Settings this project's machines need, applied by StartContainer to the
// process environment before the first testcontainers-go call when they are
// unset (see /work/shared/notes/environment.md):
//   - TESTCONTAINERS_RYUK_DISABLED=true: the reaper image cannot be pulled
//     without a registry. Containers are removed by rpcbench instead: every
//     container is labelled (LabelKey=1, LabelRun=<RunID>, LabelKind=<kind>)
//     and removed by Container.Stop, on a start error, on ctx cancellation
//     during start, and by StopAll (for a signal handler). RemoveLabelled
//     removes leftovers of a run that was killed.
//   - TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1: /.dockerenv makes
//     testcontainers resolve the host to the default gateway; every endpoint
//     here is 127.0.0.1 anyway.
//
// Docker API versions: the moby client used by testcontainers-go v0.44.0
// negotiates down to the engine's version (Debian's 20.10 engine speaks API
// 1.41; the client supports 1.40 and later), so DOCKER_API_VERSION is not
// needed. Setting it pins the version and turns negotiation off.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Labels put on every container rpcbench starts.
const (
	// LabelKey=1 marks a container as rpcbench's.
	LabelKey = "rpcbench"
	// LabelRun holds the RunID of the process that started it.
	LabelRun = "rpcbench.run"
	// LabelKind holds the ContainerSpec.Kind.
	LabelKind = "rpcbench.kind"
	// LabelKeep=1 marks containers left running on purpose (rpcbench
	// brokers up); RemoveLabelled skips them unless asked.
	LabelKeep = "rpcbench.keep"
)

// NoEngineReason is the skip reason when no Docker engine answers.
const NoEngineReason = "skipped: no Docker engine; run `make brokers` (installs Docker and builds the images), or use --broker KIND=URL"

// NetworkMode says how a broker container is reached.
type NetworkMode string

const (
	// HostNetwork runs the container in the host's network namespace; the
	// broker listens on 127.0.0.1 on ports rpcbench chose free. The default
	// and the CI setting: no traffic to container bridge addresses.
	HostNetwork NetworkMode = "host"
	// MappedPorts runs the container on Docker's bridge and publishes each
	// port on 127.0.0.1 under the same number, so a broker that advertises
	// its own address (RocketMQ's brokerIP1:listenPort) stays reachable.
	MappedPorts NetworkMode = "mapped"
)

// NetworkFromEnv returns the mode named by RPCBENCH_BROKER_NETWORK ("host"
// or "mapped"), HostNetwork when it is unset.
func NetworkFromEnv() (NetworkMode, error) {
	return ParseNetworkMode(os.Getenv("RPCBENCH_BROKER_NETWORK"))
}

// ParseNetworkMode parses "host" or "mapped" ("" means host).
func ParseNetworkMode(s string) (NetworkMode, error) {
	switch NetworkMode(s) {
	case "", HostNetwork:
		return HostNetwork, nil
	case MappedPorts:
		return MappedPorts, nil
	}
	return "", fmt.Errorf("broker network %q: want host or mapped", s)
}

// Image is one candidate image and how to run it.
type Image struct {
	Name string
	// Local marks an image built on this machine (docker/build-images.sh):
	// never pulled.
	Local bool
	// Entrypoint and Cmd override the image's when not nil.
	Entrypoint []string
	Cmd        []string
	// Env is added to ContainerSpec.Env (and wins over it).
	Env map[string]string
}

// ContainerSpec describes one broker container.
type ContainerSpec struct {
	// Kind names the container in labels and messages ("rabbitmq").
	Kind string
	// Images are tried in order: the first present locally or (unless
	// Local) pullable within PullTimeout is run.
	Images []Image
	// Env is the process environment (per-image Env wins).
	Env map[string]string
	// Ports are the TCP ports the broker listens on, chosen free on the host
	// by the caller (FreePorts). In HostNetwork mode the broker must listen
	// on them on 127.0.0.1; in MappedPorts mode they are published on
	// 127.0.0.1 under the same numbers. Endpoint(port) gives the address.
	Ports []int
	// Network is the networking mode; "" means HostNetwork.
	Network NetworkMode
	// ReadyLog is a line (substring) the broker logs once it serves.
	ReadyLog string
	// ReadyPorts are dialled from the host (127.0.0.1) after ReadyLog until
	// they accept connections.
	ReadyPorts []int
	// StartTimeout bounds the wait for readiness (default 2 minutes).
	StartTimeout time.Duration
	// StopTimeout is the grace period given to the broker on Stop before it
	// is killed (default 5 s).
	StopTimeout time.Duration
	// PullTimeout bounds one image pull (default 60 s); negative disables
	// pulling (also RPCBENCH_NO_PULL=1).
	PullTimeout time.Duration
	// Labels are added to the standard ones.
	Labels map[string]string
	// Keep marks the container with LabelKeep (left running on purpose).
	Keep bool
	// Init runs a tiny init as PID 1 so signals reach the broker.
	Init bool
	// Tmpfs mounts (path -> options) inside the container.
	Tmpfs map[string]string
	// Logger receives testcontainers-go's progress lines; nil discards
	// them unless RPCBENCH_TC_LOG=1.
	Logger tclog.Logger
	// LogLines is how many of the broker's last log lines a start error
	// carries (default 30).
	LogLines int
}

// Container is a running broker container.
type Container struct {
	ID      string
	Name    string
	Image   string
	Kind    string
	Network NetworkMode

	ctr      *testcontainers.DockerContainer
	stopWait time.Duration
	once     sync.Once
	stopErr  error
}

// Host is the address every broker is reached at.
const Host = "127.0.0.1"

// Endpoint returns "127.0.0.1:port" for one of ContainerSpec.Ports.
func (c *Container) Endpoint(port int) string {
	return net.JoinHostPort(Host, strconv.Itoa(port))
}

// Logs returns the container's last n log lines (stdout and stderr).
func (c *Container) Logs(ctx context.Context, n int) (string, error) {
	return tailLogs(ctx, c.ctr, n)
}

// Kill kills the broker process without removing the container (tests use
// it to lose the broker mid-run). Stop still removes it.
func (c *Container) Kill(ctx context.Context) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.ContainerKill(ctx, c.ID, client.ContainerKillOptions{Signal: "KILL"})
	return err
}

// Restart starts the container again after Kill (tests use it to bring a
// lost broker back on the same ports).
func (c *Container) Restart(ctx context.Context) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{})
	return err
}

// Stop stops and removes the container; safe to call more than once and
// from several goroutines. It does not give up when ctx is already done:
// removal runs with ctx's values but its own 30 s bound.
func (c *Container) Stop(ctx context.Context) error {
	c.once.Do(func() {
		c.stopErr = terminate(ctx, c.ctr, c.stopWait)
		live.remove(c)
	})
	return c.stopErr
}

func terminate(ctx context.Context, ctr *testcontainers.DockerContainer, grace time.Duration) error {
	if ctr == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+30*time.Second)
	defer cancel()
	err := ctr.Terminate(ctx, testcontainers.StopTimeout(grace))
	if err != nil && isGone(err) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("remove container %.12s: %w", ctr.GetContainerID(), err)
	}
	return nil
}

func isGone(err error) bool {
	s := err.Error()
	return strings.Contains(s, "No such container") || strings.Contains(s, "is already in progress") || strings.Contains(s, "not found")
}

// RunID identifies this process's containers (label LabelRun):
// RPCBENCH_RUN_ID when set (tests use it to find the containers of a
// child rpcbench), else random.
var RunID = runIDFromEnv()

func runIDFromEnv() string {
	if id := os.Getenv("RPCBENCH_RUN_ID"); id != "" {
		return id
	}
	return newRunID()
}

func newRunID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b[:])
}

// liveSet tracks the containers this process started and has not removed.
type liveSet struct {
	mu sync.Mutex
	m  map[*Container]struct{}
}

var live = &liveSet{m: map[*Container]struct{}{}}

func (s *liveSet) add(c *Container) {
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *liveSet) remove(c *Container) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// StopAll removes every container this process started and has not removed
// yet, except those started with Keep. Call it from a signal handler or a
// deferred cleanup in main so Ctrl-C leaves nothing behind.
func StopAll(ctx context.Context) error {
	live.mu.Lock()
	var cs []*Container
	for c := range live.m {
		cs = append(cs, c)
	}
	live.mu.Unlock()
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Stop(ctx))
	}
	return errors.Join(errs...)
}

// RemoveLabelled removes containers labelled LabelKey=1 (all runs when
// runID is empty), skipping LabelKeep ones unless withKept. It returns how
// many it removed.
func RemoveLabelled(ctx context.Context, runID string, withKept bool) (int, error) {
	ids, err := ListLabelled(ctx, runID, withKept)
	if err != nil {
		return 0, err
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	var errs []error
	n := 0
	for _, id := range ids {
		if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isGone(err) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// ListLabelled lists the IDs of containers (running or not) labelled
// LabelKey=1, of one run if runID is not empty, skipping LabelKeep ones
// unless withKept.
func ListLabelled(ctx context.Context, runID string, withKept bool) ([]string, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	f := client.Filters{}
	f = f.Add("label", LabelKey+"=1")
	if runID != "" {
		f = f.Add("label", LabelRun+"="+runID)
	}
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range res.Items {
		if !withKept && c.Labels[LabelKeep] == "1" {
			continue
		}
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// ContainerRunning reports whether the container id exists and runs.
func ContainerRunning(ctx context.Context, id string) (bool, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return false, err
	}
	defer cli.Close()
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if isGone(err) {
			return false, nil
		}
		return false, err
	}
	return res.Container.State != nil && res.Container.State.Running, nil
}

// RemoveContainer force-removes container id (gone is not an error).
func RemoveContainer(ctx context.Context, id string) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isGone(err) {
		return err
	}
	return nil
}

// dockerClient is a plain moby client (DOCKER_HOST or the default socket,
// API version negotiated). It does not go through testcontainers' host
// discovery, which caches its first answer for the whole process.
func dockerClient(_ context.Context) (*client.Client, error) {
	return client.New(client.FromEnv)
}

// engineCheckTimeout bounds CheckEngine.
const engineCheckTimeout = 5 * time.Second

// CheckEngine returns nil when a Docker engine answers within a few
// seconds, else an *Unavailable with NoEngineReason (and the cause).
func CheckEngine(ctx context.Context) error {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			return &Unavailable{Reason: NoEngineReason}
		}
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return &Unavailable{Reason: NoEngineReason + " (" + err.Error() + ")"}
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, engineCheckTimeout)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return &Unavailable{Reason: NoEngineReason}
	}
	return nil
}

// tcEnvOnce applies the testcontainers settings before its first use.
var tcEnvOnce sync.Once

// The settings are applied when the package loads, so that no
// testcontainers call anywhere in the process can come first (it reads
// them once).
func init() { SetTestcontainersEnv() }

// SetTestcontainersEnv sets TESTCONTAINERS_RYUK_DISABLED=true and
// TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 in the process environment when
// they are unset, and silences testcontainers' default logger unless
// RPCBENCH_TC_LOG=1. testcontainers-go reads them once per process, so this
// runs before the first testcontainers call (StartContainer calls it).
func SetTestcontainersEnv() {
	tcEnvOnce.Do(func() {
		for k, v := range map[string]string{
			"TESTCONTAINERS_RYUK_DISABLED": "true",
			"TESTCONTAINERS_HOST_OVERRIDE": Host,
		} {
			if _, ok := os.LookupEnv(k); !ok {
				os.Setenv(k, v)
			}
		}
		// testcontainers-go prints a banner to its default logger on the
		// first connection; keep rpcbench's output clean.
		if os.Getenv("RPCBENCH_TC_LOG") != "1" {
			tclog.SetDefault(tclog.NewNoopLogger())
		}
	})
}

// FreePorts returns n distinct TCP ports free on 127.0.0.1 right now.
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	for len(out) < n {
		l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// pullFailed remembers images that could not be pulled in this process.
var pullFailed sync.Map

// chooseImage returns the first candidate present or pullable.
func chooseImage(ctx context.Context, spec *ContainerSpec) (Image, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return Image{}, err
	}
	defer cli.Close()
	pullTimeout := spec.PullTimeout
	if pullTimeout == 0 {
		pullTimeout = 60 * time.Second
	}
	noPull := pullTimeout < 0 || os.Getenv("RPCBENCH_NO_PULL") == "1"
	var tried []string
	// First pass: what is present; second pass: pull.
	for _, im := range spec.Images {
		if _, err := cli.ImageInspect(ctx, im.Name); err == nil {
			return im, nil
		}
	}
	for _, im := range spec.Images {
		if im.Local || noPull {
			tried = append(tried, im.Name+" (absent)")
			continue
		}
		if v, ok := pullFailed.Load(im.Name); ok {
			tried = append(tried, im.Name+" ("+v.(string)+")")
			continue
		}
		if err := pull(ctx, cli, im.Name, pullTimeout); err != nil {
			if ctx.Err() != nil {
				return Image{}, ctx.Err()
			}
			msg := firstLine(err.Error())
			pullFailed.Store(im.Name, msg)
			tried = append(tried, im.Name+" (pull: "+msg+")")
			continue
		}
		return im, nil
	}
	return Image{}, &Unavailable{Reason: fmt.Sprintf("skipped: no %s image: tried %s; run `make brokers` (installs Docker and builds the images), or use --broker", spec.Kind, strings.Join(tried, ", "))}
}

func pull(ctx context.Context, cli *client.Client, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rc, err := cli.ImagePull(ctx, name, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := rc.Wait(ctx); err != nil {
		return err
	}
	// A pull can end without error but without the image.
	if _, err := cli.ImageInspect(ctx, name); err != nil {
		return err
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// StartContainer starts the container spec describes and waits until it is
// ready. It checks the Docker engine first (an *Unavailable within seconds
// when none answers). On any failure, including ctx ending, the container is
// removed and the error carries the broker's last log lines.
func StartContainer(ctx context.Context, spec ContainerSpec) (*Container, error) {
	if err := CheckEngine(ctx); err != nil {
		return nil, err
	}
	SetTestcontainersEnv()
	if spec.Network == "" {
		spec.Network = HostNetwork
	}
	if spec.StartTimeout <= 0 {
		spec.StartTimeout = 2 * time.Minute
	}
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = 5 * time.Second
	}
	if spec.LogLines <= 0 {
		spec.LogLines = 30
	}
	if len(spec.Images) == 0 {
		return nil, fmt.Errorf("%s: no image candidates", spec.Kind)
	}
	im, err := chooseImage(ctx, &spec)
	if err != nil {
		return nil, err
	}

	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	for k, v := range im.Env {
		env[k] = v
	}
	labels := map[string]string{LabelKey: "1", LabelRun: RunID, LabelKind: spec.Kind}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	if spec.Keep {
		labels[LabelKeep] = "1"
	}
	exposed := make([]string, 0, len(spec.Ports))
	for _, p := range spec.Ports {
		exposed = append(exposed, strconv.Itoa(p)+"/tcp")
	}
	name := fmt.Sprintf("rpcbench-%s-%s-%s", sanitize(spec.Kind), RunID, newRunID()[:6])
	stopSecs := int(spec.StopTimeout / time.Second)
	if stopSecs < 1 {
		stopSecs = 1
	}
	logger := spec.Logger
	if logger == nil {
		logger = tclog.NewNoopLogger()
		if os.Getenv("RPCBENCH_TC_LOG") == "1" {
			logger = tclog.Default()
		}
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(logger),
		testcontainers.WithName(name),
		testcontainers.WithEnv(env),
		testcontainers.WithLabels(labels),
		testcontainers.WithExposedPorts(exposed...),
		testcontainers.WithConfigModifier(func(c *container.Config) {
			c.StopTimeout = &stopSecs
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			if spec.Init {
				t := true
				hc.Init = &t
			}
			if len(spec.Tmpfs) > 0 {
				hc.Tmpfs = spec.Tmpfs
			}
			if spec.Network == HostNetwork {
				hc.NetworkMode = "host"
				return
			}
			hc.PortBindings = network.PortMap{}
			for _, p := range spec.Ports {
				hc.PortBindings[network.MustParsePort(strconv.Itoa(p)+"/tcp")] = []network.PortBinding{{
					HostIP: netip.MustParseAddr(Host), HostPort: strconv.Itoa(p),
				}}
			}
		}),
	}
	if im.Entrypoint != nil {
		opts = append(opts, testcontainers.WithEntrypoint(im.Entrypoint...))
	}
	if im.Cmd != nil {
		opts = append(opts, testcontainers.WithCmd(im.Cmd...))
	}
	if spec.ReadyLog != "" {
		opts = append(opts, testcontainers.WithWaitStrategyAndDeadline(spec.StartTimeout,
			wait.ForLog(spec.ReadyLog).WithStartupTimeout(spec.StartTimeout).WithPollInterval(100*time.Millisecond)))
	} else {
		opts = append(opts, testcontainers.WithWaitStrategy())
	}

	// Start with a context that ctx's cancellation reaches, but remove the
	// container with one it does not.
	ctr, err := testcontainers.Run(ctx, im.Name, opts...)
	if ctr == nil && err != nil {
		// Creation may have got as far as a container before failing.
		removeByName(context.WithoutCancel(ctx), name)
		return nil, fmt.Errorf("start %s (%s): %w", spec.Kind, im.Name, err)
	}
	c := &Container{ID: ctr.GetContainerID(), Name: name, Image: im.Name, Kind: spec.Kind, Network: spec.Network, ctr: ctr, stopWait: spec.StopTimeout}
	live.add(c)
	if err == nil {
		err = waitPorts(ctx, spec.ReadyPorts, spec.StartTimeout)
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		logs, _ := tailLogs(context.WithoutCancel(ctx), ctr, spec.LogLines)
		stopErr := c.Stop(ctx)
		msg := fmt.Sprintf("start %s (%s): %v", spec.Kind, im.Name, err)
		if logs != "" {
			msg += "\n--- last " + strconv.Itoa(spec.LogLines) + " log lines of " + spec.Kind + " ---\n" + logs
		}
		return nil, errors.Join(&startError{msg: msg, err: err}, stopErr)
	}
	return c, nil
}

type startError struct {
	msg string
	err error
}

func (e *startError) Error() string { return e.msg }
func (e *startError) Unwrap() error { return e.err }

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func removeByName(ctx context.Context, name string) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
}

// waitPorts dials each port on 127.0.0.1 until it accepts or the timeout.
func waitPorts(ctx context.Context, ports []int, timeout time.Duration) error {
	if len(ports) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for _, p := range ports {
		addr := net.JoinHostPort(Host, strconv.Itoa(p))
		for {
			dctx, dcancel := context.WithTimeout(ctx, time.Second)
			conn, err := d.DialContext(dctx, "tcp", addr)
			dcancel()
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("port %s not accepting connections: %w", addr, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// tailLogs returns the last n lines the container wrote.
func tailLogs(ctx context.Context, ctr *testcontainers.DockerContainer, n int) (string, error) {
	if ctr == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	ring := make([]string, 0, n)
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := string(bytes.TrimRight(sc.Bytes(), "\r"))
		if len(ring) == n {
			copy(ring, ring[1:])
			ring = ring[:n-1]
		}
		ring = append(ring, line)
	}
	return strings.Join(ring, "\n"), sc.Err()
}
