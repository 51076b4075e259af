package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// TestChain runs call chains as a user does, through a direct driver and
// a broker driver, each responder in its own process: every call of every
// cell succeeds (its reply says every hop ran, or the first of an
// asynchronous chain), the cells record their chain, and a synchronous
// chain's caller waits at least every hop's service time.
func TestChain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := filepath.Join(dir, "c.yaml")
	os.WriteFile(sc, []byte("name: c\ndrivers:\n  - tcp\n  - name: nats\n    variants: [core]\npayloads: [64]\nconcurrency: [2]\nservice_time: [3ms]\nduration: 400ms\nwarmup: 100ms\nsettle: 0s\nchain:\n  depth: [1, 3]\n  mode: [sync, async-tail]\n"), 0o644)
	out := filepath.Join(dir, "out")
	r := runBin(t, "run", "--scenario", sc, "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	if ch := run.Scenario.Chain; ch == nil || len(ch.Depth) != 2 || len(ch.Mode) != 2 {
		t.Fatalf("scenario record chain %+v", ch)
	}
	p50 := map[string]float64{}
	for _, c := range run.Cells {
		if c.Chain == nil {
			t.Fatalf("%s: no chain recorded", c.Key)
		}
		if c.Counts.OK == 0 || c.Counts.Started != c.Counts.OK {
			t.Errorf("%s: counts %+v errors %v, want every call ok", c.Key, c.Counts, c.Errors)
		}
		p50[c.Driver+"/"+c.Chain.Mode+"/"+string(rune('0'+c.Chain.Depth))] = c.Latency.P50
	}
	if len(run.Cells) != 8 {
		t.Fatalf("%d cells, want 8 (2 drivers × 2 depths × 2 modes)", len(run.Cells))
	}
	hop := float64(3 * time.Millisecond / time.Microsecond)
	for _, d := range []string{"tcp", "nats"} {
		// by design: three hops of 3 ms each, one after another
		if got := p50[d+"/sync/3"]; got < 3*hop {
			t.Errorf("%s: sync depth 3 p50 %.0fµs, below three hops' service time %.0fµs", d, got, 3*hop)
		}
		if p50[d+"/async-tail/3"] >= p50[d+"/sync/3"] {
			t.Errorf("%s: async-tail depth 3 p50 %.0fµs not below sync's %.0fµs", d, p50[d+"/async-tail/3"], p50[d+"/sync/3"])
		}
	}
}
