package broker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rpcbench/rpcbench/internal/proc"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSSyncParam is the StartOptions.Params key that sets the NATS server's
// JetStream file-store sync: "default" (the server's periodic sync, every
// 2 minutes) or "always" (fsync after every stored message). It is a
// server-wide setting in NATS, not a stream setting, so brokers started with
// different values must be started under different Manager keys (e.g.
// "nats/sync-always").
const NATSSyncParam = "sync"

// NATSMaxPayload is the max_payload of every nats-server rpcbench starts
// itself (process and embedded sources): 8 MiB instead of the server's
// 1 MiB default, the largest value nats-server does not warn about
// (server.MAX_PAYLOAD_MAX_SIZE). It bounds a message's payload plus
// headers. The container source runs the official image with its default
// (1 MiB); an external server announces its own (nats.Conn.MaxPayload).
const NATSMaxPayload = 8 << 20

// natsReadyTimeout bounds how long a server may take to accept connections
// when ctx has no earlier deadline.
const natsReadyTimeout = 10 * time.Second

// natsSources are the values of RPCBENCH_NATS_SOURCE.
const (
	NATSSourceProcess   = "process"
	NATSSourceEmbedded  = "embedded"
	NATSSourceContainer = "container"
)

// NATS returns the run's NATS starter, chosen by RPCBENCH_NATS_SOURCE:
//   - "process" (default): a nats-server embedded in a child rpcbench
//     process (NATSProcess): its own process, scheduler and GC, still no
//     setup at all;
//   - "embedded": the same server inside the rpcbench process itself
//     (NATSEmbedded), sharing the load generator's CPU, scheduler and GC;
//   - "container": the official image (NATSContainer; the image must be
//     present or pullable).
func NATS() Starter {
	process, embedded, container := NATSProcess(), NATSEmbedded(), NATSContainer()
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		switch src := os.Getenv("RPCBENCH_NATS_SOURCE"); src {
		case "", NATSSourceProcess:
			return process(ctx, opts)
		case NATSSourceEmbedded:
			return embedded(ctx, opts)
		case NATSSourceContainer:
			return container(ctx, opts)
		default:
			return Broker{}, nil, fmt.Errorf("RPCBENCH_NATS_SOURCE=%q: want process, embedded or container", src)
		}
	}
}

// natsParams parses StartOptions.Params for the process and embedded
// sources: whether JetStream fsyncs every message.
func natsParams(params map[string]string) (syncAlways bool, err error) {
	for k, v := range params {
		switch {
		case k == NATSSyncParam && (v == "default" || v == ""):
		case k == NATSSyncParam && v == "always":
			syncAlways = true
		case k == NATSSyncParam:
			return false, fmt.Errorf("nats: broker param %s=%q: want default or always", k, v)
		default:
			return false, fmt.Errorf("nats: unknown broker param %q (want %s)", k, NATSSyncParam)
		}
	}
	return syncAlways, nil
}

// natsStore makes a fresh store directory under dir (a temporary directory
// when dir is empty): two brokers of one run (sync default and always)
// never share a store.
func natsStore(dir string) (string, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("nats: store directory: %w", err)
		}
	}
	store, err := os.MkdirTemp(dir, "nats-store-")
	if err != nil {
		return "", fmt.Errorf("nats: store directory: %w", err)
	}
	return store, nil
}

// natsServerOptions are the options of every server rpcbench runs itself:
// 127.0.0.1 on a random port, no signal handling, no logging, JetStream on
// with its store in store, max_payload NATSMaxPayload.
func natsServerOptions(store string, syncAlways bool) *server.Options {
	return &server.Options{
		ServerName: "rpcbench",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   store,
		SyncAlways: syncAlways,
		MaxPayload: NATSMaxPayload,
		// No HTTP monitoring, no cluster, no leafnodes: the defaults
		// (disabled) are what we want.
	}
}

// startNATSServer starts a server with opts and waits up to wait for it to
// accept connections with JetStream on.
func startNATSServer(opts *server.Options, wait time.Duration) (*server.Server, error) {
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("nats: server not ready after %v", wait)
	}
	if ns.JetStreamConfig() == nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("nats: server started without JetStream")
	}
	return ns, nil
}

// natsSyncDetail describes the server's JetStream sync setting.
func natsSyncDetail(ns *server.Server) string {
	jsc := ns.JetStreamConfig()
	if jsc.SyncAlways {
		return "always"
	}
	return "every " + jsc.SyncInterval.String()
}

func readyWait(ctx context.Context) time.Duration {
	wait := natsReadyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = max(time.Until(dl), time.Millisecond)
	}
	return wait
}

// NATSEmbedded returns a Starter that runs a nats-server inside this
// process (natsServerOptions, the store in a fresh directory under
// opts.Dir). The stop function shuts the server down and removes the store.
func NATSEmbedded() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		syncAlways, err := natsParams(opts.Params)
		if err != nil {
			return Broker{}, nil, err
		}
		if err := ctx.Err(); err != nil {
			return Broker{}, nil, err
		}
		store, err := natsStore(opts.Dir)
		if err != nil {
			return Broker{}, nil, err
		}
		started := time.Now()
		ns, err := startNATSServer(natsServerOptions(store, syncAlways), readyWait(ctx))
		if err == nil && ctx.Err() != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
			err = ctx.Err()
		}
		if err != nil {
			os.RemoveAll(store)
			return Broker{}, nil, err
		}
		b := Broker{
			Kind:    "nats",
			URL:     ns.ClientURL(),
			Source:  NATSSourceEmbedded,
			Version: server.VERSION,
			Details: map[string]string{
				"jetstream":      "enabled",
				"jetstream_sync": natsSyncDetail(ns),
				"max_payload":    strconv.Itoa(NATSMaxPayload),
				"store_dir":      store,
				"connection":     "tcp loopback (server inside the rpcbench process)",
				"startup":        time.Since(started).Round(time.Millisecond).String(),
			},
		}
		stop := func(ctx context.Context) error {
			done := make(chan struct{})
			go func() {
				ns.Shutdown()
				ns.WaitForShutdown()
				close(done)
			}()
			select {
			case <-done:
			case <-ctx.Done():
				return fmt.Errorf("nats: embedded server shutdown: %w", ctx.Err())
			}
			if err := os.RemoveAll(store); err != nil {
				return fmt.Errorf("nats: remove store: %w", err)
			}
			return nil
		}
		return b, stop, nil
	}
}

// ---- process source ----

// natsChildEnv, when set in a process's environment, makes that process
// (any binary that links this package: rpcbench, or a test binary) run as
// the nats-server of NATSProcess instead of doing what it normally does;
// the value is the child's JSON configuration (natsChildConfig).
const natsChildEnv = "RPCBENCH_NATS_CHILD"

type natsChildConfig struct {
	Store      string `json:"store"`
	SyncAlways bool   `json:"sync_always"`
	// Port is the port to listen on (0: a random one); a restart after a
	// fault takes the first start's.
	Port int `json:"port,omitempty"`
}

// natsChildReady is the one line the child prints on stdout once it
// accepts connections.
type natsChildReady struct {
	URL     string `json:"url"`
	Version string `json:"version"`
	Sync    string `json:"sync"`
	Error   string `json:"error,omitempty"`
}

func init() {
	if cfg, ok := os.LookupEnv(natsChildEnv); ok {
		os.Exit(runNATSChild(cfg))
	}
}

// runNATSChild is the child process of NATSProcess: it starts the server,
// reports its URL on stdout, and shuts it down on SIGTERM or when its stdin
// (a pipe from the parent) closes, i.e. the parent exited however it did.
// SIGINT is ignored: a Ctrl-C lets the parent stop the run first (the child
// also runs in its own process group, so a terminal's Ctrl-C does not reach
// it).
func runNATSChild(raw string) int {
	signal.Ignore(os.Interrupt)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	report := func(r natsChildReady) {
		line, _ := json.Marshal(r)
		os.Stdout.Write(append(line, '\n'))
	}
	var cfg natsChildConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		report(natsChildReady{Error: fmt.Sprintf("bad %s: %v", natsChildEnv, err)})
		return 2
	}
	opts := natsServerOptions(cfg.Store, cfg.SyncAlways)
	if cfg.Port > 0 {
		opts.Port = cfg.Port
	}
	ns, err := startNATSServer(opts, natsReadyTimeout)
	if err != nil {
		report(natsChildReady{Error: err.Error()})
		return 1
	}
	report(natsChildReady{URL: ns.ClientURL(), Version: server.VERSION, Sync: natsSyncDetail(ns)})
	parentGone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(parentGone)
	}()
	select {
	case <-term:
	case <-parentGone:
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	return 0
}

// natsStopGrace is how long a child server has to shut down after SIGTERM
// before it is killed.
const natsStopGrace = 3 * time.Second

// NATSProcess returns a Starter that runs the nats-server of NATSEmbedded in
// a child process: the running executable (os.Executable) re-executed with
// RPCBENCH_NATS_CHILD set, so the broker has its own process, scheduler and
// GC with no setup at all. The child runs in its own process group; it dies
// with rpcbench (SIGKILL via Pdeathsig, and it exits when its stdin pipe
// from rpcbench closes), and the stop function ends it (SIGTERM, SIGKILL
// after natsStopGrace) and removes the store.
func NATSProcess() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		syncAlways, err := natsParams(opts.Params)
		if err != nil {
			return Broker{}, nil, err
		}
		if err := ctx.Err(); err != nil {
			return Broker{}, nil, err
		}
		exe, err := os.Executable()
		if err != nil {
			return Broker{}, nil, fmt.Errorf("nats: cannot re-execute rpcbench as the broker process: %w", err)
		}
		store, err := natsStore(opts.Dir)
		if err != nil {
			return Broker{}, nil, err
		}
		started := time.Now()
		cfg := natsChildConfig{Store: store, SyncAlways: syncAlways}
		p, ready, err := startNATSChild(ctx, exe, cfg)
		if err != nil {
			os.RemoveAll(store)
			return Broker{}, nil, err
		}
		if u, err := url.Parse(ready.URL); err == nil {
			cfg.Port, _ = strconv.Atoi(u.Port())
		}
		ctl := &natsControl{exe: exe, cfg: cfg, p: p}
		b := Broker{
			Kind:    "nats",
			URL:     ready.URL,
			Source:  NATSSourceProcess,
			Version: ready.Version,
			CPU: func(context.Context) (time.Duration, error) {
				return proc.TreeCPU(ctl.current().cmd.Process.Pid)
			},
			PIDs: func(context.Context) ([]int, error) {
				return proc.TreePIDs(ctl.current().cmd.Process.Pid)
			},
			Control: ctl,
			Details: map[string]string{
				"jetstream":      "enabled",
				"jetstream_sync": ready.Sync,
				"max_payload":    strconv.Itoa(NATSMaxPayload),
				"store_dir":      store,
				"pid":            strconv.Itoa(p.cmd.Process.Pid),
				"connection":     "tcp loopback (server in a child rpcbench process)",
				"startup":        time.Since(started).Round(time.Millisecond).String(),
			},
		}
		var once sync.Once
		var stopErr error
		stop := func(ctx context.Context) error {
			once.Do(func() {
				stopErr = ctl.current().stop(ctx)
				if rerr := os.RemoveAll(store); rerr != nil && stopErr == nil {
					stopErr = fmt.Errorf("nats: remove store: %w", rerr)
				}
				natsLive.Delete(p)
			})
			return stopErr
		}
		natsLive.Store(p, stop)
		return b, stop, nil
	}
}

// natsLive maps every running child server (*natsProc) to its stop
// function.
var natsLive sync.Map

// StopNATSProcesses stops every nats-server child process this process
// started and has not stopped yet, and removes their stores: for an exit
// that skips the normal clean-up (a second Ctrl-C). The children would die
// with this process anyway (Pdeathsig, stdin); this also removes the
// stores.
func StopNATSProcesses(ctx context.Context) error {
	var errs []error
	natsLive.Range(func(_, v any) bool {
		if err := v.(func(context.Context) error)(ctx); err != nil {
			errs = append(errs, err)
		}
		return true
	})
	return errors.Join(errs...)
}

// natsProc is a running child server.
type natsProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *proc.Tail
	exited chan struct{}
	once   sync.Once
	err    error
}

func startNATSChild(ctx context.Context, exe string, cfg natsChildConfig) (*natsProc, natsChildReady, error) {
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), natsChildEnv+"="+string(raw))
	cmd.Dir = os.TempDir()
	p := &natsProc{cmd: cmd, stderr: &proc.Tail{Max: 4 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, natsChildReady{}, fmt.Errorf("nats: broker process: %w", err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, natsChildReady{}, fmt.Errorf("nats: broker process: %w", err)
	}
	if err := startTied(cmd, p.exited); err != nil {
		return nil, natsChildReady{}, fmt.Errorf("nats: start broker process %s: %w", exe, err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, r)
	}()
	fail := func(err error) (*natsProc, natsChildReady, error) {
		p.kill()
		if s := strings.TrimSpace(p.stderr.String()); s != "" {
			err = fmt.Errorf("%w\n--- broker process stderr ---\n%s", err, s)
		}
		return nil, natsChildReady{}, err
	}
	wait := time.NewTimer(readyWait(ctx) + time.Second)
	defer wait.Stop()
	var line string
	select {
	case line = <-lines:
	case <-wait.C:
		return fail(errors.New("nats: broker process not ready in time"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	var ready natsChildReady
	if err := json.Unmarshal([]byte(line), &ready); err != nil || (ready.URL == "" && ready.Error == "") {
		return fail(fmt.Errorf("nats: broker process %s did not start a server (first line %q): is it rpcbench?", exe, strings.TrimSpace(line)))
	}
	if ready.Error != "" {
		return fail(fmt.Errorf("nats: broker process: %s", ready.Error))
	}
	return p, ready, nil
}

// natsControl does faults to a child server: the restarted child serves
// the same port and store.
type natsControl struct {
	exe string
	cfg natsChildConfig
	mu  sync.Mutex
	p   *natsProc
}

func (c *natsControl) current() *natsProc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p
}

func (c *natsControl) Kill(context.Context) error {
	c.current().kill()
	return nil
}

func (c *natsControl) Stop(ctx context.Context) error { return c.current().stop(ctx) }

func (c *natsControl) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.p.exited:
	default:
		return errors.New("nats: broker process is still running")
	}
	p, _, err := startNATSChild(ctx, c.exe, c.cfg)
	if err != nil {
		return err
	}
	c.p = p
	return nil
}

func (c *natsControl) Pause(context.Context) error {
	return syscall.Kill(-c.current().cmd.Process.Pid, syscall.SIGSTOP)
}

func (c *natsControl) Resume(context.Context) error {
	return syscall.Kill(-c.current().cmd.Process.Pid, syscall.SIGCONT)
}

// kill ends the child at once and waits for it.
func (p *natsProc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.stdin.Close()
	<-p.exited
}

// stop asks the child to shut down (SIGTERM), kills it after natsStopGrace
// or when ctx ends, and waits for it.
func (p *natsProc) stop(ctx context.Context) error {
	p.once.Do(func() {
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
		grace := time.NewTimer(natsStopGrace)
		defer grace.Stop()
		select {
		case <-p.exited:
		case <-grace.C:
			p.err = fmt.Errorf("nats: broker process did not stop within %v of SIGTERM: killed", natsStopGrace)
		case <-ctx.Done():
			p.err = fmt.Errorf("nats: broker process stop: %w: killed", ctx.Err())
		}
		p.kill()
	})
	return p.err
}

// ---- container source ----

// NATSOfficialImage is the image of the container source.
const NATSOfficialImage = "nats:2.10"

// NATSContainer starts the official nats image through the container
// lifecycle: host networking, a free port on 127.0.0.1, JetStream on with
// its store inside the container. JetStream's sync=always is a config-file
// setting there, so only sync=default is offered.
func NATSContainer() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		for k, v := range opts.Params {
			if k != NATSSyncParam || (v != "" && v != "default") {
				return Broker{}, nil, &Unavailable{Reason: fmt.Sprintf("the nats container source supports only sync=default (got %s=%s); use the embedded source", k, v)}
			}
		}
		ports, err := FreePorts(1)
		if err != nil {
			return Broker{}, nil, err
		}
		port := strconv.Itoa(ports[0])
		c, err := StartContainer(ctx, ContainerSpec{
			Kind: "nats",
			Images: []Image{{Name: NATSOfficialImage,
				Cmd: []string{"-a", Host, "-p", port, "-js", "-sd", "/tmp/nats-js"}}},
			Ports:       ports,
			ReadyLog:    "Server is ready",
			ReadyPorts:  ports,
			StopTimeout: 2 * time.Second,
		})
		if err != nil {
			return Broker{}, nil, err
		}
		b := Broker{Kind: "nats", URL: "nats://" + c.Endpoint(ports[0]), Source: "container", Image: c.Image, CPU: c.CPU, PIDs: c.PIDs, Control: c.Control(ports),
			Details: map[string]string{"jetstream_sync": "default", "max_payload": strconv.Itoa(server.MAX_PAYLOAD_SIZE), "network": string(c.Network)}}
		return b, c.Stop, nil
	}
}
