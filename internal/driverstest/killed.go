package driverstest

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BrokerKilledMidRun runs `rpcbench run` of unit (DRIVER:VARIANT) at 4
// callers for duration against the broker given as brokerArg (KIND=URL),
// kills the broker with kill killAfter into the run, and checks that the
// run still ends and writes its results, and that its calls succeeded
// until the kill and then failed with timeouts or transport errors only.
func BrokerKilledMidRun(t *testing.T, unit, brokerArg string, duration, killAfter time.Duration, kill func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := t.TempDir()
	done := make(chan struct{})
	var log []byte
	var runErr error
	go func() {
		defer close(done)
		cmd := exec.CommandContext(ctx, Binary(t), "run", "--drivers", unit, "--broker", brokerArg,
			"--concurrency", "4", "--duration", duration.String(), "--warmup", "500ms", "--broker-warmup", "0s",
			"--settle", "0s", "--timeout", "1s", "-q", "-o", out)
		cmd.WaitDelay = 10 * time.Second
		log, runErr = cmd.CombinedOutput()
	}()
	// the run dials first: the kill comes once its cell has run a while
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if files, _ := filepath.Glob(filepath.Join(out, "*")); len(files) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(killAfter)
	if err := kill(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if ctx.Err() != nil {
		t.Fatalf("rpcbench run did not end after the broker was killed\n%s", log)
	}
	t.Logf("rpcbench run: %v", runErr)
	res := ReadResults(t, out)
	if len(res.Cells) != 1 {
		t.Fatalf("cells: %+v\n%s", res.Cells, log)
	}
	c := res.Cells[0].Counts
	if c.OK == 0 || c.Timeout+c.Transport == 0 || c.OK+c.Timeout+c.Transport != c.Started {
		t.Fatalf("counts %+v: want successes, then timeouts or transport errors only\n%s", c, log)
	}
}
