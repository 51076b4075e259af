package dubbo_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// End-to-end through the rpcbench binary (driverstest.Binary): the
// responder under `rpcbench serve`, whose stdout is its address line
// only, the caller under `rpcbench run --target`, the library's version in
// the results, and Ctrl-C handled by rpcbench's serve (its clean exit, not
// Dubbo-go's os.Exit).
func TestServeAndRunTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := driverstest.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "--driver", "dubbo", "--listen", "127.0.0.1:0")
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
	rd := bufio.NewReader(stdout)
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed no address: %v %s", err, stderr.String())
	}
	fields := strings.Fields(line)
	addr := fields[len(fields)-1]
	if !strings.HasPrefix(line, "serving dubbo/triple ") || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("serve said %q", line)
	}
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(rd)
		rest <- string(b)
	}()
	out := t.TempDir()
	run := exec.CommandContext(ctx, bin, "run", "--drivers", "dubbo", "--target", addr, "--duration", "300ms", "--warmup", "100ms", "--concurrency", "1,8", "--out", out, "-q")
	if log, err := run.CombinedOutput(); err != nil {
		t.Fatalf("run against serve: %v\n%s", err, log)
	}
	r := driverstest.ReadResults(t, out)
	if len(r.Cells) != 2 {
		t.Fatalf("cells %d", len(r.Cells))
	}
	for _, c := range r.Cells {
		if c.Driver != "dubbo" || c.Variant != "triple" || c.Counts.OK == 0 || c.Counts.Failed() != 0 {
			t.Fatalf("cell %s: %+v", c.Key, c.Counts)
		}
	}
	if v := r.Environment.Libraries["dubbo.apache.org/dubbo-go/v3"]; v != "v3.3.0" {
		t.Errorf("library version recorded %q, want v3.3.0 (libraries %v)", v, r.Environment.Libraries)
	}
	serve.Process.Signal(syscall.SIGINT)
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve did not exit cleanly on Ctrl-C: %v %s", err, stderr.String())
	}
	if s := <-rest; s != "" {
		t.Errorf("serve wrote more to stdout: %q", s)
	}
}
