package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/results"
)

// TestHopDelay: with network.one_way_delay every cell runs once per delay
// through the delay proxy, records what it forwarded and the delay it
// achieved (never less than asked), and cells at different delays have
// different keys.
func TestHopDelay(t *testing.T) {
	run := runHop(t, "name: hop\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1]\nduration: 500ms\nwarmup: 100ms\nsettle: 0s\nnetwork:\n  one_way_delay: [0, 300us]\n")
	if len(run.Cells) != 2 || run.Cells[0].Key == run.Cells[1].Key {
		t.Fatalf("cells: %d, keys %q", len(run.Cells), []string{run.Cells[0].Key, run.Cells[len(run.Cells)-1].Key})
	}
	for i, want := range []string{"0s", "300µs"} {
		c := run.Cells[i]
		h := c.Hop
		if h == nil || h.OneWayDelay != want || h.Bytes[0] == 0 || h.Bytes[1] == 0 || h.Chunks[0] < c.Counts.OK {
			t.Fatalf("cell %d hop %+v (ok %d)", i, h, c.Counts.OK)
		}
		if want == "0s" {
			if h.Achieved != nil {
				t.Fatalf("achieved delays at 0: %+v", h.Achieved)
			}
			continue
		}
		if h.Achieved == nil || h.Achieved.Min < float64(300*time.Microsecond/time.Microsecond)*0.999 {
			t.Fatalf("achieved %+v: a chunk forwarded before 300µs", h.Achieved)
		}
	}
	if run.Scenario.Network == nil || len(run.Scenario.Network.OneWayDelay) != 2 {
		t.Fatalf("scenario record: %+v", run.Scenario.Network)
	}
}

// A broker driver's cells put a delay proxy on both its hops: the
// callers' to the broker and the responder's. Every call then crosses the
// delay four times (caller to broker, broker to responder and back), so
// p50 grows by about 4 x the one-way delay, against 2 for direct RPC.
// Kafka's clients connect to the listener the broker advertises and
// RocketMQ's to the broker address its name server gives them, not to the
// URL's: the proxies stand in front of those too (drivers.Rerouter), so
// their calls cross the delay at least four times as well. They cross it
// more often: their consumers pull (RocketMQ about 8.5 times, Kafka about
// 5.6, at 1 ms here), so only NATS, which pushes, is held to about 4.
func TestHopDelayBroker(t *testing.T) {
	for _, tc := range []struct {
		driver, variant string
		most            float64
	}{
		{"nats", "core", 5.5},
		{"kafka", "acks-leader", 12},
		{"rocketmq", "async-flush", 12},
	} {
		t.Run(tc.driver, func(t *testing.T) {
			if tc.driver != "nats" {
				needDocker(t)
			}
			run := runHop(t, "name: hop\ndrivers: [{name: "+tc.driver+", variants: ["+tc.variant+"]}]\npayloads: [64]\nconcurrency: [1]\nduration: 1s\nwarmup: 200ms\nbroker_warmup: 3s\nsettle: 0s\nnetwork:\n  one_way_delay: [0, 1ms]\n")
			if len(run.Cells) != 2 {
				t.Fatalf("%d cells, skipped %+v", len(run.Cells), run.Skipped)
			}
			for _, c := range run.Cells {
				// towards the broker: every request from a caller and
				// every reply from the responder, through one proxy or
				// the other
				if h := c.Hop; h == nil || c.Counts.OK == 0 || h.Chunks[0] < 2*c.Counts.OK || h.Chunks[1] < 2*c.Counts.OK {
					t.Fatalf("cell %s hop %+v, %d ok calls: not both hops proxied", c.Key, c.Hop, c.Counts.OK)
				}
			}
			slope := (run.Cells[1].Latency.P50 - run.Cells[0].Latency.P50) / 1000
			if slope < 3.3 || slope > tc.most {
				t.Fatalf("p50 %.0fµs at 0, %.0fµs at 1ms one way: %.2f traversals, want 3.3 to %.1f", run.Cells[0].Latency.P50, run.Cells[1].Latency.P50, slope, tc.most)
			}
			t.Logf("p50 %.0fµs at 0, %.0fµs at 1ms one way: %.2f traversals", run.Cells[0].Latency.P50, run.Cells[1].Latency.P50, slope)
		})
	}
}

// runHop runs the scenario yaml and returns its results.
func runHop(t *testing.T, yaml string) *results.Run {
	t.Helper()
	dir := t.TempDir()
	sc := filepath.Join(dir, "hop.yaml")
	os.WriteFile(sc, []byte(yaml), 0o644)
	out := filepath.Join(dir, "out")
	r := runBin(t, "run", "--scenario", sc, "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	return driverstest.ReadResults(t, out)
}

// TestHopSettle: a unit whose first cell runs through the delay proxy
// settles through it too: its settling windows see the delay (at least two
// one-way traversals per call for a direct driver, four for a broker's),
// not loopback.
func TestHopSettle(t *testing.T) {
	run := runHop(t, "name: hop\ndrivers: [tcp, {name: nats, variants: [core]}]\npayloads: [64]\nconcurrency: [1]\nduration: 300ms\nwarmup: 100ms\nsettle: 3s\nnetwork:\n  one_way_delay: [1ms]\n")
	if len(run.Warmups) != 2 {
		t.Fatalf("%d settlings, want 2", len(run.Warmups))
	}
	for _, w := range run.Warmups {
		floor := 2000.0 // µs: two traversals of 1 ms
		if w.Driver == "nats" {
			floor = 4000
		}
		if len(w.Windows) == 0 {
			t.Fatalf("%s: no settling window: %s", w.Driver, w.Note)
		}
		for _, win := range w.Windows {
			if win.P50 < floor {
				t.Errorf("%s: settling window p50 %.0fµs, below the %.0fµs its calls cross through the proxy", w.Driver, win.P50, floor)
			}
		}
	}
}

// TestPhasesSettle: a unit whose cells run a schedule of phases settles
// at the schedule's base rate, not by running the whole schedule (its
// burst included) in every settling window.
func TestPhasesSettle(t *testing.T) {
	run := runHop(t, "name: burst\ndrivers: [tcp]\npayloads: [64]\nphases:\n  - {duration: 500ms, rate: 200}\n  - {duration: 200ms, rate: 2000}\n  - {duration: 300ms, rate: 200}\nmax_in_flight: 256\nwarmup: 0s\nsettle: 4s\n")
	if len(run.Warmups) != 1 || len(run.Warmups[0].Windows) == 0 {
		t.Fatalf("settlings %+v", run.Warmups)
	}
	for _, win := range run.Warmups[0].Windows {
		// a window at the base rate for its second holds about 200 calls;
		// the schedule's mean is 560/s
		if win.Throughput > 300 {
			t.Fatalf("settling window at %.0f calls/s: it ran the schedule, not its base rate of 200/s (%+v)", win.Throughput, run.Warmups[0])
		}
	}
}
