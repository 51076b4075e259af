package broker

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func startNATS(t *testing.T, opts StartOptions) (Broker, func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, stop, err := NATSEmbedded()(ctx, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return b, stop
}

func TestNATSEmbedded(t *testing.T) {
	dir := t.TempDir()
	b, stop := startNATS(t, StartOptions{Dir: dir})
	if b.Kind != "nats" || b.Source != "embedded" || b.Version != server.VERSION {
		t.Fatalf("broker = %+v", b)
	}
	if !strings.HasPrefix(b.URL, "nats://127.0.0.1:") || strings.HasSuffix(b.URL, ":4222") {
		t.Fatalf("URL = %q, want 127.0.0.1 on a random port", b.URL)
	}
	store := b.Details["store_dir"]
	if filepath.Dir(store) != dir {
		t.Fatalf("store %q is not inside the run directory %q", store, dir)
	}
	if got := b.Details["jetstream_sync"]; got != "every 2m0s" {
		t.Fatalf("jetstream_sync = %q, want the server default every 2m0s", got)
	}

	// JetStream works and stores on file in the store directory.
	nc, err := natsgo.Connect(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t", []byte("stored")); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(store); err != nil || len(ents) == 0 {
		t.Fatalf("store directory %s holds nothing (%v)", store, err)
	}
	nc.Close()

	if err := stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Fatalf("store %s still there after stop (%v)", store, err)
	}
	if nc, err := natsgo.Connect(b.URL, natsgo.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("server still accepts connections after stop")
	}
}

func TestNATSEmbeddedSyncAlways(t *testing.T) {
	b, stop := startNATS(t, StartOptions{Dir: t.TempDir(), Params: map[string]string{NATSSyncParam: "always"}})
	defer stop(context.Background())
	if got := b.Details["jetstream_sync"]; got != "always" {
		t.Fatalf("jetstream_sync = %q, want always", got)
	}
}

func TestNATSEmbeddedNoDir(t *testing.T) {
	b, stop := startNATS(t, StartOptions{})
	store := b.Details["store_dir"]
	if _, err := os.Stat(store); err != nil {
		t.Fatalf("store: %v", err)
	}
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Fatalf("temporary store %s still there after stop (%v)", store, err)
	}
}

func TestNATSEmbeddedBadParams(t *testing.T) {
	for params, want := range map[string]map[string]string{
		`nats: broker param sync="sometimes": want default or always`: {"sync": "sometimes"},
		`nats: unknown broker param "flush" (want sync)`:              {"flush": "x"},
	} {
		_, _, err := NATSEmbedded()(context.Background(), StartOptions{Dir: t.TempDir(), Params: want})
		if err == nil || err.Error() != params {
			t.Errorf("params %v: got %v, want %q", want, err, params)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := NATSEmbedded()(ctx, StartOptions{Dir: t.TempDir()}); err == nil {
		t.Error("cancelled context: want an error")
	}
}

// TestNATSManager: the manager starts one embedded server per key, hands the
// same one out again, and stops them all on Close.
func TestNATSManager(t *testing.T) {
	m := NewManager(nil, map[string]Starter{"nats": NATSEmbedded()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	a, err := m.Get(ctx, "nats", "", StartOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Get(ctx, "nats", "", StartOptions{Dir: dir})
	if err != nil || again.URL != a.URL {
		t.Fatalf("second Get: %v %v, want the same server %s", again.URL, err, a.URL)
	}
	always, err := m.Get(ctx, "nats", "nats/sync=always", StartOptions{Dir: dir, Params: map[string]string{NATSSyncParam: "always"}})
	if err != nil || always.URL == a.URL || always.Details["jetstream_sync"] != "always" {
		t.Fatalf("sync=always broker: %+v %v", always, err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{a.URL, always.URL} {
		if nc, err := natsgo.Connect(url, natsgo.Timeout(time.Second)); err == nil {
			nc.Close()
			t.Fatalf("%s still up after Close", url)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("run directory keeps %d entries after Close", len(ents))
	}
}

// TestNATSContainerSource: the container source is chosen by
// RPCBENCH_NATS_SOURCE; where the official image cannot be had (no
// registry, or no Docker engine) it is unavailable with a reason, never a
// hang.
func TestNATSContainerSource(t *testing.T) {
	t.Setenv("RPCBENCH_NATS_SOURCE", "container")
	t.Setenv("RPCBENCH_NO_PULL", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, stop, err := NATS()(ctx, StartOptions{})
	if err == nil {
		// the image is present here: it must serve
		defer stop(context.Background())
		if b.Source != "container" || !strings.HasPrefix(b.URL, "nats://127.0.0.1:") {
			t.Fatalf("broker %+v", b)
		}
		return
	}
	reason, ok := IsUnavailable(err)
	if !ok || !strings.Contains(reason, "skipped") {
		t.Fatalf("want an Unavailable reason, got %v", err)
	}
	if _, _, err := NATS()(ctx, StartOptions{Params: map[string]string{NATSSyncParam: "always"}}); err == nil {
		t.Fatal("sync=always accepted by the container source")
	}
	t.Setenv("RPCBENCH_NATS_SOURCE", "cloud")
	if _, _, err := NATS()(ctx, StartOptions{}); err == nil || !strings.Contains(err.Error(), "RPCBENCH_NATS_SOURCE") {
		t.Fatalf("bad source: %v", err)
	}
}

func startNATSProcess(t *testing.T, opts StartOptions) (Broker, func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, stop, err := NATSProcess()(ctx, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { stop(context.Background()) })
	return b, stop
}

// alive reports whether process pid exists (and is not a zombie).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// TestNATSProcess: the default source runs the server in a child process
// (this test binary re-executed), with max_payload raised, JetStream on
// file in the run directory, and stop ends the process and removes the
// store.
func TestNATSProcess(t *testing.T) {
	dir := t.TempDir()
	b, stop := startNATSProcess(t, StartOptions{Dir: dir, Params: map[string]string{NATSSyncParam: "always"}})
	if b.Kind != "nats" || b.Source != "process" || b.Version != server.VERSION || !strings.HasPrefix(b.URL, "nats://127.0.0.1:") {
		t.Fatalf("broker = %+v", b)
	}
	if got := b.Details["jetstream_sync"]; got != "always" {
		t.Fatalf("jetstream_sync = %q, want always", got)
	}
	pid, err := strconv.Atoi(b.Details["pid"])
	if err != nil || pid == os.Getpid() || !alive(pid) {
		t.Fatalf("pid %q: want a live child process (%v)", b.Details["pid"], err)
	}
	store := b.Details["store_dir"]
	if filepath.Dir(store) != dir {
		t.Fatalf("store %q is not inside the run directory %q", store, dir)
	}
	nc, err := natsgo.Connect(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := nc.MaxPayload(); got != NATSMaxPayload {
		t.Fatalf("server announces max_payload %d, want %d", got, NATSMaxPayload)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t", make([]byte, NATSMaxPayload-1024)); err != nil {
		t.Fatalf("publish near max_payload: %v", err)
	}
	if ents, err := os.ReadDir(store); err != nil || len(ents) == 0 {
		t.Fatalf("store directory %s holds nothing (%v)", store, err)
	}
	nc.Close()
	start := time.Now()
	if err := stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("stopped in %v", time.Since(start))
	if alive(pid) {
		t.Fatalf("broker process %d still alive after stop", pid)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Fatalf("store %s still there after stop (%v)", store, err)
	}
	if err := stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

func TestNATSDefaultSource(t *testing.T) {
	t.Setenv("RPCBENCH_NATS_SOURCE", "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, stop, err := NATS()(ctx, StartOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(ctx)
	if b.Source != "process" {
		t.Fatalf("default source %q, want process", b.Source)
	}
	t.Setenv("RPCBENCH_NATS_SOURCE", "embedded")
	e, stopE, err := NATS()(ctx, StartOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer stopE(ctx)
	if e.Source != "embedded" {
		t.Fatalf("RPCBENCH_NATS_SOURCE=embedded gave source %q", e.Source)
	}
	if _, _, err := NATSProcess()(ctx, StartOptions{Params: map[string]string{"flush": "x"}}); err == nil {
		t.Fatal("bad params accepted by the process source")
	}
}

// TestNATSProcessDiesWithParent: a process that started a broker process
// and is then SIGKILLed (no chance to stop anything) leaves no broker
// behind.
func TestNATSProcessDiesWithParent(t *testing.T) {
	if os.Getenv("RPCBENCH_NATS_TEST_PARENT") == "1" {
		b, _, err := NATSProcess()(context.Background(), StartOptions{Dir: os.Getenv("RPCBENCH_NATS_TEST_DIR")})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("pid", b.Details["pid"])
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNATSProcessDiesWithParent$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RPCBENCH_NATS_TEST_PARENT=1", "RPCBENCH_NATS_TEST_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	pid := 0
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, _ = strconv.Atoi(p)
			break
		}
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatal(sc.Text())
		}
	}
	if pid == 0 || !alive(pid) {
		t.Fatalf("no broker process reported (pid %d)", pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("broker process %d outlived its killed parent", pid)
	}
}

// TestStopNATSProcesses: the forced clean-up stops every child server still
// running and removes its store; a later stop is harmless.
func TestStopNATSProcesses(t *testing.T) {
	b, stop := startNATSProcess(t, StartOptions{Dir: t.TempDir()})
	pid, _ := strconv.Atoi(b.Details["pid"])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := StopNATSProcesses(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("broker process %d alive after StopNATSProcesses", pid)
	}
	if _, err := os.Stat(b.Details["store_dir"]); !os.IsNotExist(err) {
		t.Fatalf("store still there (%v)", err)
	}
	if err := stop(ctx); err != nil {
		t.Fatalf("stop after StopNATSProcesses: %v", err)
	}
}

// TestManagerKeep: a manager that keeps its brokers (a suite of runs)
// stops none on Release, hands the same server to the next run, remembers
// that it was warmed up, and stops it on Close.
func TestManagerKeep(t *testing.T) {
	m := NewManager(nil, map[string]Starter{"nats": NATSEmbedded()})
	m.Keep()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := m.Get(ctx, "nats", "", StartOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Warm("nats") {
		t.Fatal("warm before any warm-up")
	}
	m.MarkWarm("nats")
	m.MarkWarm("nats/sync=always") // not running: ignored
	if err := m.Release(ctx, "nats"); err != nil {
		t.Fatal(err)
	}
	nc, err := natsgo.Connect(a.URL, natsgo.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("released broker of a keeping manager is down: %v", err)
	}
	nc.Close()
	again, err := m.Get(ctx, "nats", "", StartOptions{Dir: t.TempDir()})
	if err != nil || again.URL != a.URL || !m.Warm("nats") || m.Warm("nats/sync=always") {
		t.Fatalf("next run: %v %v warm %v, want the same warm server %s", again.URL, err, m.Warm("nats"), a.URL)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if nc, err := natsgo.Connect(a.URL, natsgo.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatalf("%s still up after Close", a.URL)
	}
	if m.Warm("nats") {
		t.Fatal("warm after Close")
	}
}
