package kafka_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// End-to-end tests through the rpcbench binary (driverstest.Binary).

type resultFile struct {
	Environment struct {
		Brokers []struct {
			Kind, Source, URL, Image, Version string
			Details                           map[string]string
		} `json:"brokers"`
	} `json:"environment"`
	Cells []struct {
		Driver, Variant, Broker, Error string
		Options                        map[string]string
		Counts                         struct {
			Started   int64 `json:"started"`
			OK        int64 `json:"ok"`
			Timeout   int64 `json:"timeout"`
			Transport int64 `json:"transport_error"`
		} `json:"counts"`
	} `json:"cells"`
	Skipped []struct{ Driver, Variant, Reason string } `json:"skipped"`
}

func readResult(t *testing.T, out string) *resultFile {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(out, "*", "result.json"))
	if len(files) != 1 {
		t.Fatalf("want one result.json under %s, found %v", out, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var r resultFile
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func runRpcbench(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, driverstest.Binary(t), args...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Every variant end to end through `rpcbench run`, on a broker rpcbench
// starts itself (the container where Docker answers and the image exists),
// warmed up before the first cell, and nothing left running afterwards.
func TestRunAllVariants(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := broker.KafkaSource(context.Background()); err != nil {
		brokerFailed(t, err) // fails in CI, skips elsewhere
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	log, err := runRpcbench(t, ctx, "run", "--drivers", "kafka:acks-all,kafka:acks-leader,kafka:sync-flush",
		"--concurrency", "1,8", "--duration", "1s", "--warmup", "500ms", "--broker-warmup", "2s", "--settle", "3s", "--timeout", "5s",
		"--require-brokers", "-q", "-o", out)
	if err != nil {
		t.Fatalf("rpcbench run: %v\n%s", err, log)
	}
	r := readResult(t, out)
	driverstest.CheckWarmups(t, driverstest.ReadResults(t, out), 3)
	if len(r.Cells) != 6 || len(r.Skipped) != 0 {
		t.Fatalf("cells %d, skipped %+v\n%s", len(r.Cells), r.Skipped, log)
	}
	for _, c := range r.Cells {
		if c.Error != "" || c.Counts.OK == 0 || c.Counts.OK != c.Counts.Started {
			t.Errorf("cell %s/%s: error %q counts %+v", c.Driver, c.Variant, c.Error, c.Counts)
		}
		if c.Options["linger"] != "0s" {
			t.Errorf("cell %s/%s: options %v, want linger=0s recorded", c.Driver, c.Variant, c.Options)
		}
	}
	if len(r.Environment.Brokers) != 1 {
		t.Fatalf("brokers %+v: one broker serves every variant", r.Environment.Brokers)
	}
	for _, b := range r.Environment.Brokers {
		if b.Kind != "kafka" || b.Version != broker.KafkaVersion || b.Details["jvm"] == "" || b.Details["startup"] == "" {
			t.Errorf("broker manifest %+v", b)
		}
		if w := b.Details["warmup"]; !strings.HasPrefix(w, "2s with ") || !strings.Contains(w, " 0 failed") {
			t.Errorf("broker %s warm-up: %q", b.URL, w)
		}
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
	}
	t.Logf("brokers: %+v", r.Environment.Brokers)
}

// A broker (external, --broker) killed mid-run: the run still ends, writes
// its results, and the calls after the kill are counted as failures.
func TestRunBrokerKilledMidRun(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	if testing.Short() {
		t.Skip("-short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := broker.StartKafka(ctx, broker.StartOptions{})
	if err != nil {
		brokerFailed(t, err)
	}
	defer k.Stop(context.Background())
	driverstest.BrokerKilledMidRun(t, "kafka:acks-all", "kafka="+k.URL, 8*time.Second, 4*time.Second, k.Kill)
}
