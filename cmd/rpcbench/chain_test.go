package main

import (
	"fmt"
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

// TestChainHopDelay: with network, a chain's onward hops cross the delay
// as its first does: a direct responder dials its next hop through a
// proxy of its own, a broker driver's through its proxies to the broker.
// Each onward hop of a sync chain then adds its service time and its
// traversals of the delay (2 for tcp, 4 for NATS), not the service time
// alone.
func TestChainHopDelay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := filepath.Join(dir, "c.yaml")
	os.WriteFile(sc, []byte("name: c\ndrivers:\n  - tcp\n  - name: nats\n    variants: [core]\npayloads: [64]\nconcurrency: [1]\nservice_time: [1ms]\nduration: 500ms\nwarmup: 100ms\nsettle: 0s\nchain:\n  depth: [1, 3]\nnetwork:\n  one_way_delay: [1ms]\n"), 0o644)
	out := filepath.Join(dir, "out")
	r := runBin(t, "run", "--scenario", sc, "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	p50 := map[string]float64{}
	for _, c := range run.Cells {
		if c.Chain == nil || c.Hop == nil || c.Counts.OK == 0 || c.Counts.Started != c.Counts.OK {
			t.Fatalf("%s: chain %+v hop %+v counts %+v errors %v, want every call ok through the proxy", c.Key, c.Chain, c.Hop, c.Counts, c.Errors)
		}
		p50[fmt.Sprintf("%s/%d", c.Driver, c.Chain.Depth)] = c.Latency.P50
	}
	for d, traversals := range map[string]float64{"tcp": 2, "nats": 4} {
		// two onward hops, each 1 ms of work and its traversals of 1 ms
		added, want := p50[d+"/3"]-p50[d+"/1"], 2*(1+traversals)*1000
		if added < 0.9*want {
			t.Errorf("%s: depth 3 p50 %.0fµs, depth 1 %.0fµs: the onward hops added %.0fµs, want at least %.0fµs (their work and %v traversals of the delay each)", d, p50[d+"/3"], p50[d+"/1"], added, 0.9*want, traversals)
		}
		t.Logf("%s: onward hops added %.0fµs (%.0fµs by design)", d, added, want)
	}
}
