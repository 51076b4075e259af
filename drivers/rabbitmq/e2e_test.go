package rabbitmq

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// End-to-end tests through the rpcbench binary (driverstest.Binary).

func rpcbenchBin(t *testing.T) string { return driverstest.Binary(t) }

// childRunID gives a child rpcbench its own run id (RPCBENCH_RUN_ID), so
// its containers can be counted apart from everyone else's.
func childRunID() string {
	return "e2e" + strings.ToLower(randomName(""))[:10]
}

// runContainers counts the labelled containers of run id.
func runContainers(t *testing.T, id string) int {
	t.Helper()
	ids, err := broker.ListLabelled(context.Background(), id, true)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// Every variant end to end through `rpcbench run`, on a broker rpcbench
// starts and removes itself.
func TestRunAllVariants(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	if testing.Short() {
		t.Skip("-short")
	}
	needDocker(t)
	needBroker(t) // the image exists and a container starts
	runID := childRunID()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rpcbenchBin(t), "run", "--drivers", "rabbitmq",
		"--concurrency", "1,8", "--duration", "1s", "--warmup", "300ms", "--settle", "3s", "--timeout", "5s",
		"--require-brokers", "-q", "-o", out)
	cmd.Env = append(os.Environ(), "RPCBENCH_RUN_ID="+runID)
	cmd.WaitDelay = 10 * time.Second
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rpcbench run: %v\n%s", err, log)
	}
	r := driverstest.ReadResults(t, out)
	driverstest.CheckWarmups(t, r, 3)
	if len(r.Cells) != 12 || len(r.Skipped) != 0 {
		t.Fatalf("cells %d, skipped %+v\n%s", len(r.Cells), r.Skipped, log)
	}
	seen := map[string]bool{}
	for _, c := range r.Cells {
		seen[c.Variant] = true
		if c.Error != "" || c.Counts.OK == 0 || c.Counts.OK != c.Counts.Started {
			t.Errorf("cell %s/%s: error %q counts %+v", c.Driver, c.Variant, c.Error, c.Counts)
		}
	}
	if len(seen) != 6 {
		t.Errorf("variants run: %v", seen)
	}
	found := false
	for _, b := range r.Environment.Brokers {
		if b.Kind == "rabbitmq" {
			found = true
			if b.Source != "container" || b.Image == "" || b.Version == "" || !strings.Contains(b.URL, "127.0.0.1") {
				t.Errorf("broker recorded as %+v", b)
			}
		}
	}
	if !found {
		t.Errorf("no rabbitmq broker in the environment manifest")
	}
	if got := runContainers(t, runID); got != 0 {
		t.Fatalf("%d containers of the run left after it", got)
	}
}

// Ctrl-C during a run: partial results, and the broker container removed.
func TestRunInterrupted(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	if testing.Short() {
		t.Skip("-short")
	}
	needDocker(t)
	needBroker(t)
	runID := childRunID()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rpcbenchBin(t), "run", "--drivers", "rabbitmq:reply-queue/transient",
		"--concurrency", "4", "--duration", "10m", "--warmup", "0s", "--settle", "0s", "--timeout", "5s", "-q", "-o", out)
	cmd.Env = append(os.Environ(), "RPCBENCH_RUN_ID="+runID)
	cmd.WaitDelay = 10 * time.Second
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the broker container is up and calls flow: its log
	// shows the callers' connection.
	deadline := time.Now().Add(2 * time.Minute)
	for flowing := false; !flowing && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		ids, _ := broker.ListLabelled(ctx, runID, true)
		for _, id := range ids {
			logs, _ := exec.Command("docker", "logs", id).CombinedOutput()
			flowing = flowing || strings.Contains(string(logs), "rpcbench-caller-0")
		}
	}
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("interrupted run exited 0\n%s", log.String())
	}
	r := driverstest.ReadResults(t, out)
	if len(r.Cells) != 1 || r.Cells[0].Counts.OK == 0 {
		t.Fatalf("partial result: %+v\n%s", r.Cells, log.String())
	}
	if got := runContainers(t, runID); got != 0 {
		t.Fatalf("%d containers of the interrupted run left after it\n%s", got, log.String())
	}
}

// No Docker engine: the rabbitmq driver is skipped with the reason, and
// --require-brokers makes that an error (exit 1).
func TestRunNoDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(extra ...string) (string, error) {
		args := append([]string{"run", "--drivers", "rabbitmq:direct-reply-to/transient", "--concurrency", "1",
			"--duration", "1s", "--warmup", "0s", "--settle", "0s", "-q", "-o", out}, extra...)
		cmd := exec.CommandContext(ctx, rpcbenchBin(t), args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///nonexistent/rpcbench-no-docker.sock")
		cmd.WaitDelay = 10 * time.Second
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	log, err := run()
	if err != nil {
		t.Fatalf("run without Docker: %v\n%s", err, log)
	}
	r := driverstest.ReadResults(t, out)
	if len(r.Skipped) != 1 || r.Skipped[0].Reason != broker.NoEngineReason {
		t.Fatalf("skipped %+v, want the reason %q\n%s", r.Skipped, broker.NoEngineReason, log)
	}
	if !strings.Contains(log, broker.NoEngineReason) {
		t.Errorf("summary does not show the reason:\n%s", log)
	}
	log, err = run("--require-brokers")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("--require-brokers without Docker: %v (want exit 1)\n%s", err, log)
	}
}
