package broker

// Kafka: a single-node KRaft cluster (one JVM, broker and controller) on
// 127.0.0.1, from one of two sources that run the same script
// (docker/kafka/run.sh) with the same jars (docker/kafka/pom.xml, 4.4.0 from
// Maven Central):
//   - container (the default when a Docker engine answers and the image
//     exists): the local image rpcbench.local/kafka:<version> built by
//     docker/kafka/build.sh (`make brokers`), host networking;
//   - process: the script run directly with the jars in docker/kafka/lib,
//     for machines where Docker cannot run.
// Two free ports are chosen here: the client listener and the controller.
// run.sh formats a fresh log dir on every start. Ready = the broker's
// "Kafka Server started" line, then a client's metadata request lists the
// broker.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka version and image.
const (
	// KafkaVersion is the broker version docker/kafka fetches and builds.
	KafkaVersion = "4.4.0"
	// KafkaLocalImage is the image docker/kafka/build.sh builds.
	KafkaLocalImage = "rpcbench.local/kafka:" + KafkaVersion
)

// kafkaParams are the StartOptions.Params the starter accepts.
var kafkaParams = map[string]string{
	"source":  "auto (default; RPCBENCH_KAFKA_SOURCE), container or process",
	"network": "host (default) or mapped, for the container source",
	"keep":    "true labels the container to be kept (rpcbench brokers up)",
}

// kafkaReadyLine is what the broker logs once both its roles serve.
const kafkaReadyLine = "Kafka Server started"

// Kafka returns the Kafka starter. StartOptions.Params:
//   - "source": "auto" (default, or RPCBENCH_KAFKA_SOURCE), "container" or
//     "process". auto picks the container when a Docker engine answers and
//     the image exists, else a local process when java and the jars are
//     here, else the broker is Unavailable;
//   - "network": "host" (default) or "mapped" (container source);
//   - "keep": "true" (container source, rpcbench brokers up).
//
// The Broker's URL is the bootstrap address, "127.0.0.1:PORT"; Details
// record the controller port, the JVM and its options, the source and the
// startup time. Variants that need per-topic settings (sync-flush) set
// them on their own topics, so one broker serves every variant.
func Kafka() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		k, err := StartKafka(ctx, opts)
		if err != nil {
			return Broker{}, nil, err
		}
		return k.Broker, k.Stop, nil
	}
}

// KafkaBroker is a running Kafka (tests kill it).
type KafkaBroker struct {
	Broker
	// Startup is how long the start took, from the call to ready.
	Startup time.Duration
	// Container is set for the container source.
	Container *Container
	proc      *kafkaProc
}

// Stop stops the broker and removes everything it started.
func (k *KafkaBroker) Stop(ctx context.Context) error {
	if k.Container != nil {
		return k.Container.Stop(ctx)
	}
	return k.proc.stop(ctx)
}

// Kill kills the broker at once, leaving its port dead (Stop still cleans
// up).
func (k *KafkaBroker) Kill(ctx context.Context) error {
	if k.Container != nil {
		return k.Container.Kill(ctx)
	}
	syscall.Kill(-k.proc.cmd.Process.Pid, syscall.SIGKILL)
	<-k.proc.exited
	waitGroupGone(k.proc.cmd.Process.Pid, 10*time.Second)
	return nil
}

// LogTail returns the broker's last n log lines, for test failures.
func (k *KafkaBroker) LogTail(ctx context.Context, n int) string {
	if k.Container != nil {
		s, err := k.Container.Logs(ctx, n)
		if err != nil {
			return fmt.Sprintf("(no broker log: %v)", err)
		}
		return s
	}
	lines := strings.Split(k.proc.out.tail(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartKafka starts a Kafka broker from the source opts ask for.
func StartKafka(ctx context.Context, opts StartOptions) (*KafkaBroker, error) {
	for k := range opts.Params {
		if _, ok := kafkaParams[k]; !ok {
			return nil, fmt.Errorf("kafka: unknown broker param %q (want source, network or keep)", k)
		}
	}
	source, err := kafkaSources.resolve(ctx, opts.Params["source"])
	if err != nil {
		return nil, err
	}
	switch source {
	case SourceContainer:
		return startKafkaContainer(ctx, opts)
	case SourceProcess:
		return startKafkaProcess(ctx, opts)
	}
	return nil, &Unavailable{Reason: "skipped: no Kafka here: " + source}
}

var kafkaSources = &jvmSources{
	name: "kafka", title: "Kafka", image: KafkaLocalImage, home: findKafkaHome,
	use:     "run `make brokers` (installs Docker and builds the images), or use --broker kafka=HOST:PORT",
	neither: "no Docker engine, and no java with the jars of docker/kafka/lib; run `make brokers` (installs Docker and builds the images), or use --broker kafka=HOST:PORT",
}

// KafkaSource returns the source StartKafka would use with no "source"
// param, or an *Unavailable saying why no Kafka can start here. It starts
// nothing.
func KafkaSource(ctx context.Context) (string, error) { return kafkaSources.check(ctx) }

func kafkaEnv(port, controller int, data, bind string) map[string]string {
	return map[string]string{
		"KAFKA_PORT":      strconv.Itoa(port),
		"CONTROLLER_PORT": strconv.Itoa(controller),
		"DATA":            data,
		"BIND":            bind,
	}
}

// waitKafkaMetadata waits until a metadata request to addr lists a broker
// and a controller: the cluster can create topics.
func waitKafkaMetadata(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		req := kmsg.NewPtrMetadataRequest()
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := req.RequestWith(rctx, cl)
		rcancel()
		if err == nil && len(resp.Brokers) > 0 && resp.ControllerID >= 0 {
			return nil
		}
		if err == nil {
			err = errors.New("no broker or controller listed yet")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: %s: metadata: %v", addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// findKafkaHome finds the directory holding run.sh and lib/ with the jars:
// RPCBENCH_KAFKA_HOME, else docker/kafka above the working directory or
// the executable.
func findKafkaHome() (string, error) {
	ok := func(dir string) bool {
		if _, err := os.Stat(filepath.Join(dir, "run.sh")); err != nil {
			return false
		}
		_, err := os.Stat(filepath.Join(dir, "lib", "kafka_2.13-"+KafkaVersion+".jar"))
		return err == nil
	}
	return findHome("kafka", "RPCBENCH_KAFKA_HOME", "kafka_2.13-"+KafkaVersion+".jar", ok)
}

// kafkaJVMDetails reads the lines run.sh prints about the JVM.
func kafkaJVMDetails(logs string, d map[string]string) {
	for _, line := range strings.Split(logs, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "rpcbench-jvm: "); ok {
			d["jvm"] = v
		}
		if v, ok := strings.CutPrefix(line, "rpcbench-broker-opts: "); ok {
			d["broker_jvm_opts"] = v
		}
	}
}

func kafkaBroker(addr string, controller int, start time.Time, source string) *KafkaBroker {
	k := &KafkaBroker{Startup: time.Since(start)}
	k.Broker = Broker{
		Kind:    "kafka",
		URL:     addr,
		Source:  source,
		Version: KafkaVersion,
		Details: map[string]string{
			"mode":       "kraft single node (broker,controller)",
			"controller": net.JoinHostPort(Host, strconv.Itoa(controller)),
			"fsync":      "none per message (log.flush defaults); sync-flush topics set flush.messages=1",
			"startup":    k.Startup.Round(time.Millisecond).String(),
		},
	}
	return k
}

// ---- container source ----

func startKafkaContainer(ctx context.Context, opts StartOptions) (*KafkaBroker, error) {
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
	bind := Host
	if netMode == MappedPorts {
		bind = "0.0.0.0"
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := FreePorts(2)
		if err != nil {
			return nil, err
		}
		c, err := StartContainer(ctx, ContainerSpec{
			Kind:         "kafka",
			Images:       []Image{{Name: KafkaLocalImage, Local: true, Cmd: []string{"/opt/kafka/bin/run.sh"}}},
			Env:          kafkaEnv(ports[0], ports[1], "/tmp/kafka", bind),
			Ports:        ports,
			Network:      netMode,
			ReadyLog:     kafkaReadyLine,
			ReadyPorts:   ports[:1],
			StartTimeout: 2 * time.Minute,
			StopTimeout:  5 * time.Second,
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
		addr := c.Endpoint(ports[0])
		if err := waitKafkaMetadata(ctx, addr); err != nil {
			logs, _ := c.Logs(context.WithoutCancel(ctx), 40)
			return nil, errors.Join(fmt.Errorf("%w\n--- last log lines of kafka ---\n%s", err, logs), c.Stop(ctx))
		}
		k := kafkaBroker(addr, ports[1], start, SourceContainer)
		k.Container = c
		k.Image = c.Image
		k.CPU, k.PIDs = c.CPU, c.PIDs
		k.Control = c.Control(ports[:1])
		k.Details["network"] = string(netMode)
		k.Details["container"] = c.Name
		if logs, err := c.Logs(ctx, 200); err == nil {
			kafkaJVMDetails(logs, k.Details)
		}
		return k, nil
	}
	return nil, lastErr
}

// ---- process source ----

// kafkaProc is the process group run.sh started (it execs the broker).
type kafkaProc struct {
	cmd      *exec.Cmd
	dir      string
	keepLogs bool
	exited   chan struct{}
	out      *lineLog
	once     sync.Once
	stopErr  error
}

func startKafkaProcess(ctx context.Context, opts StartOptions) (*KafkaBroker, error) {
	start := time.Now()
	home, err := findKafkaHome()
	if err != nil {
		return nil, &Unavailable{Reason: "skipped: " + err.Error()}
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, &Unavailable{Reason: "skipped: no java for the Kafka process source; run `make brokers` (installs it)"}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		k, err := startKafkaProcessOnce(ctx, opts, home, start)
		if err == nil {
			return k, nil
		}
		lastErr = err
		if ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

func startKafkaProcessOnce(ctx context.Context, opts StartOptions, home string, start time.Time) (*KafkaBroker, error) {
	ports, err := FreePorts(2)
	if err != nil {
		return nil, err
	}
	parent := opts.Dir
	if parent != "" {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(parent, "rpcbench-kafka-")
	if err != nil {
		return nil, err
	}
	p := &kafkaProc{dir: dir, keepLogs: opts.Dir != "", exited: make(chan struct{}), out: newLineLog(60, kafkaReadyLine)}
	logFile, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.out.file = logFile
	cmd := exec.Command("sh", filepath.Join(home, "run.sh"))
	cmd.Env = os.Environ()
	for k, v := range kafkaEnv(ports[0], ports[1], dir, Host) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "KAFKA_LIB="+filepath.Join(home, "lib"))
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := startTied(cmd, p.exited); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("kafka: start run.sh: %w", err)
	}
	p.cmd = cmd
	fail := func(err error) (*KafkaBroker, error) {
		msg := fmt.Sprintf("%v\n--- last log lines of kafka ---\n%s", err, p.out.tail())
		stopErr := p.stop(context.WithoutCancel(ctx))
		return nil, errors.Join(errors.New(msg), stopErr)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	select {
	case <-p.out.ready:
	case <-p.exited:
		return fail(errors.New("kafka: broker exited before it started"))
	case <-wctx.Done():
		return fail(fmt.Errorf("kafka: waiting for %q: %w", kafkaReadyLine, wctx.Err()))
	}
	addr := net.JoinHostPort(Host, strconv.Itoa(ports[0]))
	if err := waitKafkaMetadata(wctx, addr); err != nil {
		return fail(err)
	}
	k := kafkaBroker(addr, ports[1], start, SourceProcess)
	k.proc = p
	k.CPU, k.PIDs = PidCPU(p.cmd.Process.Pid), PidTree(p.cmd.Process.Pid)
	k.Control = &processControl{name: "kafka", cmd: &p.cmd, exited: &p.exited, grace: 5 * time.Second,
		ready: func(ctx context.Context) error {
			if err := waitPorts(ctx, ports[:1], restartTimeout); err != nil {
				return err
			}
			return waitKafkaMetadata(ctx, addr)
		}}
	k.Details["dir"] = dir
	kafkaJVMDetails(p.out.head(), k.Details)
	return k, nil
}

// stop ends the process group (SIGTERM: a controlled shutdown, SIGKILL
// after 5 s), then removes the run directory (keeping the broker's stdout
// when it lives in StartOptions.Dir).
func (p *kafkaProc) stop(ctx context.Context) error {
	p.once.Do(func() {
		stopGroup(ctx, p.cmd.Process.Pid, p.exited, 5*time.Second)
		p.out.close()
		if p.keepLogs {
			p.stopErr = os.RemoveAll(filepath.Join(p.dir, "data"))
		} else {
			p.stopErr = os.RemoveAll(p.dir)
		}
	})
	return p.stopErr
}
