package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// childrenServing lists the pids of pid's children whose command line is
// `rpcbench serve --driver driver ...`.
func childrenServing(pid int, driver string) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range procs {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		dir := filepath.Dir(st)
		cl, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		if strings.Contains(string(cl), "serve\x00--driver\x00"+driver+"\x00") {
			n, _ := strconv.Atoi(filepath.Base(dir))
			out = append(out, n)
		}
	}
	return out
}

// TestResponderProcess: by default each driver's responder runs as its own
// process (a `serve` child of the run), the results say so, and the child
// is gone when the run ends, also when the run is interrupted.
func TestResponderProcess(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(rpcbench(t), "run", "--drivers", "tcp", "--duration", "1m", "--warmup", "0s", "--settle", "0s", "--concurrency", "1", "--out", out)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "[1/1]") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	kids := childrenServing(cmd.Process.Pid, "tcp")
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, stderr.String())
	}
	if len(kids) != 1 {
		t.Fatalf("while the cell ran the run had %d `serve --driver tcp` children, want 1", len(kids))
	}
	if err := syscall.Kill(kids[0], 0); err == nil {
		t.Fatalf("responder process %d still alive after the run ended", kids[0])
	}
	run := driverstest.ReadResults(t, out)
	if run.Responder != "process" || len(run.Cells) != 1 || run.Cells[0].Counts.OK == 0 {
		t.Fatalf("responder=%q cells=%+v", run.Responder, run.Cells)
	}
}

// TestResponderInProcess: --responder in-process runs and says so.
func TestResponderInProcess(t *testing.T) {
	out := t.TempDir()
	r := runBin(t, "run", "--drivers", "tcp", "--duration", "300ms", "--warmup", "0s", "--settle", "0s", "--concurrency", "1", "--responder", "in-process", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if run := driverstest.ReadResults(t, out); run.Responder != "in-process" || run.Cells[0].Counts.OK == 0 {
		t.Fatalf("responder=%q cells=%+v", run.Responder, run.Cells)
	}
}

// TestCostPerCall: every cell records the CPU each process spent per call
// in its window: the callers' process and the responder's apart, or
// together when the responder runs in-process.
func TestCostPerCall(t *testing.T) {
	for _, tc := range []struct {
		where string
		roles []string
		segs  float64 // data segments each role sends per call
	}{{"process", []string{"caller", "responder"}, 1}, {"in-process", []string{"caller+responder"}, 2}} {
		out := t.TempDir()
		r := runBin(t, "run", "--drivers", "tcp", "--duration", "1s", "--warmup", "100ms", "--settle", "0s", "--concurrency", "1", "--responder", tc.where, "--out", out)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		c := driverstest.ReadResults(t, out).Cells[0]
		if c.Cost == nil || c.Cost.Calls != c.Counts.OK+c.Counts.Failed() || c.Cost.WindowSeconds < 0.9 {
			t.Fatalf("%s: cost %+v, counts %+v", tc.where, c.Cost, c.Counts)
		}
		if len(c.Cost.CPUUsPerCall) != len(tc.roles) {
			t.Fatalf("%s: roles %v, want %v", tc.where, c.Cost.CPUUsPerCall, tc.roles)
		}
		for _, role := range tc.roles {
			// a call costs each side at least a read and a write syscall
			if us := c.Cost.CPUUsPerCall[role]; us <= 0.5 {
				t.Errorf("%s: %s %vµs of CPU per call", tc.where, role, us)
			}
			// one caller, one connection: each call is one request
			// segment and one reply segment; the window's edges are read
			// by a timer, late on a loaded machine, hence the margin (a
			// socket missed or counted twice is off by a factor of 2)
			f, ok := c.Cost.SegmentsPerCall[role]
			if !ok || f.Sent < tc.segs*0.85 || f.Sent > tc.segs*1.2 || f.Received < tc.segs*0.85 || f.Received > tc.segs*1.2 {
				t.Errorf("%s: %s data segments per call %+v (counted: %v), want %v each way", tc.where, role, f, ok, tc.segs)
			}
			// a 64-byte payload and its frame header, each way
			if b := c.Cost.BytesPerCall[role]; b.Sent < 64*tc.segs || b.Received < 64*tc.segs {
				t.Errorf("%s: %s bytes per call %+v", tc.where, role, b)
			}
		}
	}
}

// Every ok reply carries the time from its send to the responder's handler
// start, by this host's clock: less than the whole call, more than
// nothing, for a direct driver and through a broker; and the broker's
// own sockets are counted as the broker's.
func TestQueueDelay(t *testing.T) {
	out := t.TempDir()
	r := runBin(t, "run", "--drivers", "tcp,nats:core", "--duration", "500ms", "--warmup", "100ms", "--settle", "0s", "--concurrency", "1", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	if len(run.Cells) != 2 {
		t.Fatalf("%d cells", len(run.Cells))
	}
	for _, c := range run.Cells {
		q := c.QueueDelay
		if q == nil || q.Count < c.Counts.OK*99/100 || q.P50 <= 0 || q.P50 >= c.Latency.P50 {
			t.Fatalf("%s: queue delay %+v, latency p50 %vµs, %d ok calls", c.Key, q, c.Latency.P50, c.Counts.OK)
		}
		if c.Driver != "nats" {
			continue
		}
		// through the broker, one caller: the caller and the responder
		// each send one segment a call, the broker two (the request on to
		// the responder, the reply back to the caller), all counted from
		// the kernel's sockets of each role's processes
		if c.Cost == nil {
			t.Fatalf("%s: no cost", c.Key)
		}
		for role, want := range map[string]float64{"caller": 1, "responder": 1, "broker": 2} {
			f, ok := c.Cost.SegmentsPerCall[role]
			if !ok || f.Sent < want*0.85 || f.Sent > want*1.2 {
				t.Errorf("%s: %s sends %+v data segments a call (counted: %v), want %v", c.Key, role, f, ok, want)
			}
		}
	}
}
