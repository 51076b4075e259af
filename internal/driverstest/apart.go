package driverstest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
)

// ServeApart runs driver's responder (variant and options from cfg) in a
// process of its own, `rpcbench serve`, as a run does, and returns its
// address; the process is stopped when the test ends.
//
// A benchmark that compares two callers against one responder runs the
// responder apart: in the callers' process, the callers' goroutines change
// what the responder's cost. The Go runtime starts each new goroutine with
// a stack the size of the average it found at the last collection, over
// every goroutine of the process, so the stack depth of one side's callers
// decides how often the responder's goroutine per request (rpcx's,
// net/http's) must grow its stack: measured at 3.5% of the process's CPU
// for rpcx between the driver's callers and the plain loop's.
func ServeApart(t testing.TB, driver string, cfg drivers.Config) string {
	t.Helper()
	args := []string{"serve", "--driver", driver, "--listen", "127.0.0.1:0"}
	if cfg.Variant != "" {
		args = append(args, "--variant", cfg.Variant)
	}
	keys := make([]string, 0, len(cfg.Options))
	for k := range cfg.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--option", k+"="+cfg.Options[k])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second // then killed
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("rpcbench serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		rd := bufio.NewReader(stdout)
		line, _ := rd.ReadString('\n')
		lines <- line
		rd.WriteTo(io.Discard) // keep its stdout drained
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(time.Minute):
	}
	i := strings.LastIndex(line, " at ")
	if !strings.HasPrefix(line, "serving ") || i < 0 {
		t.Fatalf("rpcbench %s: no address on stdout (%q); stderr: %s", strings.Join(args, " "), line, stderr.String())
	}
	return strings.TrimSpace(line[i+len(" at "):])
}
