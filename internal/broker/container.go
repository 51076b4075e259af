package broker

// Containers: a generic testcontainers-go starter every broker kind uses.
//
// A broker kind describes its container with a ContainerSpec and calls
// StartContainer; it gets back a running *Container (or an error carrying
// the broker's last log lines) and turns it into a Broker plus the
// container's Stop as the stop function. For example (RabbitMQ does this,
// in rabbitmq.go):
//
//	ports, err := broker.FreePorts(3)          // AMQP, distribution, epmd
//	if err != nil { ... }
//	c, err := broker.StartContainer(ctx, broker.ContainerSpec{
//		Kind:   "rabbitmq",
//		Images: []broker.Image{{Name: "rabbitmq:3.13"},
//			{Name: "rpcbench.local/rabbitmq:3.10", Local: true, Cmd: []string{"/usr/lib/rabbitmq/bin/rabbitmq-server"}}},
//		Env:        map[string]string{"RABBITMQ_NODE_PORT": strconv.Itoa(ports[0]), ...},
//		Ports:      ports,
//		ReadyLog:   "Server startup complete",
//		ReadyPorts: ports[:1],
//	})
//	if err != nil { return broker.Broker{}, nil, err }
//	return broker.Broker{Kind: "rabbitmq", URL: "amqp://guest:guest@" + c.Endpoint(ports[0]) + "/"}, c.Stop, nil
//
// The rest lives next to this file: the Docker engine check and the
// testcontainers-go settings in docker.go, the choice of image in image.go,
// labels and the removal of containers in cleanup.go, free ports and port
// waits in ports.go.

import (
	"bufio"
	"bytes"
	"context"
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
	"github.com/rpcbench/rpcbench/internal/proc"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

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

// CPU is the CPU time the container's processes have used (its init's
// process tree on the host).
func (c *Container) CPU(ctx context.Context) (time.Duration, error) {
	st, err := c.ctr.State(ctx)
	if err != nil {
		return 0, err
	}
	if st.Pid <= 0 {
		return 0, fmt.Errorf("container %.12s is not running", c.ID)
	}
	return proc.TreeCPU(st.Pid)
}

// PIDs are the container's processes (its init's process tree on the host).
func (c *Container) PIDs(ctx context.Context) ([]int, error) {
	st, err := c.ctr.State(ctx)
	if err != nil {
		return nil, err
	}
	if st.Pid <= 0 {
		return nil, fmt.Errorf("container %.12s is not running", c.ID)
	}
	return proc.TreePIDs(st.Pid)
}

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
