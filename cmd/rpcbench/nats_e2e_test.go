package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// TestRunNATS runs each nats variant end to end through `rpcbench run` on
// the broker rpcbench starts (a child rpcbench process), which is stopped
// and whose store is removed after.
func TestRunNATS(t *testing.T) {
	out := t.TempDir()
	r := runBin(t, "run", "--drivers", "nats:core,nats:jetstream,nats:core+stream-copy", "--duration", "400ms", "--warmup", "100ms", "--settle", "3s", "--concurrency", "1,4", "--out", out, "-q")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	driverstest.CheckWarmups(t, run, 3)
	if !run.Complete || len(run.Cells) != 6 {
		t.Fatalf("complete=%v, %d cells, want 6", run.Complete, len(run.Cells))
	}
	for _, c := range run.Cells {
		if c.Error != "" || c.Counts.OK == 0 || c.Counts.Failed() != 0 {
			t.Errorf("cell %s: %+v error %q", c.Key, c.Counts, c.Error)
		}
	}
	b := run.Environment.Brokers
	if len(b) != 1 || b[0].Kind != "nats" || b[0].Source != "process" || b[0].Version == "" || b[0].Details["pid"] == "" {
		t.Fatalf("brokers %+v, want the nats-server in a child process", b)
	}
	if _, err := os.Stat("/proc/" + b[0].Details["pid"]); err == nil {
		t.Fatalf("broker process %s still there after the run", b[0].Details["pid"])
	}
	if left, _ := filepath.Glob(filepath.Join(out, "*", "nats-store-*")); len(left) != 0 {
		t.Fatalf("embedded broker store left behind: %v", left)
	}
}

// TestRunNATSExternal uses a nats-server started separately, given with
// --broker nats=URL.
func TestRunNATSExternal(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	out := t.TempDir()
	r := runBin(t, "run", "--drivers", "nats", "--broker", "nats="+ns.ClientURL(), "--duration", "300ms", "--warmup", "100ms", "--settle", "0s", "--concurrency", "2", "--out", out, "-q")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	if len(run.Cells) != 3 {
		t.Fatalf("%d cells, want 3 (core, jetstream, core+stream-copy)", len(run.Cells))
	}
	for _, c := range run.Cells {
		if c.Counts.OK == 0 || c.Counts.Failed() != 0 {
			t.Errorf("cell %s: %+v error %q", c.Key, c.Counts, c.Error)
		}
	}
	if b := run.Environment.Brokers; len(b) != 1 || b[0].Source != "external" || b[0].URL != ns.ClientURL() {
		t.Fatalf("brokers %+v, want the external server %s", b, ns.ClientURL())
	}
}
