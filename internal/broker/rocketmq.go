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
//
// This file holds what both sources share: the params, the choice of
// source, the ports, the run.sh environment and the ready checks. The
// sources are in rocketmq_container.go and rocketmq_process.go.

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
	source, err := rocketMQSources.resolve(ctx, opts.Params["source"])
	if err != nil {
		return nil, err
	}
	switch source {
	case SourceContainer:
		return startRocketMQContainer(ctx, opts, flush)
	case SourceProcess:
		return startRocketMQProcess(ctx, opts, flush)
	}
	return nil, &Unavailable{Reason: "skipped: no RocketMQ here: " + source}
}

var rocketMQSources = &jvmSources{
	name: "rocketmq", title: "RocketMQ", image: RocketMQLocalImage, home: findRocketMQHome,
	use:     "run `make brokers` (installs Docker and builds the images), or use --broker",
	neither: "no Docker engine, and no java with the jars of docker/rocketmq/lib; run `make brokers` (installs Docker and builds the images), or use --broker rocketmq=NAMESRV_HOST:PORT",
}

// RocketMQSource returns the source StartRocketMQ would use with no
// "source" param, or an *Unavailable saying why no RocketMQ can start here.
// It starts nothing.
func RocketMQSource(ctx context.Context) (string, error) { return rocketMQSources.check(ctx) }

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
