package rocketmq_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

func rpcbenchBin(t *testing.T) string { return driverstest.Binary(t) }

func runRpcbench(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, rpcbenchBin(t), args...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Both variants end to end through `rpcbench run`, on brokers rpcbench
// starts itself (the container where Docker answers and the image exists),
// and nothing left running afterwards.
func TestRunBothVariants(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Getenv("RPCBENCH_ROCKETMQ") == "" {
		// fails in CI, skips elsewhere, when no broker can start here
		if _, err := broker.RocketMQSource(context.Background()); err != nil {
			brokerFailed(t, err)
		}
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	log, err := runRpcbench(t, ctx, "run", "--drivers", "rocketmq:async-flush,rocketmq:sync-flush",
		"--concurrency", "1,8", "--duration", "1s", "--warmup", "500ms", "--broker-warmup", "2s", "--settle", "3s", "--timeout", "5s",
		"--require-brokers", "-q", "-o", out)
	if err != nil {
		t.Fatalf("rpcbench run: %v\n%s", err, log)
	}
	r := driverstest.ReadResults(t, out)
	driverstest.CheckWarmups(t, r, 3)
	if len(r.Cells) != 4 || len(r.Skipped) != 0 {
		t.Fatalf("cells %d, skipped %+v\n%s", len(r.Cells), r.Skipped, log)
	}
	for _, c := range r.Cells {
		if c.Error != "" || c.Counts.OK == 0 || c.Counts.OK != c.Counts.Started {
			t.Errorf("cell %s/%s: error %q counts %+v", c.Driver, c.Variant, c.Error, c.Counts)
		}
	}
	flushes := map[string]bool{}
	for _, b := range r.Environment.Brokers {
		if b.Kind != "rocketmq" || b.Version == "" || b.Details["jvm"] == "" {
			t.Errorf("broker manifest %+v", b)
		}
		flushes[b.Details["flush"]] = true
		// Each fresh broker was warmed up before its first cell.
		if w := b.Details["warmup"]; !strings.HasPrefix(w, "2s with 32 callers") || !strings.Contains(w, " 0 failed") {
			t.Errorf("broker %s warm-up: %q", b.URL, w)
		}
		// Nothing left: the name server no longer answers, the container
		// is gone.
		if c, err := net.DialTimeout("tcp", b.URL, time.Second); err == nil {
			c.Close()
			t.Errorf("broker %s still answers after the run", b.URL)
		}
		if name := b.Details["container"]; name != "" {
			ids, err := exec.Command("docker", "ps", "-aq", "--filter", "name=^"+name+"$").Output()
			if err != nil || strings.TrimSpace(string(ids)) != "" {
				t.Errorf("container %s left after the run (%q, %v)", name, ids, err)
			}
		}
		if os.Getenv("CI") == "true" && dockerAnswers() && b.Source != "container" {
			t.Errorf("CI with Docker: broker source %q, want container", b.Source)
		}
	}
	if !flushes["ASYNC_FLUSH"] || !flushes["SYNC_FLUSH"] {
		t.Errorf("flush modes of the brokers: %v", flushes)
	}
	t.Logf("brokers: %+v", r.Environment.Brokers)
}

func dockerAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "info").Run() == nil
}

// A broker (external, --broker) killed mid-run: the run still ends, writes
// its results, and the calls after the kill are counted as failures.
func TestRunBrokerKilledMidRun(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	if testing.Short() {
		t.Skip("-short")
	}
	r := ownBroker(t, "async-flush")
	driverstest.BrokerKilledMidRun(t, "rocketmq:async-flush", "rocketmq="+r.URL, 8*time.Second, 4*time.Second, r.Kill)
}
