package broker

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/rmqadmin"
)

// requireRocketMQJars skips (fails in CI) when the jars are missing.
func requireRocketMQJars(t *testing.T) {
	t.Helper()
	_, err := findRocketMQHome()
	if err == nil {
		_, err = exec.LookPath("java")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v (make test-deps fetches the jars)", err)
		}
		t.Skip(err)
	}
}

func requireRocketMQImage(t *testing.T) {
	t.Helper()
	requireDocker(t)
	if !imagePresent(context.Background(), RocketMQLocalImage) {
		msg := "no " + RocketMQLocalImage + ": run `make brokers`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func TestRocketMQParams(t *testing.T) {
	ctx := context.Background()
	for params, want := range map[string]map[string]string{
		`unknown broker param "flushDiskType"`:         {"flushDiskType": "SYNC_FLUSH"},
		`flush="sync": want ASYNC_FLUSH or SYNC_FLUSH`: {"flush": "sync"},
		`source "vm": want auto, container or process`: {"source": "vm"},
	} {
		_, err := StartRocketMQ(ctx, StartOptions{Params: want})
		if err == nil || !strings.Contains(err.Error(), params) {
			t.Errorf("params %v: err %v, want %q", want, err, params)
		}
	}
}

// Where Docker answers and the image exists, the default source is the
// container: CI exercises the container path.
func TestRocketMQDefaultSourceIsContainer(t *testing.T) {
	requireRocketMQImage(t)
	t.Setenv("RPCBENCH_ROCKETMQ_SOURCE", "")
	if got := rocketMQSources.choose(context.Background()); got != SourceContainer {
		t.Fatalf("default source %q, want container", got)
	}
}

// checkRocketMQ checks a started broker: flush mode, routes, details.
func checkRocketMQ(t *testing.T, r *RocketMQBroker, flush, source string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r.Kind != "rocketmq" || r.Source != source || r.Version != RocketMQVersion || r.URL != r.Namesrv ||
		!strings.HasPrefix(r.URL, "127.0.0.1:") || !strings.HasPrefix(r.BrokerAddr, "127.0.0.1:") {
		t.Fatalf("broker %+v", r.Broker)
	}
	for _, k := range []string{"flush", "jvm", "broker_jvm_opts", "namesrv_jvm_opts", "startup"} {
		if r.Details[k] == "" {
			t.Errorf("details lack %s: %v", k, r.Details)
		}
	}
	if r.Details["flush"] != flush || !strings.Contains(r.Details["jvm"], "17") {
		t.Errorf("details %v", r.Details)
	}
	c, err := rmqadmin.ClusterInfo(ctx, r.URL)
	if err != nil || len(c.Masters()) != 1 || c.Masters()[0] != r.BrokerAddr {
		t.Fatalf("cluster info %+v, %v", c, err)
	}
	conf, err := rmqadmin.BrokerConfig(ctx, r.BrokerAddr)
	if err != nil || conf["flushDiskType"] != flush || conf["brokerIP1"] != "127.0.0.1" || conf["waitTimeMillsInSendQueue"] != "3000" {
		t.Fatalf("broker config flushDiskType=%q brokerIP1=%q waitTimeMillsInSendQueue=%q, %v", conf["flushDiskType"], conf["brokerIP1"], conf["waitTimeMillsInSendQueue"], err)
	}
	if _, err := rmqadmin.TopicRoute(ctx, r.URL, RocketMQCluster+"_REPLY_TOPIC"); err != nil {
		t.Fatalf("reply topic route: %v", err)
	}
	t.Logf("%s %s started in %v: %v", source, r.Image, r.Startup.Round(time.Millisecond), r.Details)
}

func portsClosed(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", a)
		}
	}
}

func TestRocketMQProcess(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	requireRocketMQJars(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	r, err := StartRocketMQ(ctx, StartOptions{Dir: dir, Params: map[string]string{"flush": "SYNC_FLUSH", "source": "process"}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			r.Stop(context.Background())
		}
	}()
	checkRocketMQ(t, r, "SYNC_FLUSH", "process")
	runDir := r.Details["dir"]
	if !strings.HasPrefix(runDir, dir) {
		t.Fatalf("run dir %s not under %s", runDir, dir)
	}
	pid := r.proc.cmd.Process.Pid
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	portsClosed(t, r.URL, r.BrokerAddr)
	if err := exec.Command("pgrep", "-g", itoa(pid)).Run(); err == nil {
		t.Errorf("processes of group %d left after Stop", pid)
	}
	if _, err := os.Stat(filepath.Join(runDir, "store")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("store left in %s: %v", runDir, err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "stdout.log")); err != nil {
		t.Errorf("logs not kept in the run's dir: %v", err)
	}
}

func TestRocketMQContainer(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	requireRocketMQImage(t)
	before := countRun(t, "rocketmq")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start, err := func() (Starter, error) { return RocketMQ(), nil }()
	if err != nil {
		t.Fatal(err)
	}
	b, stop, err := start(ctx, StartOptions{Params: map[string]string{"source": "container"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := StartRocketMQ(ctx, StartOptions{Params: map[string]string{"source": "container", "flush": "SYNC_FLUSH"}})
	if err != nil {
		stop(ctx)
		t.Fatal(err)
	}
	if got := countRun(t, "rocketmq"); got != before+2 {
		t.Errorf("%d containers of this run, want %d", got, before+2)
	}
	if b.Image != RocketMQLocalImage || b.Details["network"] != "host" {
		t.Errorf("broker %+v", b)
	}
	checkRocketMQ(t, r, "SYNC_FLUSH", "container")
	if err := stop(ctx); err != nil {
		t.Error(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Error(err)
	}
	portsClosed(t, b.URL, r.URL, r.BrokerAddr)
	if got := countRun(t, "rocketmq"); got != before {
		t.Errorf("%d containers of this run left, want %d", got, before)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// A process-source broker dies with the process that started it, even when
// that process is killed (no Stop): nothing is left listening or running.
func TestRocketMQProcessDiesWithParent(t *testing.T) {
	if os.Getenv("RPCBENCH_ROCKETMQ_ORPHAN_CHILD") == "1" {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		r, err := StartRocketMQ(ctx, StartOptions{Params: map[string]string{"source": "process"}})
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("READY " + r.URL + " " + r.BrokerAddr + " " + strconv.Itoa(r.proc.cmd.Process.Pid) + "\n")
		time.Sleep(5 * time.Minute)
		return
	}
	requireRocketMQJars(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRocketMQProcessDiesWithParent$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "RPCBENCH_ROCKETMQ_ORPHAN_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan []string, 1)
	go func() {
		b := make([]byte, 0, 4096)
		buf := make([]byte, 512)
		for {
			n, err := out.Read(buf)
			b = append(b, buf[:n]...)
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) == 4 && f[0] == "READY" {
					lines <- f[1:]
					return
				}
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	var f []string
	select {
	case f = <-lines:
	case <-time.After(4 * time.Minute):
	}
	if f == nil {
		t.Fatal("the child did not start a broker")
	}
	pgid, _ := strconv.Atoi(f[2])
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	end := time.Now().Add(time.Minute)
	for time.Now().Before(end) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(-pgid, syscall.SIGKILL)
		t.Fatalf("broker processes (group %d) outlived the process that started them", pgid)
	}
	portsClosed(t, f[0], f[1])
}
