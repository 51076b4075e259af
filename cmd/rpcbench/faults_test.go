package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/tcp"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/ledger"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

// needDocker skips (fails in CI) when no Docker engine answers.
func needDocker(t *testing.T) {
	t.Helper()
	if err := broker.CheckEngine(context.Background()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skip(err)
	}
}

// checkLedger checks that a fault cell accounts for every call exactly.
func checkLedger(t *testing.T, c results.Cell) *results.Faults {
	t.Helper()
	name := c.Driver + "/" + c.Variant
	f := c.Faults
	if f == nil {
		t.Fatalf("%s: no faults record (error %q)", name, c.Error)
	}
	l := f.Ledger
	if got := l.ExactlyOnce + l.Duplicated + l.Lost + l.ExecutedAfterTimeout; got != l.Attempted {
		t.Errorf("%s: exactly once %d + duplicated %d + lost %d + executed after timeout %d = %d, attempted %d",
			name, l.ExactlyOnce, l.Duplicated, l.Lost, l.ExecutedAfterTimeout, got, l.Attempted)
	}
	if l.Attempted+l.NotSent != c.Counts.Scheduled {
		t.Errorf("%s: attempted %d + not sent %d != scheduled %d", name, l.Attempted, l.NotSent, c.Counts.Scheduled)
	}
	if l.OKUnrecorded != 0 {
		t.Errorf("%s: %d ok calls with no ledger record", name, l.OKUnrecorded)
	}
	if l.ExactlyOnce+l.DuplicatedOK != c.Counts.OK {
		t.Errorf("%s: exactly once %d + duplicated ok %d != ok %d", name, l.ExactlyOnce, l.DuplicatedOK, c.Counts.OK)
	}
	if len(f.Timeline) == 0 {
		t.Errorf("%s: no timeline", name)
	}
	var ok, failed int64
	for _, p := range f.Timeline {
		ok += p.OK
		failed += p.Failed
	}
	if ok != c.Counts.OK {
		t.Errorf("%s: timeline holds %d ok calls, the cell %d", name, ok, c.Counts.OK)
	}
	return f
}

// TestFaultKillResponder kills every driver's responder mid-run and
// restarts it: each call is classified once, the counts add up, and the
// responder restarted (a second incarnation handled calls) where the
// driver can serve the same place again.
func TestFaultKillResponder(t *testing.T) {
	needDocker(t)
	t.Parallel() // with the other fault runs: each waits on its brokers and cells
	id := runID()
	out := t.TempDir()
	drv := "tcp,grpc,http:binary,netrpc:gob,connect:connect,thrift:binary,rpcx,gozero:no-middleware,dubbo,nats,rabbitmq:reply-queue/persistent,rabbitmq:direct-reply-to/transient,rocketmq:async-flush,kafka:acks-all"
	r := runBinEnv(t, runEnv(id), "run", "--drivers", drv, "--rate", "200", "--duration", "3s", "--timeout", "2s", "--settle", "0s", "--broker-warmup", "2s",
		"--fault", "kill-responder@1s+500ms", "--require-brokers", "--out", out, "-q")
	if r.code != 0 && r.code != 1 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	seen := map[string]bool{}
	for _, c := range run.Cells {
		name := c.Driver + "/" + c.Variant
		seen[c.Driver] = true
		f := checkLedger(t, c)
		ev := f.Events[0]
		if c.Driver == "kafka" {
			// its responders cannot resume a topic: the restore fails and says why
			if !strings.Contains(ev.Error, "committed offsets") {
				t.Errorf("%s: restore error %q, want the reason it cannot resume", name, ev.Error)
			}
			continue
		}
		if ev.Error != "" || ev.Restored == nil {
			t.Errorf("%s: fault %+v", name, ev)
			continue
		}
		if f.Ledger.Incarnations != 2 {
			t.Errorf("%s: %d responder incarnations handled calls, want 2 (restarted)", name, f.Ledger.Incarnations)
		}
		if ev.FirstOKMs == nil {
			t.Errorf("%s: no ok call after the restart", name)
		}
		switch name {
		case "tcp/mux":
			if f.Ledger.Duplicated != 0 {
				t.Errorf("%s: %d duplicated: a direct transport has nothing to redeliver", name, f.Ledger.Duplicated)
			}
		case "rabbitmq/reply-queue/persistent", "nats/jetstream":
			// the broker held every request the dead responder had not acked
			if f.Ledger.Lost != 0 || f.Ledger.Undrained {
				t.Errorf("%s: %d lost (undrained %v) across a responder restart", name, f.Ledger.Lost, f.Ledger.Undrained)
			}
			if la := f.Ledger.LostAcknowledged; la == nil || *la != 0 {
				t.Errorf("%s: lost_acknowledged %v, want 0 (the driver reports acks)", name, la)
			}
		}
	}
	for _, d := range strings.Split(drv, ",") {
		if d, _, _ := strings.Cut(d, ":"); !seen[d] {
			t.Errorf("no cell of %s", d)
		}
	}
	if len(run.Skipped) != 0 {
		t.Errorf("skipped: %+v", run.Skipped)
	}
	noneLeft(t, out, id)
}

// TestFaultBrokerStop stops the broker for two seconds mid-run (a child
// process and a container), and freezes one: the calls fail or wait, the
// run ends on time, results are written and nothing is left running.
func TestFaultBrokerStop(t *testing.T) {
	needDocker(t)
	t.Parallel()
	for _, tc := range []struct {
		faults  []string
		drivers string
	}{
		{[]string{"stop-broker@1s+2s"}, "nats:core,rabbitmq:reply-queue/persistent"},
		{[]string{"pause-broker@1s+1s", "kill-broker@5s+1s"}, "nats:core,nats:jetstream"},
	} {
		t.Run(strings.Join(tc.faults, ","), func(t *testing.T) {
			t.Parallel()
			id := runID()
			out := t.TempDir()
			start := time.Now()
			args := []string{"run", "--drivers", tc.drivers, "--rate", "100", "--duration", "12s", "--timeout", "2s", "--settle", "0s",
				"--require-brokers", "--out", out, "-q"}
			for _, f := range tc.faults {
				args = append(args, "--fault", f)
			}
			r := runBinEnv(t, runEnv(id), args...)
			took := time.Since(start)
			if r.code != 0 && r.code != 1 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			run := driverstest.ReadResults(t, out)
			if len(run.Cells) == 0 {
				t.Fatal("no cells")
			}
			for _, c := range run.Cells {
				f := checkLedger(t, c)
				for _, ev := range f.Events {
					if ev.Error != "" || ev.Restored == nil {
						t.Errorf("%s/%s: fault %+v", c.Driver, c.Variant, ev)
					}
				}
				if c.Counts.Failed()+c.Counts.Overflow == 0 && f.Timeline != nil {
					// a freeze may only delay calls; then some waited
					var maxIn int64
					for _, p := range f.Timeline {
						maxIn = max(maxIn, p.InFlight)
					}
					if maxIn < 10 {
						t.Errorf("%s/%s: no call failed and none waited through the outage", c.Driver, c.Variant)
					}
				}
			}
			t.Logf("%v: %v", tc.faults, took.Round(time.Second))
			noneLeft(t, out, id)
		})
	}
}

// TestLedgerSurvivesKill: a responder killed after it took a request and
// before it replied has the request in its ledger.
func TestLedgerSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	cmd := exec.Command(rpcbench(t), "serve", "--driver", "tcp", "--ledger", path, "--incarnation", "3")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatal("serve printed nothing")
	}
	line := sc.Text()
	addr := line[strings.LastIndex(line, " at ")+4:]
	tr := driverstest.Configure(t, tcp.New(), drivers.Config{})
	client := driverstest.Dial(t, tr, addr)
	caller, err := client.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	const id = 4242
	// a service time keeps the handler busy: the kill lands between the
	// handling and the reply
	req := wire.NewRequestTemplate([]byte("x"), 0).Append(nil, id, int64(5*time.Second), time.Now().UnixNano())
	done := make(chan error, 1)
	go func() {
		_, err := caller.Call(context.Background(), time.Now().Add(10*time.Second), req, nil)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, _ := ledger.Size(path); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ledger record within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if err := <-done; err == nil {
		t.Fatal("the call succeeded although its responder was killed before replying")
	}
	recs, _, err := ledger.Read(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != id || recs[0].Incarnation != 3 {
		t.Fatalf("ledger after SIGKILL: %+v, want call %d by incarnation 3", recs, id)
	}
}

// TestFaultBadInput: faults the run cannot do are refused up front.
func TestFaultBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--drivers", "tcp", "--rate", "100", "--duration", "3s", "--fault", "kill-broker@1s"}, "none of the drivers has a broker"},
		{[]string{"--drivers", "tcp", "--rate", "100", "--duration", "3s", "--fault", "kill-responder@1s", "--responder", "in-process"}, "need --responder process"},
		{[]string{"--drivers", "tcp", "--concurrency", "1", "--duration", "3s", "--fault", "kill-responder@1s"}, "open loop"},
		{[]string{"--drivers", "nats", "--rate", "100", "--duration", "3s", "--fault", "stop-broker@1s", "--broker", "nats=nats://127.0.0.1:4222"}, "external"},
		{[]string{"--drivers", "tcp", "--rate", "100", "--duration", "3s", "--fault", "boom@1s"}, "unknown fault action"},
	} {
		out := t.TempDir()
		r := runBin(t, append(append([]string{"run"}, tc.args...), "--out", out)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("%v: wrote %d entries", tc.args, len(entries))
		}
	}
}

// runID labels the containers of the runs a test starts
// (RPCBENCH_RUN_ID), so that noneLeft looks at those only.
func runID() string {
	return fmt.Sprintf("test%d", time.Now().UnixNano())
}

// runEnv is the environment that gives a run its id (its containers'
// label).
func runEnv(id string) []string { return []string{"RPCBENCH_RUN_ID=" + id} }

// noneLeft fails when a responder of a finished run whose results went to
// out is still running (its ledger is under out), or a container of run id.
func noneLeft(t *testing.T, out, id string) {
	t.Helper()
	ps, _ := exec.Command("pgrep", "-af", "rpcbench serve").Output()
	for _, l := range strings.Split(strings.TrimSpace(string(ps)), "\n") {
		if strings.Contains(l, out) && !strings.Contains(l, "pgrep") {
			t.Errorf("left running: %s", l)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	left, err := broker.ListLabelled(ctx, id, false)
	if err != nil {
		t.Logf("containers: %v", err)
	}
	for _, id := range left {
		t.Errorf("container left behind: %.12s", id)
	}
}
