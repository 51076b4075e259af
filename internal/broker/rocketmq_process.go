package broker

// RocketMQ from its process source: run.sh started directly with the jars in
// docker/rocketmq/lib, in its own process group.

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
)

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
	return findHome("rocketmq", "RPCBENCH_ROCKETMQ_HOME", "rocketmq-broker-"+RocketMQVersion+".jar", ok)
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
		CPU:     PidCPU(p.cmd.Process.Pid),
		PIDs:    PidTree(p.cmd.Process.Pid),
		Control: &processControl{name: "rocketmq", cmd: &p.cmd, exited: &p.exited, grace: 2 * time.Second,
			ready: func(ctx context.Context) error {
				if err := waitPorts(ctx, []int{nsPort, brokerPort}, restartTimeout); err != nil {
					return err
				}
				return waitRocketMQRoutes(ctx, namesrv)
			}},
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

// stop ends the process group (SIGTERM, SIGKILL after 2 s), then removes
// the run directory (keeping the logs when it lives in StartOptions.Dir).
func (p *rocketProc) stop(ctx context.Context) error {
	p.once.Do(func() {
		// The name server is the broker's child in the same group:
		// nothing of the group is left.
		stopGroup(ctx, p.cmd.Process.Pid, p.exited, 2*time.Second)
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
