package broker

// RocketMQ: a single-node name server + broker on 127.0.0.1, from one of two
// sources that run the same script (docker/rocketmq/run.sh) with the same
// jars (docker/rocketmq/pom.xml, 5.3.x from Maven Central):
//   - container (the default when a Docker engine answers and the image
//     exists): the local image rpcbench.local/rocketmq:<version> built by
//     docker/rocketmq/build.sh (`make images`), host networking;
//   - process: the script run directly with the jars in docker/rocketmq/lib,
//     for machines where Docker cannot run.
// Free ports are chosen here: the name server's, and a broker listenPort L
// with L-2 (fast channel) and L+1 (HA) free as well. Ready = the broker's
// "boot success" line (printed after it registered with the name server),
// then the name server lists the broker and routes the reply topic.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rpcbench/rpcbench/internal/rmqadmin"
)

// RocketMQ versions and images.
const (
	// RocketMQVersion is the broker version docker/rocketmq fetches and builds.
	RocketMQVersion = "5.3.3"
	// RocketMQLocalImage is the image docker/rocketmq/build.sh builds.
	RocketMQLocalImage = "rpcbench.local/rocketmq:" + RocketMQVersion
	// RocketMQCluster is the cluster name run.sh configures; the broker
	// creates the reply topic <cluster>_REPLY_TOPIC.
	RocketMQCluster = "DefaultCluster"
)

// RocketMQ sources.
const (
	RocketMQSourceAuto      = "auto"
	RocketMQSourceContainer = "container"
	RocketMQSourceProcess   = "process"
)

// rocketMQParams are the StartOptions.Params the starter accepts.
var rocketMQParams = map[string]string{
	"flush":   "ASYNC_FLUSH (default) or SYNC_FLUSH: the broker's flushDiskType",
	"source":  "auto (default; RPCBENCH_ROCKETMQ_SOURCE), container or process",
	"network": "host (default) or mapped, for the container source",
	"keep":    "true labels the container to be kept (rpcbench brokers up)",
}

// RocketMQ returns the RocketMQ starter. StartOptions.Params:
//   - "flush": "ASYNC_FLUSH" (default) or "SYNC_FLUSH";
//   - "source": "auto" (default, or RPCBENCH_ROCKETMQ_SOURCE), "container"
//     or "process". auto picks the container when a Docker engine answers
//     and the image exists, else the local processes when java and the
//     jars are here, else the broker is Unavailable;
//   - "network": "host" (default) or "mapped" (container source);
//   - "keep": "true" (container source, rpcbench brokers up).
//
// The Broker's URL is the name server, "127.0.0.1:PORT"; Details record the
// flush mode, the JVM and its options, the broker address, the source and
// the startup time.
func RocketMQ() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		r, err := StartRocketMQ(ctx, opts)
		if err != nil {
			return Broker{}, nil, err
		}
		return r.Broker, r.Stop, nil
	}
}

// RocketMQBroker is a running RocketMQ (tests kill and restart it).
type RocketMQBroker struct {
	Broker
	// Namesrv and BrokerAddr are the name server's and broker's addresses.
	Namesrv, BrokerAddr string
	// Startup is how long the start took, from the call to ready.
	Startup time.Duration
	// Container is set for the container source.
	Container *Container
	proc      *rocketProc
}

// Stop stops the broker and removes everything it started.
func (r *RocketMQBroker) Stop(ctx context.Context) error {
	if r.Container != nil {
		return r.Container.Stop(ctx)
	}
	return r.proc.stop(ctx)
}

// Kill kills the name server and broker at once, leaving the ports dead
// (Stop still cleans up).
func (r *RocketMQBroker) Kill(ctx context.Context) error {
	if r.Container != nil {
		return r.Container.Kill(ctx)
	}
	return r.proc.kill()
}

// Pause freezes the broker (SIGSTOP, or `docker pause`) so that it accepts
// connections and answers nothing; Resume thaws it.
func (r *RocketMQBroker) Pause(ctx context.Context) error {
	if r.Container != nil {
		return exec.CommandContext(ctx, "docker", "pause", r.Container.ID).Run()
	}
	return r.proc.signal(syscall.SIGSTOP)
}

// Resume undoes Pause.
func (r *RocketMQBroker) Resume(ctx context.Context) error {
	if r.Container != nil {
		return exec.CommandContext(ctx, "docker", "unpause", r.Container.ID).Run()
	}
	return r.proc.signal(syscall.SIGCONT)
}

// LogTail returns the last n lines of the broker's own log
// (logs/rocketmqlogs/broker.log in its run directory), for test failures.
func (r *RocketMQBroker) LogTail(ctx context.Context, n int) string {
	const rel = "logs/rocketmqlogs/broker.log"
	if r.Container != nil {
		out, err := exec.CommandContext(ctx, "docker", "exec", r.Container.ID, "tail", "-n", strconv.Itoa(n), "/tmp/rocketmq/"+rel).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("(no broker log: %v: %s)", err, out)
		}
		return string(out)
	}
	b, err := os.ReadFile(filepath.Join(r.proc.dir, rel))
	if err != nil {
		return fmt.Sprintf("(no broker log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartRocketMQ starts a RocketMQ broker from the source opts ask for.
func StartRocketMQ(ctx context.Context, opts StartOptions) (*RocketMQBroker, error) {
	for k := range opts.Params {
		if _, ok := rocketMQParams[k]; !ok {
			return nil, fmt.Errorf("rocketmq: unknown broker param %q (want flush, source, network or keep)", k)
		}
	}
	flush := opts.Params["flush"]
	if flush == "" {
		flush = "ASYNC_FLUSH"
	}
	if flush != "ASYNC_FLUSH" && flush != "SYNC_FLUSH" {
		return nil, fmt.Errorf("rocketmq: flush=%q: want ASYNC_FLUSH or SYNC_FLUSH", flush)
	}
	source := opts.Params["source"]
	if source == "" {
		source = os.Getenv("RPCBENCH_ROCKETMQ_SOURCE")
	}
	switch source {
	case "", RocketMQSourceAuto:
		source = chooseRocketMQSource(ctx)
	case RocketMQSourceContainer, RocketMQSourceProcess:
	default:
		return nil, fmt.Errorf("rocketmq: source %q: want auto, container or process", source)
	}
	switch source {
	case RocketMQSourceContainer:
		return startRocketMQContainer(ctx, opts, flush)
	case RocketMQSourceProcess:
		return startRocketMQProcess(ctx, opts, flush)
	}
	return nil, &Unavailable{Reason: "skipped: no RocketMQ here: " + source}
}

// RocketMQSource returns the source StartRocketMQ would use with no
// "source" param, or an *Unavailable saying why no RocketMQ can start here.
// It starts nothing.
func RocketMQSource(ctx context.Context) (string, error) {
	s := os.Getenv("RPCBENCH_ROCKETMQ_SOURCE")
	if s == "" || s == RocketMQSourceAuto {
		s = chooseRocketMQSource(ctx)
	}
	switch s {
	case RocketMQSourceContainer:
		if err := CheckEngine(ctx); err != nil {
			return "", err
		}
		if !imagePresent(ctx, RocketMQLocalImage) {
			return "", &Unavailable{Reason: "skipped: no " + RocketMQLocalImage + " image; run `make brokers` (installs Docker and builds the images), or use --broker"}
		}
		return s, nil
	case RocketMQSourceProcess:
		if _, err := findRocketMQHome(); err != nil {
			return "", &Unavailable{Reason: "skipped: " + err.Error()}
		}
		if _, err := exec.LookPath("java"); err != nil {
			return "", &Unavailable{Reason: "skipped: no java for the RocketMQ process source; run `make brokers` (installs it)"}
		}
		return s, nil
	}
	return "", &Unavailable{Reason: "skipped: no RocketMQ here: " + s}
}

// chooseRocketMQSource picks the container when Docker answers and has the
// image, else local processes when java and the jars are present; otherwise
// it returns the reason nothing can run.
func chooseRocketMQSource(ctx context.Context) string {
	engineErr := CheckEngine(ctx)
	if engineErr == nil && imagePresent(ctx, RocketMQLocalImage) {
		return RocketMQSourceContainer
	}
	if _, err := findRocketMQHome(); err == nil {
		if _, err := exec.LookPath("java"); err == nil {
			return RocketMQSourceProcess
		}
	}
	if engineErr == nil {
		// Let the container source report the missing image.
		return RocketMQSourceContainer
	}
	return "no Docker engine, and no java with the jars of docker/rocketmq/lib; run `make brokers` (installs Docker and builds the images), or use --broker rocketmq=NAMESRV_HOST:PORT"
}

func imagePresent(ctx context.Context, name string) bool {
	cli, err := dockerClient(ctx)
	if err != nil {
		return false
	}
	defer cli.Close()
	_, err = cli.ImageInspect(ctx, name)
	return err == nil
}

// rocketMQPorts returns a free name server port and a broker listenPort L
// with L-2 and L+1 free too (the broker binds all three; L+1 on every
// interface).
func rocketMQPorts() (namesrv, brokerPort int, err error) {
	for try := 0; try < 50; try++ {
		ports, err := FreePorts(2)
		if err != nil {
			return 0, 0, err
		}
		l := ports[1] + 2
		if l+1 > 65535 || l-2 == ports[0] || l == ports[0] || l+1 == ports[0] {
			continue
		}
		a, errA := net.Listen("tcp", net.JoinHostPort(Host, strconv.Itoa(l)))
		if errA != nil {
			continue
		}
		b, errB := net.Listen("tcp", ":"+strconv.Itoa(l+1))
		a.Close()
		if errB != nil {
			continue
		}
		b.Close()
		return ports[0], l, nil
	}
	return 0, 0, errors.New("rocketmq: no free port triple for the broker")
}

func rocketMQEnv(nsPort, brokerPort int, flush, data, bind string) map[string]string {
	return map[string]string{
		"NAMESRV_PORT": strconv.Itoa(nsPort),
		"BROKER_PORT":  strconv.Itoa(brokerPort),
		"FLUSH":        flush,
		"DATA":         data,
		"BIND":         bind,
	}
}

// brokerReadyLine is printed by the broker (not the name server) once it
// has registered: "The broker[broker-a, 127.0.0.1:PORT] boot success...".
const brokerReadyLine = "] boot success"

// waitRocketMQRoutes waits until the name server lists the broker and
// routes the reply topic the request-reply needs.
func waitRocketMQRoutes(ctx context.Context, namesrv string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		qctx, qcancel := context.WithTimeout(ctx, 3*time.Second)
		c, err := rmqadmin.ClusterInfo(qctx, namesrv)
		qcancel()
		if err == nil && len(c.Masters()) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rocketmq: name server %s lists no broker: %v", namesrv, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	_, err := rmqadmin.WaitRoute(ctx, namesrv, RocketMQCluster+"_REPLY_TOPIC")
	return err
}

// jvmDetails reads the lines run.sh prints about the JVM.
func jvmDetails(logs string, d map[string]string) {
	for _, line := range strings.Split(logs, "\n") {
		for prefix, key := range map[string]string{
			"rpcbench-jvm: ":          "jvm",
			"rpcbench-namesrv-opts: ": "namesrv_jvm_opts",
			"rpcbench-broker-opts: ":  "broker_jvm_opts",
		} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
				d[key] = v
			}
		}
	}
}

// ---- container source ----

func startRocketMQContainer(ctx context.Context, opts StartOptions, flush string) (*RocketMQBroker, error) {
	start := time.Now()
	netMode, err := NetworkFromEnv()
	if err != nil {
		return nil, err
	}
	if v := opts.Params["network"]; v != "" {
		if netMode, err = ParseNetworkMode(v); err != nil {
			return nil, err
		}
	}
	// In mapped mode the broker must accept the forwarded connections
	// inside its own namespace; it still advertises 127.0.0.1 (brokerIP1)
	// and the ports are published under the same numbers.
	bind := Host
	if netMode == MappedPorts {
		bind = "0.0.0.0"
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		nsPort, brokerPort, err := rocketMQPorts()
		if err != nil {
			return nil, err
		}
		c, err := StartContainer(ctx, ContainerSpec{
			Kind:         "rocketmq",
			Images:       []Image{{Name: RocketMQLocalImage, Local: true, Cmd: []string{"/opt/rocketmq/bin/run.sh"}}},
			Env:          rocketMQEnv(nsPort, brokerPort, flush, "/tmp/rocketmq", bind),
			Ports:        []int{nsPort, brokerPort - 2, brokerPort, brokerPort + 1},
			Network:      netMode,
			ReadyLog:     brokerReadyLine,
			ReadyPorts:   []int{nsPort, brokerPort},
			StartTimeout: 2 * time.Minute,
			StopTimeout:  2 * time.Second,
			Keep:         opts.Params["keep"] == "true",
			LogLines:     40,
		})
		if err != nil {
			lastErr = err
			if _, ok := IsUnavailable(err); ok || ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
				return nil, err
			}
			continue // lost a port race: new ports
		}
		namesrv := c.Endpoint(nsPort)
		if err := waitRocketMQRoutes(ctx, namesrv); err != nil {
			logs, _ := c.Logs(context.WithoutCancel(ctx), 40)
			return nil, errors.Join(fmt.Errorf("%w\n--- last log lines of rocketmq ---\n%s", err, logs), c.Stop(ctx))
		}
		r := &RocketMQBroker{
			Namesrv:    namesrv,
			BrokerAddr: c.Endpoint(brokerPort),
			Startup:    time.Since(start),
			Container:  c,
		}
		r.Broker = Broker{
			Kind:    "rocketmq",
			URL:     namesrv,
			Source:  "container",
			Image:   c.Image,
			Version: RocketMQVersion,
			Details: map[string]string{
				"flush":     flush,
				"broker":    r.BrokerAddr,
				"network":   string(netMode),
				"container": c.Name,
				"startup":   r.Startup.Round(time.Millisecond).String(),
			},
		}
		if logs, err := c.Logs(ctx, 2000); err == nil {
			jvmDetails(logs, r.Details)
		}
		return r, nil
	}
	return nil, lastErr
}

// ---- process source ----

// findRocketMQHome finds the directory holding run.sh and lib/ with the
// jars: RPCBENCH_ROCKETMQ_HOME, else docker/rocketmq above the working
// directory or the executable.
func findRocketMQHome() (string, error) {
	ok := func(dir string) bool {
		if _, err := os.Stat(filepath.Join(dir, "run.sh")); err != nil {
			return false
		}
		jars, _ := filepath.Glob(filepath.Join(dir, "lib", "rocketmq-broker-"+RocketMQVersion+".jar"))
		return len(jars) > 0
	}
	if d := os.Getenv("RPCBENCH_ROCKETMQ_HOME"); d != "" {
		if ok(d) {
			return d, nil
		}
		return "", fmt.Errorf("rocketmq: RPCBENCH_ROCKETMQ_HOME=%s has no run.sh and lib/rocketmq-broker-%s.jar", d, RocketMQVersion)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		for dir := s; ; dir = filepath.Dir(dir) {
			if cand := filepath.Join(dir, "docker", "rocketmq"); ok(cand) {
				return cand, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", errors.New("rocketmq: no docker/rocketmq/lib with the jars; run `make brokers`")
}

// rocketProc is the process group run.sh started (broker, and the name
// server as its child).
type rocketProc struct {
	cmd      *exec.Cmd
	dir      string
	keepLogs bool
	exited   chan struct{}
	out      *lineLog
	once     sync.Once
	stopErr  error
}

func startRocketMQProcess(ctx context.Context, opts StartOptions, flush string) (*RocketMQBroker, error) {
	start := time.Now()
	home, err := findRocketMQHome()
	if err != nil {
		return nil, &Unavailable{Reason: "skipped: " + err.Error()}
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, &Unavailable{Reason: "skipped: no java for the RocketMQ process source; run `make brokers` (installs it)"}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		r, err := startRocketMQProcessOnce(ctx, opts, flush, home, start)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

func startRocketMQProcessOnce(ctx context.Context, opts StartOptions, flush, home string, start time.Time) (*RocketMQBroker, error) {
	nsPort, brokerPort, err := rocketMQPorts()
	if err != nil {
		return nil, err
	}
	parent := opts.Dir
	if parent != "" {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(parent, "rpcbench-rocketmq-")
	if err != nil {
		return nil, err
	}
	p := &rocketProc{dir: dir, keepLogs: opts.Dir != "", exited: make(chan struct{}), out: newLineLog(60, brokerReadyLine)}
	logFile, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.out.file = logFile
	cmd := exec.Command("sh", filepath.Join(home, "run.sh"))
	cmd.Env = os.Environ()
	for k, v := range rocketMQEnv(nsPort, brokerPort, flush, dir, Host) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "ROCKETMQ_LIB="+filepath.Join(home, "lib"))
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := startTied(cmd, p.exited); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("rocketmq: start run.sh: %w", err)
	}
	p.cmd = cmd
	fail := func(err error) (*RocketMQBroker, error) {
		msg := fmt.Sprintf("%v\n--- last log lines of rocketmq ---\n%s", err, p.out.tail())
		stopErr := p.stop(context.WithoutCancel(ctx))
		return nil, errors.Join(errors.New(msg), stopErr)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	select {
	case <-p.out.ready:
	case <-p.exited:
		return fail(errors.New("rocketmq: broker exited before boot success"))
	case <-wctx.Done():
		return fail(fmt.Errorf("rocketmq: waiting for the broker's boot success: %w", wctx.Err()))
	}
	namesrv := net.JoinHostPort(Host, strconv.Itoa(nsPort))
	if err := waitRocketMQRoutes(wctx, namesrv); err != nil {
		return fail(err)
	}
	r := &RocketMQBroker{
		Namesrv:    namesrv,
		BrokerAddr: net.JoinHostPort(Host, strconv.Itoa(brokerPort)),
		Startup:    time.Since(start),
		proc:       p,
	}
	r.Broker = Broker{
		Kind:    "rocketmq",
		URL:     namesrv,
		Source:  "process",
		Version: RocketMQVersion,
		Details: map[string]string{
			"flush":   flush,
			"broker":  r.BrokerAddr,
			"dir":     dir,
			"startup": r.Startup.Round(time.Millisecond).String(),
		},
	}
	jvmDetails(p.out.head(), r.Details)
	return r, nil
}

func (p *rocketProc) signal(sig syscall.Signal) error {
	select {
	case <-p.exited:
		return errors.New("rocketmq: broker not running")
	default:
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *rocketProc) kill() error {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	waitGroupGone(p.cmd.Process.Pid, 10*time.Second)
	return nil
}

// waitGroupGone waits until no process of group pgid is left (the name
// server, a child of the broker, is reaped by init after the broker dies).
func waitGroupGone(pgid int, max time.Duration) {
	end := time.Now().Add(max)
	for time.Now().Before(end) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process group (SIGTERM, SIGKILL after 2 s), then removes
// the run directory (keeping the logs when it lives in StartOptions.Dir).
func (p *rocketProc) stop(ctx context.Context) error {
	p.once.Do(func() {
		pid := p.cmd.Process.Pid
		syscall.Kill(-pid, syscall.SIGCONT)
		syscall.Kill(-pid, syscall.SIGTERM)
		grace := time.NewTimer(2 * time.Second)
		defer grace.Stop()
		select {
		case <-p.exited:
		case <-grace.C:
		case <-ctx.Done():
		}
		// The name server is the broker's child in the same group: make
		// sure nothing of the group is left.
		syscall.Kill(-pid, syscall.SIGKILL)
		<-p.exited
		waitGroupGone(pid, 10*time.Second)
		p.out.close()
		if p.keepLogs {
			p.stopErr = os.RemoveAll(filepath.Join(p.dir, "store"))
		} else {
			p.stopErr = os.RemoveAll(p.dir)
		}
	})
	return p.stopErr
}

// lineLog is the processes' stdout: written to a file, the first and last
// lines kept, and ready closed on the first line containing readyLine.
type lineLog struct {
	mu        sync.Mutex
	file      io.WriteCloser
	partial   []byte
	first     []string
	ring      []string
	n         int
	readyLine string
	ready     chan struct{}
	isReady   bool
}

func newLineLog(n int, readyLine string) *lineLog {
	return &lineLog{n: n, readyLine: readyLine, ready: make(chan struct{})}
}

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Write(b)
	}
	l.partial = append(l.partial, b...)
	for {
		i := strings.IndexByte(string(l.partial), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.partial[:i]), "\r")
		l.partial = l.partial[i+1:]
		if len(l.first) < 20 {
			l.first = append(l.first, line)
		}
		if len(l.ring) == l.n {
			copy(l.ring, l.ring[1:])
			l.ring = l.ring[:l.n-1]
		}
		l.ring = append(l.ring, line)
		if !l.isReady && strings.Contains(line, l.readyLine) {
			l.isReady = true
			close(l.ready)
		}
	}
	return len(b), nil
}

func (l *lineLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.ring, "\n")
}

func (l *lineLog) head() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.first, "\n")
}

func (l *lineLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}
