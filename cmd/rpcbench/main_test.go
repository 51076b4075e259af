package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// rpcbench returns the built binary (driverstest.Binary).
func rpcbench(t *testing.T) string { return driverstest.Binary(t) }

type result struct {
	code           int
	stdout, stderr string
}

func runBin(t *testing.T, args ...string) result {
	t.Helper()
	return runBinEnv(t, nil, args...)
}

// runBinEnv is runBin with env added to the test's environment (a parallel
// test cannot use t.Setenv).
func runBinEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rpcbench(t), args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, so.String(), se.String()}
}

func TestRunEndToEnd(t *testing.T) {
	out := t.TempDir()
	r := runBin(t, "run", "--drivers", "tcp,grpc", "--duration", "400ms", "--warmup", "100ms", "--concurrency", "1,4", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	path, run := driverstest.ResultsFile(t, out), driverstest.ReadResults(t, out)
	if !run.Complete || len(run.Cells) != 6 {
		t.Fatalf("complete=%v, %d cells, want 6", run.Complete, len(run.Cells))
	}
	for _, c := range run.Cells {
		if c.Error != "" || c.Counts.OK == 0 || c.Counts.Failed() != 0 || c.Latency.P50 <= 0 || c.Throughput <= 0 {
			t.Errorf("cell %s: %+v error %q", c.Key, c.Counts, c.Error)
		}
		if c.Counts.Started != c.Counts.OK+c.Counts.Failed() {
			t.Errorf("cell %s: counts do not add up: %+v", c.Key, c.Counts)
		}
	}
	if !strings.Contains(r.stdout, "p99.9") || !strings.Contains(r.stdout, path) {
		t.Fatalf("summary table or path missing from stdout:\n%s", r.stdout)
	}
	if run.Environment.Libraries["google.golang.org/grpc"] == "" || run.Environment.Cores < 1 {
		t.Fatalf("environment manifest incomplete: %+v", run.Environment)
	}
}

// A driver entry's own duration sets its cells' measured window, and the
// results' record of the scenario carries it.
func TestDriverDuration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := filepath.Join(dir, "d.yaml")
	os.WriteFile(sc, []byte("name: d\ndrivers:\n  - tcp\n  - name: grpc\n    variants: [unary]\n    duration: 900ms\npayloads: [64]\nconcurrency: [1]\nduration: 300ms\nwarmup: 100ms\nsettle: 0s\n"), 0o644)
	out := filepath.Join(dir, "out")
	r := runBin(t, "run", "--scenario", sc, "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	want := map[string]float64{"tcp": 0.3, "grpc": 0.9}
	if len(run.Cells) != 2 {
		t.Fatalf("%d cells, want 2", len(run.Cells))
	}
	for _, c := range run.Cells {
		if math.Abs(c.Seconds-want[c.Driver]) > 0.05 {
			t.Errorf("%s: measured window %.3fs, want %.1fs", c.Driver, c.Seconds, want[c.Driver])
		}
	}
	if d := run.Scenario.Drivers; len(d) != 2 || d[0].Duration != "" || d[1].Duration != "900ms" {
		t.Errorf("scenario record drivers %+v", d)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1]\nrepeat: lots\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("name: x\ndrivers:\n  - tcp\n  - name: carrier-pigeon\npayloads: [64]\nconcurrency: [1]\n"), 0o644)
	badOpt := filepath.Join(dir, "opt.yaml")
	os.WriteFile(badOpt, []byte("name: x\ndrivers:\n  - name: tcp\n    options: {connections: 0}\npayloads: [64]\nconcurrency: [1]\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--duration", "soon"}, `--duration: "soon": want a duration`},
		{[]string{"run", "--scenario", filepath.Join(dir, "missing.yaml")}, "missing.yaml: no such file"},
		{[]string{"run", "--scenario", bad}, bad + `:5: repeat: want a whole number from 1 to 100, got "lots"`},
		{[]string{"run", "--scenario", unknown}, unknown + `:4: drivers[1].name: unknown driver "carrier-pigeon"`},
		{[]string{"run", "--scenario", badOpt}, badOpt + `:3: drivers[0].options: tcp: option connections="0"`},
		{[]string{"run", "--drivers", "tcp:fast"}, `--drivers: tcp: unknown variant "fast"`},
		{[]string{"run", "--payload", "-3"}, `--payload: "-3" is not a payload size`},
		{[]string{"run", "--broker", "pulsar=x"}, `--broker "pulsar=x": unknown broker kind "pulsar"`},
		{[]string{"run", "--broker", "activemq=x"}, `--broker activemq=x: scheme "" is not stomp: want stomp://[user:pass@]HOST:PORT`},
		{[]string{"run", "--target", "127.0.0.1:1"}, "--target: a remote responder serves one driver"},
		{[]string{"run", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"run", "extra"}, "rpcbench run: unknown command"},
		{[]string{"launch"}, `unknown command "launch"`},
		{[]string{"serve"}, "serve: --driver is required"},
		{[]string{"serve", "--driver", "tcp", "--option", "connections=x"}, `tcp: option connections="x"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := filepath.Join(dir, "out")
			r := runBin(t, append(tc.args, "--out", out)...)
			if tc.args[0] != "run" {
				r = runBin(t, tc.args...)
			}
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("stderr %q\nwant one line containing %q", r.stderr, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("bad input wrote %s", out)
			}
		})
	}
}

// TestServeAndRun runs caller and responder as two processes.
func TestServeAndRun(t *testing.T) {
	for _, driver := range []string{"tcp", "grpc", "http", "netrpc", "connect", "thrift", "rpcx"} {
		t.Run(driver, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			serve := exec.CommandContext(ctx, rpcbench(t), "serve", "--driver", driver, "--listen", "127.0.0.1:0")
			stdout, err := serve.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			serve.Stderr = &stderr
			if err := serve.Start(); err != nil {
				t.Fatal(err)
			}
			defer serve.Process.Kill()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("serve printed no address: %v %s", err, stderr.String())
			}
			fields := strings.Fields(line)
			addr := fields[len(fields)-1]
			if !strings.HasPrefix(line, "serving "+driver+"/") || !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Fatalf("serve said %q", line)
			}
			out := t.TempDir()
			r := runBin(t, "run", "--drivers", driver, "--target", addr, "--duration", "300ms", "--warmup", "100ms", "--settle", "0s", "--concurrency", "2", "--out", out, "-q")
			if r.code != 0 {
				t.Fatalf("run against serve: exit %d\n%s", r.code, r.stderr)
			}
			run := driverstest.ReadResults(t, out)
			for _, c := range run.Cells {
				if c.Counts.OK == 0 || c.Counts.Failed() != 0 {
					t.Fatalf("cell %s: %+v", c.Key, c.Counts)
				}
				if c.QueueDelay != nil {
					t.Fatalf("cell %s: a queue delay from a remote responder's clock: %+v", c.Key, c.QueueDelay)
				}
			}
			serve.Process.Signal(syscall.SIGINT)
			if err := serve.Wait(); err != nil {
				t.Fatalf("serve did not exit cleanly on Ctrl-C: %v %s", err, stderr.String())
			}
		})
	}
}

// TestInterrupt: Ctrl-C stops the run and writes a valid, incomplete result.
func TestInterrupt(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(rpcbench(t), "run", "--drivers", "tcp", "--duration", "1m", "--warmup", "0s", "--concurrency", "1", "--out", out)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// wait for the run to be under way, then interrupt it
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "[1/1]") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, stderr.String())
	}
	run := driverstest.ReadResults(t, out)
	if run.Complete || run.Incomplete != "interrupted" || len(run.Cells) != 1 || !run.Cells[0].Incomplete || run.Cells[0].Counts.OK == 0 {
		t.Fatalf("complete=%v reason=%q cells=%+v", run.Complete, run.Incomplete, run.Cells)
	}
}

func TestDriversList(t *testing.T) {
	r := runBin(t, "drivers")
	if r.code != 0 || !strings.Contains(r.stdout, "tcp (direct)") || !strings.Contains(r.stdout, "variant  stream") {
		t.Fatalf("exit %d:\n%s", r.code, r.stdout)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a child process's output
// is being copied into it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMainCommandTable: every subcommand is registered once, from the
// table, under the name the table gives it.
func TestMainCommandTable(t *testing.T) {
	root := newRootCmd()
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.name] {
			t.Errorf("%s is in the table twice", c.name)
		}
		seen[c.name] = true
		if got := c.new().Name(); got != c.name {
			t.Errorf("table entry %s builds the command %s", c.name, got)
		}
		if sub, _, err := root.Find([]string{c.name}); err != nil || sub.Name() != c.name {
			t.Errorf("rpcbench %s: not registered (%v)", c.name, err)
		}
	}
	if n := len(root.Commands()); n != len(commands) {
		t.Errorf("root has %d subcommands, the table %d", n, len(commands))
	}
}
