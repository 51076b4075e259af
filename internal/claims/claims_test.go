package claims

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

func judge(t *testing.T, id string, runs ...*results.Run) Judgement {
	t.Helper()
	doc := Judge(runs, []string{id})
	if len(doc.Claims) != 1 {
		t.Fatalf("%s: %d judgements", id, len(doc.Claims))
	}
	if _, err := Encode(doc); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return doc.Claims[0]
}

func want(t *testing.T, j Judgement, v Verdict, reason ...string) {
	t.Helper()
	if j.Verdict != v {
		t.Fatalf("%s: verdict %s, want %s; reason: %s", j.ID, j.Verdict, v, j.Reason)
	}
	for _, r := range reason {
		if !strings.Contains(j.Reason, r) {
			t.Fatalf("%s: reason %q lacks %q", j.ID, j.Reason, r)
		}
	}
}

func TestC1(t *testing.T) {
	tcp := reps("tcp", "mux", 1, 100, tight)
	want(t, judge(t, "C1", run("r", cat(tcp, reps("nats", "core", 1, 300, tight))...)), Supported)
	want(t, judge(t, "C1", run("r", cat(tcp, reps("nats", "core", 1, 150, tight))...)), Refuted)
	// 2× on average, but the interval includes 2
	want(t, judge(t, "C1", run("r", cat(tcp, reps("nats", "core", 1, 200, noisy))...)), Inconclusive, "inside the noise")
	want(t, judge(t, "C1", run("r", cat(tcp, reps("nats", "core", 1, 300, tight), reps("rabbitmq", "direct-reply-to/transient", 1, 120, tight))...)),
		Mixed, "holds for", "nats/core", "fails for", "rabbitmq/direct-reply-to/transient")
	// one repetition
	want(t, judge(t, "C1", run("r", cat(tcp[:1], reps("nats", "core", 1, 300, tight)[:1])...)), Inconclusive, "too few repetitions")
	// a generator-limited repetition
	bad := reps("nats", "core", 1, 300, tight)
	bad[1].Generator = &results.Generator{Limited: true, Reason: "late"}
	want(t, judge(t, "C1", run("r", cat(tcp, bad)...)), Inconclusive, "generator-limited")
	// failures over 0.1%
	bad = reps("nats", "core", 1, 300, tight)
	bad[0].ErrorRate = 0.01
	want(t, judge(t, "C1", run("r", cat(tcp, bad)...)), Inconclusive, "failed")
	// unsettled
	bad = reps("nats", "core", 1, 300, tight)
	bad[2].Unsettled = true
	want(t, judge(t, "C1", run("r", cat(tcp, bad)...)), Inconclusive, "(unsettled cells: 1)", "repetition 3: unsettled")
	// no broker at all: the skip reason is quoted
	r := run("r", tcp...)
	r.Skipped = []results.Skip{{Driver: "rabbitmq", Reason: "skipped: no Docker engine"}}
	want(t, judge(t, "C1", r), Inconclusive, "no Docker engine")
	// segment counts: judged where recorded, said in the notes where not
	segs := func(cs []results.Cell, perRole float64) []results.Cell {
		for i := range cs {
			cs[i].Cost = &results.Cost{CPUUsPerCall: map[string]float64{"caller": 1}, SegmentsPerCall: map[string]results.Flow{
				"caller": {Sent: perRole * tight[i], Received: perRole}, "responder": {Sent: perRole * tight[i], Received: perRole}}}
		}
		return cs
	}
	want(t, judge(t, "C1", run("r", cat(segs(reps("tcp", "mux", 1, 100, tight), 1), segs(reps("nats", "core", 1, 300, tight), 3))...)), Supported)
	want(t, judge(t, "C1", run("r", cat(segs(reps("tcp", "mux", 1, 100, tight), 1), segs(reps("nats", "core", 1, 300, tight), 1.2))...)), Mixed, "TCP data segments")
	j := judge(t, "C1", run("r", cat(tcp, reps("nats", "core", 1, 300, tight))...))
	if !strings.Contains(strings.Join(j.Evidence.Notes, " "), "carry no TCP segment counts") {
		t.Fatalf("notes: %v", j.Evidence.Notes)
	}
	if j.Evidence.Machine == "" || !strings.Contains(j.Evidence.Machine, "Test CPU") || len(j.Evidence.Runs) != 1 {
		t.Fatalf("evidence: %+v", j.Evidence)
	}
	c := j.Evidence.Comparisons[0]
	if c.Value == nil || math.Abs(*c.Value-3) > 0.01 || c.Low == nil || *c.Low < 2.8 || len(c.Cells) != 2 || len(c.Cells[0].Values) != 3 {
		t.Fatalf("comparison %+v", c)
	}
}

func TestRepetitionsPooledAcrossRuns(t *testing.T) {
	// one repetition in each of three runs: three repetitions of one key
	var runs []*results.Run
	for i, f := range tight {
		runs = append(runs, run(string(rune('a'+i)), cell("tcp", "mux", 1, 1, 100*f, 300, 1e4), cell("nats", "core", 1, 1, 300*f, 900, 3e3)))
	}
	want(t, judge(t, "C1", runs...), Supported)
}

func TestC3(t *testing.T) {
	mk := func(light, heavy float64) *results.Run {
		return run("r", cat(reps("nats", "core", 1, light, tight), reps("nats", "jetstream", 1, heavy, tight),
			reps("nats", "core", 16, light, tight), reps("nats", "jetstream", 16, heavy, tight))...)
	}
	want(t, judge(t, "C3", mk(100, 200)), Supported)
	want(t, judge(t, "C3", mk(200, 100)), Refuted)
	want(t, judge(t, "C3", run("r", cat(reps("nats", "core", 1, 100, noisy), reps("nats", "jetstream", 1, 105, noisy))...)), Inconclusive, "inside the noise")
	want(t, judge(t, "C3", run("r", reps("nats", "core", 1, 100, tight)...)), Inconclusive, "nats")
	// R* from sweeps
	r := mk(100, 200)
	r.Saturation = []results.Saturation{{Driver: "nats", Variant: "core", MaxSustainableRate: ptr(10000)}, {Driver: "nats", Variant: "jetstream", MaxSustainableRate: ptr(12000)}}
	want(t, judge(t, "C3", r), Mixed, "R* nats/core ÷ jetstream")
}

func withCost(cs []results.Cell, caller, responder, broker float64) []results.Cell {
	for i := range cs {
		cs[i].Cost = &results.Cost{WindowSeconds: 1, Calls: 1000, CPUUsPerCall: map[string]float64{"caller": caller, "responder": responder, "broker": broker}}
	}
	return cs
}

func TestC4(t *testing.T) {
	mk := func(broker float64, mqP50 float64) *results.Run {
		return run("r", cat(reps("tcp", "mux", 64, 500, tight), withCost(reps("nats", "core", 64, mqP50, tight), 20, 10, broker))...)
	}
	want(t, judge(t, "C4", mk(50, 2000)), Supported)
	want(t, judge(t, "C4", mk(5, 200)), Refuted)
	want(t, judge(t, "C4", mk(50, 200)), Mixed)
	// no broker CPU figure
	r := run("r", cat(reps("tcp", "mux", 64, 500, tight), reps("nats", "core", 64, 2000, tight))...)
	want(t, judge(t, "C4", r), Inconclusive, "no CPU cost recorded")
	// a sweep decides saturation
	r = mk(50, 2000)
	r.Saturation = []results.Saturation{{Driver: "tcp", Variant: "mux", XSat: 40000}, {Driver: "nats", Variant: "core", XSat: 45000}}
	want(t, judge(t, "C4", r), Mixed, "X_sat tcp/mux ÷ nats/core")
}

// faultCell is a fault cell at 100 calls/s whose timeline has ok calls
// throughout, except okOut per 100 ms step and failed calls during
// [5 s, 8 s).
func faultCell(driver, variant string, okOut, failed int64, applicable bool) results.Cell {
	c := cell(driver, variant, 0, 1, 1000, 3000, 100)
	c.Mode, c.Rate, c.Concurrency = "open", 100, 256
	c.Key = results.CellKey(&c)
	f := &results.Faults{StepMs: 100}
	for i := 0; i < 150; i++ {
		t := float64(i) / 10
		p := results.TimelinePoint{T: t, OK: 10}
		if t >= 5 && t < 8 {
			p.OK = okOut
			if t < 5.1 {
				p.Failed = failed
			}
		}
		f.Timeline = append(f.Timeline, p)
	}
	ev := results.FaultEvent{Action: "stop-broker", At: 5, Restored: ptr(8)}
	if !applicable {
		ev = results.FaultEvent{Action: "stop-broker", At: -1, NotApplicable: "this driver has no broker"}
	}
	f.Events = []results.FaultEvent{ev}
	c.Faults = f
	return c
}

func TestC5(t *testing.T) {
	mk := func(mqOK, mqFailed, directOK, directFailed int64) *results.Run {
		r := run("f", faultCell("nats", "core", mqOK, mqFailed, true), faultCell("tcp", "mux", directOK, directFailed, false))
		r.Scenario.Faults = []string{"stop-broker@5s+3s"}
		return r
	}
	want(t, judge(t, "C5", mk(0, 30, 10, 0)), Supported)
	want(t, judge(t, "C5", mk(10, 0, 0, 30)), Refuted)
	want(t, judge(t, "C5", mk(0, 30, 0, 30)), Mixed, "direct")
	want(t, judge(t, "C5", mk(7, 0, 10, 0)), Inconclusive, "not below half")
	want(t, judge(t, "C5", run("r", reps("tcp", "mux", 1, 100, tight)...)), Inconclusive, "no fault cells")
}

func killCell(driver, variant string, l results.Ledger, failed int64) results.Cell {
	c := cell(driver, variant, 0, 1, 1000, 3000, 100)
	c.Mode, c.Rate, c.Concurrency = "open", 150, 256
	c.Counts.Timeout = failed
	c.Key = results.CellKey(&c)
	c.Faults = &results.Faults{StepMs: 100, Ledger: l, Events: []results.FaultEvent{{Action: "kill-responder", At: 3, Restored: ptr(4)}}}
	return c
}

func TestC6(t *testing.T) {
	mk := func(durableLost, directFailed int64) *results.Run {
		return run("k",
			killCell("rabbitmq", "reply-queue/persistent", results.Ledger{Attempted: 1000, ExactlyOnce: 1000 - durableLost, Lost: durableLost}, 0),
			killCell("rabbitmq", "reply-queue/transient", results.Ledger{Attempted: 1000, ExactlyOnce: 990, Lost: 10}, 10),
			killCell("tcp", "mux", results.Ledger{Attempted: 1000, ExactlyOnce: 1000}, directFailed))
	}
	want(t, judge(t, "C6", mk(0, 3)), Supported)
	want(t, judge(t, "C6", mk(5, 0)), Refuted)
	want(t, judge(t, "C6", mk(5, 3)), Mixed)
	r := mk(0, 3)
	r.Cells[0].Faults.Ledger.Undrained = true
	want(t, judge(t, "C6", r), Inconclusive, "not drained")
	// RocketMQ's async flush stores the request in its commit log: durable
	// for a responder fault
	r = mk(0, 3)
	r.Cells = append(r.Cells, killCell("rocketmq", "async-flush", results.Ledger{Attempted: 1000, ExactlyOnce: 998, Lost: 2}, 0))
	want(t, judge(t, "C6", r), Mixed, "rocketmq/async-flush")
	// the light variant is shown, with no assertion
	j := judge(t, "C6", mk(0, 3))
	if len(j.Evidence.Comparisons) != 2 || !strings.Contains(strings.Join(j.Evidence.Notes, " "), "reply-queue/transient") {
		t.Fatalf("evidence %+v", j.Evidence)
	}
}

func burstCell(driver, variant string, errRate float64, lastP50 float64) results.Cell {
	c := cell(driver, variant, 0, 1, 1000, 3000, 500)
	c.Mode, c.Rate, c.Concurrency, c.Phases = "open", 1125, 8192, "3s@500/s,1s@6000/s,4s@500/s"
	c.ErrorRate = errRate
	c.Key = results.CellKey(&c)
	for s := 0; s < 8; s++ {
		p := results.Point{Second: s, OK: 500, P50: 1000, P99: 3000}
		if s == 7 {
			p.P50 = lastP50
		}
		c.Series = append(c.Series, p)
	}
	return c
}

func TestC7(t *testing.T) {
	want(t, judge(t, "C7", run("b", burstCell("tcp", "mux", 0.2, 1000), burstCell("nats", "jetstream", 0, 1100))), Supported)
	want(t, judge(t, "C7", run("b", burstCell("tcp", "mux", 0, 1000), burstCell("nats", "jetstream", 0.2, 1100))), Refuted)
	// fewer failures but the backlog is still there at the end
	want(t, judge(t, "C7", run("b", burstCell("tcp", "mux", 0.2, 1000), burstCell("nats", "jetstream", 0, 9000))), Refuted)
	want(t, judge(t, "C7", run("b", burstCell("tcp", "mux", 0, 1000), burstCell("nats", "jetstream", 0, 1000))), Inconclusive, "no failures either way")
	// a generator late by a few milliseconds in the burst (the machine is
	// overloaded) leaves the error rates the systems': they count while
	// its lateness p99 stays within 1% of the timeout
	limited := func(lateMs float64, timeout string) *results.Run {
		d, m := burstCell("tcp", "mux", 0.2, 1000), burstCell("nats", "jetstream", 0, 1100)
		for _, c := range []*results.Cell{&d, &m} {
			c.Generator = &results.Generator{Limited: true, Reason: "late", Lateness: results.Latency{P99: lateMs * 1000}}
		}
		r := run("b", d, m)
		r.Scenario.Timeout = timeout
		return r
	}
	want(t, judge(t, "C7", limited(3, "2s")), Supported)
	want(t, judge(t, "C7", limited(50, "2s")), Inconclusive, "generator-limited")
	want(t, judge(t, "C7", limited(3, "")), Inconclusive, "generator-limited")
}

func TestC8(t *testing.T) {
	mk := func(direct, mq float64) *results.Run {
		return run("r", cat(reps("tcp", "mux", 1, direct, tight), reps("grpc", "unary", 1, 2*direct, tight), reps("nats", "core", 1, mq, tight),
			reps("tcp", "mux", 16, direct, tight), reps("nats", "core", 16, mq, tight))...)
	}
	want(t, judge(t, "C8", mk(100, 150)), Supported)
	want(t, judge(t, "C8", mk(150, 100)), Refuted)
	want(t, judge(t, "C8", run("r", cat(reps("tcp", "mux", 1, 100, noisy), reps("nats", "core", 1, 110, noisy))...)), Inconclusive, "inside the noise")
	want(t, judge(t, "C8", run("r", reps("tcp", "mux", 1, 100, tight)...)), Inconclusive, "no MQ driver")
}

func TestC9(t *testing.T) {
	mk := func(json, binary, newConn, grpc float64) *results.Run {
		var cs []results.Cell
		for _, c := range []int{1, 16} {
			cs = append(cs, cat(reps("http", "json", c, json, tight), reps("http", "binary", c, binary, tight),
				reps("http", "json-new-conn", c, newConn, tight), reps("grpc", "unary", c, grpc, tight))...)
		}
		return run("r", cs...)
	}
	want(t, judge(t, "C9", mk(100, 80, 300, 70)), Supported)
	want(t, judge(t, "C9", mk(100, 120, 50, 130)), Refuted)
	want(t, judge(t, "C9", mk(100, 80, 50, 70)), Mixed, "new connection")
	want(t, judge(t, "C9", run("r", reps("grpc", "unary", 1, 70, tight)...)), Inconclusive, "http/json")
}

func TestC11(t *testing.T) {
	// rocketFactor is RocketMQ's throughput at 64 callers over RabbitMQ's
	mk := func(rabbit, rocket, rocketFactor float64) *results.Run {
		cs := cat(reps("rabbitmq", "direct-reply-to/transient", 1, rabbit, tight), reps("rocketmq", "async-flush", 1, rocket, tight))
		hi := reps("rabbitmq", "direct-reply-to/transient", 64, rabbit*10, tight)
		ro := reps("rocketmq", "async-flush", 64, rocket*10, tight)
		for i := range ro {
			ro[i].Throughput = rocketFactor * hi[i].Throughput
		}
		return run("r", cat(cs, hi, ro)...)
	}
	want(t, judge(t, "C11", mk(100, 300, 2)), Supported)
	want(t, judge(t, "C11", mk(300, 100, 0.5)), Refuted)
	want(t, judge(t, "C11", mk(100, 300, 0.5)), Mixed, "throughput")
	r := run("r", reps("rabbitmq", "direct-reply-to/transient", 1, 100, tight)...)
	r.Skipped = []results.Skip{{Driver: "rocketmq", Reason: "skipped: no Docker engine"}}
	want(t, judge(t, "C11", r), Inconclusive, "rocketmq", "no Docker engine")
	// only one caller: its throughput is not judged (the latency's
	// inverse), at a delay either, where a note says so
	one := run("r", cat(reps("rabbitmq", "direct-reply-to/transient", 1, 100, tight), reps("rocketmq", "async-flush", 1, 300, tight),
		atDelay("250µs", reps("rabbitmq", "direct-reply-to/transient", 1, 1100, tight)), atDelay("250µs", reps("rocketmq", "async-flush", 1, 1000, tight)))...)
	j := judge(t, "C11", one)
	want(t, j, Supported)
	if len(j.Evidence.Comparisons) != 1 || !strings.Contains(j.Evidence.Comparisons[0].What, "p50") {
		t.Fatalf("C11 at one caller: comparisons %+v, want the p50 alone", j.Evidence.Comparisons)
	}
	if len(j.AtDelay) != 1 || j.AtDelay[0].Verdict != Refuted || !j.AtDelay[0].Moved || len(j.AtDelay[0].Comparisons) != 1 ||
		len(j.AtDelay[0].Notes) != 1 || !strings.Contains(j.AtDelay[0].Notes[0], "throughput not judged at this delay") {
		t.Fatalf("C11 at_delay %+v: want the p50 alone, refuted, with a note on throughput", j.AtDelay)
	}
}

// chainCells are three repetitions of a chain series: depth d's p50 is
// p50(d), spread by m.
func chainCells(driver, variant, mode string, depths []int, p50 func(d int) float64, m []float64) []results.Cell {
	var out []results.Cell
	for _, d := range depths {
		for i, f := range m {
			c := cell(driver, variant, 1, i+1, p50(d)*f, 3*p50(d)*f, 1e6/(p50(d)*f))
			c.ServiceTime = "5ms"
			c.Chain = &results.Chain{Depth: d, Mode: mode}
			c.Key = results.CellKey(&c)
			out = append(out, c)
		}
	}
	return out
}

func TestC10(t *testing.T) {
	depths := []int{1, 2, 4, 6}
	linear := func(hop float64) func(int) float64 { return func(d int) float64 { return hop * float64(d) } }
	flat := func(hop float64) func(int) float64 { return func(int) float64 { return hop } }
	mk := func(sync, async func(int) float64, m []float64) *results.Run {
		return run("r", cat(chainCells("nats", "core", "sync", depths, sync, m), chainCells("nats", "core", "async-tail", depths, async, m))...)
	}
	want(t, judge(t, "C10", mk(linear(5200), flat(5200), tight)), Supported, "each added hop adds one hop's latency", "async-tail ÷ sync at depth 6")
	// the data flips: synchronous hops that overlap (the slope is half a
	// hop) and a tail the caller waits for
	want(t, judge(t, "C10", mk(func(d int) float64 { return 5200 + 2600*float64(d-1) }, linear(5200), tight)), Refuted)
	// a sync chain that adds up, an async one that does too: mixed
	want(t, judge(t, "C10", mk(linear(5200), linear(5200), tight)), Mixed, "holds for", "fails for", "adds nothing")
	// within the noise
	want(t, judge(t, "C10", mk(linear(5200), flat(5200), []float64{0.5, 1.0, 1.5})), Inconclusive, "inside the noise")
	// evidence missing: two depths, one repetition, no chain cells at all
	want(t, judge(t, "C10", run("r", cat(chainCells("nats", "core", "sync", []int{1, 6}, linear(5000), tight), chainCells("nats", "core", "async-tail", []int{1, 6}, flat(5000), tight))...)), Inconclusive, "a slope needs at least 3")
	want(t, judge(t, "C10", mk(linear(5200), flat(5200), tight[:1])), Inconclusive, "too few repetitions")
	want(t, judge(t, "C10", run("r", reps("nats", "core", 1, 300, tight)...)), Inconclusive, "no call-chain cells")
	// judged again on the chains at a delay, apart from loopback's: the
	// delayed data flipped (a tail the caller waits for) moves it
	delayed := cat(atDelay("250µs", chainCells("nats", "core", "sync", depths, linear(6200), tight)), atDelay("250µs", chainCells("nats", "core", "async-tail", depths, linear(6200), tight)))
	jd := judge(t, "C10", run("r", append(mk(linear(5200), flat(5200), tight).Cells, delayed...)...))
	want(t, jd, Supported)
	if len(jd.AtDelay) != 1 || jd.AtDelay[0].Verdict != Mixed || !jd.AtDelay[0].Moved {
		t.Fatalf("C10 at_delay %+v: want mixed, moved", jd.AtDelay)
	}
	// an unsettled depth keeps its series out
	r := mk(linear(5200), flat(5200), tight)
	r.Cells[4].Unsettled = true
	want(t, judge(t, "C10", r), Inconclusive, "unsettled")
	// chain cells stand in no other claim: C1 sees no nats cell here
	j := judge(t, "C1", run("r", cat(reps("tcp", "mux", 1, 100, tight), chainCells("nats", "core", "sync", depths, linear(300), tight))...))
	if j.Verdict != Inconclusive || len(j.Evidence.Comparisons) != 0 {
		t.Fatalf("C1 judged chain cells: %s %s", j.Verdict, j.Reason)
	}
}

func withQueue(cs []results.Cell, us float64) []results.Cell {
	for i := range cs {
		cs[i].QueueDelay = &results.Latency{Count: 1000, P50: us * tight[i]}
	}
	return cs
}

func TestC2(t *testing.T) {
	mk := func(pull, push float64) *results.Run {
		return run("r", cat(withQueue(reps("rocketmq", "async-flush", 1, 1000, tight), pull), withQueue(reps("nats", "core", 1, 100, tight), push))...)
	}
	want(t, judge(t, "C2", mk(500, 50)), Supported)
	want(t, judge(t, "C2", mk(50, 500)), Refuted)
	// results from before the queue delay was recorded
	want(t, judge(t, "C2", run("r", cat(reps("rocketmq", "async-flush", 1, 1000, tight), reps("nats", "core", 1, 100, tight))...)), Inconclusive, "queue delay")
}

func TestJudgeAllAndSchema(t *testing.T) {
	doc := Judge([]*results.Run{run("r", cat(reps("tcp", "mux", 1, 100, tight), reps("nats", "core", 1, 300, tight))...)}, nil)
	if len(doc.Claims) != len(IDs()) || doc.Claims[0].ID != "C1" || doc.Claims[len(doc.Claims)-1].ID != "C11" {
		t.Fatalf("claims %d", len(doc.Claims))
	}
	data, err := Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(m map[string]any){
		"unknown verdict":   func(m map[string]any) { claim(m, 0)["verdict"] = "probably" },
		"no evidence":       func(m map[string]any) { delete(claim(m, 0), "evidence") },
		"no reason":         func(m map[string]any) { claim(m, 0)["reason"] = "" },
		"unknown field":     func(m map[string]any) { m["extra"] = 1 },
		"undecided, no why": func(m map[string]any) { undecidedWithoutWhy(m) },
	} {
		var m map[string]any
		json.Unmarshal(data, &m)
		edit(m)
		b, _ := json.Marshal(m)
		if err := Validate(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var md bytes.Buffer
	if err := Markdown(&md, doc); err != nil || !strings.Contains(md.String(), "| C1 | A, B | **supported** |") || !strings.Contains(md.String(), "### C10: inconclusive") {
		t.Fatalf("markdown: %v\n%s", err, md.String())
	}
}

func claim(m map[string]any, i int) map[string]any { return m["claims"].([]any)[i].(map[string]any) }

func undecidedWithoutWhy(m map[string]any) {
	c := claim(m, 0)["evidence"].(map[string]any)["comparisons"].([]any)[0].(map[string]any)
	c["outcome"] = "undecided"
	delete(c, "why")
}

func TestStats(t *testing.T) {
	if v := t975(2); v != 4.303 {
		t.Errorf("t975(2) = %v", v)
	}
	if v := t975(1000); math.Abs(v-1.962) > 0.001 {
		t.Errorf("t975(1000) = %v", v)
	}
	est, lo, hi, ok := ratioCI([]float64{200, 200, 200}, []float64{100, 100, 100})
	if !ok || math.Abs(est-2) > 1e-9 || lo != est || hi != est {
		t.Errorf("ratio of constants: %v %v %v %v", est, lo, hi, ok)
	}
	est, lo, hi, _ = ratioCI([]float64{190, 200, 210}, []float64{100, 100, 100})
	// n = 3, df ≈ 2: t = 4.3 makes the interval about ±13%
	if !(lo < est && est < hi && lo > 1.7 && hi < 2.3) {
		t.Errorf("ratio: %v (%v..%v)", est, lo, hi)
	}
	if _, _, _, ok := ratioCI([]float64{0, 1, 2}, []float64{1, 1, 1}); ok {
		t.Error("a zero value gave a ratio")
	}
}

// A repetition measured on a busy machine (others took over 0.25 cores)
// cannot decide a comparison: the claim that rested on it is inconclusive.
func TestBusyCellExcluded(t *testing.T) {
	busy, quiet := 0.6, 0.0
	cl := cell("tcp", "mux", 1, 1, 30, 90, 30000)
	c := &cl
	c.Cost = &results.Cost{OtherCPUCores: &quiet, StealCores: &busy}
	if why := excluded(c); !strings.Contains(why, "busy machine") {
		t.Fatalf("a busy cell is not excluded: %q", why)
	}
	c.Cost.StealCores = &quiet
	if why := excluded(c); why != "" {
		t.Fatalf("a quiet cell is excluded: %q", why)
	}
}

// atDelay puts cells behind the delay proxy at one-way delay dl.
func atDelay(dl string, cs []results.Cell) []results.Cell {
	for i := range cs {
		cs[i].Hop = &results.Hop{OneWayDelay: dl, Jitter: "0s"}
		cs[i].Key = results.CellKey(&cs[i])
	}
	return cs
}

// TestAtDelay: a claim is judged on loopback cells, and again on the cells
// measured at each injected hop delay; the delayed cells never enter the
// loopback verdict, and a verdict that changes with the delay says so.
func TestAtDelay(t *testing.T) {
	loop := cat(reps("tcp", "mux", 1, 100, tight), reps("nats", "core", 1, 300, tight))
	// at 250 µs per hop tcp's two traversals add 500 µs, nats' four 1000 µs:
	// 1300 ÷ 600 = 2.17 holds; 1100 ÷ 600 = 1.83 fails
	for _, tc := range []struct {
		nats  float64
		want  Verdict
		moved bool
	}{{1300, Supported, false}, {1100, Refuted, true}} {
		delayed := cat(atDelay("250µs", reps("tcp", "mux", 1, 600, tight)), atDelay("250µs", reps("nats", "core", 1, tc.nats, tight)))
		zero := cat(atDelay("0s", reps("tcp", "mux", 1, 900, tight)), atDelay("0s", reps("nats", "core", 1, 950, tight)))
		j := judge(t, "C1", run("r", cat(loop, delayed, zero)...))
		want(t, j, Supported)
		for _, c := range j.Evidence.Comparisons {
			for _, ref := range c.Cells {
				if strings.Contains(ref.Key, "one_way_delay") {
					t.Fatalf("loopback verdict used a delayed cell: %s", ref.Key)
				}
			}
		}
		if len(j.AtDelay) != 1 || j.AtDelay[0].OneWayDelay != "250µs" || j.AtDelay[0].Verdict != tc.want || j.AtDelay[0].Moved != tc.moved {
			t.Fatalf("nats at 250µs %.0f: at_delay %+v, want one 250µs entry %s moved %v (0s is the proxy's calibration, judged on no claim)", tc.nats, j.AtDelay, tc.want, tc.moved)
		}
	}
	// every claim judged on data with delayed cells and cells of other
	// kinds: only the latency claims get a delayed verdict, none panics
	all := Judge([]*results.Run{run("r", cat(loop, atDelay("250µs", reps("tcp", "mux", 1, 600, tight)), atDelay("250µs", reps("nats", "core", 1, 1100, tight)))...)}, nil)
	for _, c := range all.Claims {
		if (len(c.AtDelay) > 0) != (c.ID == "C1" || c.ID == "C8") {
			t.Errorf("%s: at_delay %+v", c.ID, c.AtDelay)
		}
	}
	// C3 at a delay: the delayed cells' p99 alone, never the runs' R*
	// (sweeps run without the proxy)
	r3 := run("r", cat(reps("nats", "core", 1, 100, tight), reps("nats", "jetstream", 1, 200, tight),
		atDelay("250µs", reps("nats", "core", 1, 1100, tight)), atDelay("250µs", reps("nats", "jetstream", 1, 1000, tight)))...)
	r3.Saturation = []results.Saturation{{Driver: "nats", Variant: "core", MaxSustainableRate: ptr(10000)}, {Driver: "nats", Variant: "jetstream", MaxSustainableRate: ptr(12000)}}
	j3 := judge(t, "C3", r3)
	want(t, j3, Mixed, "R* nats/core ÷ jetstream")
	if len(j3.AtDelay) != 1 || j3.AtDelay[0].Verdict != Refuted || len(j3.AtDelay[0].Comparisons) != 1 || !j3.AtDelay[0].Moved {
		t.Fatalf("C3 at_delay %+v: want the p99 comparison alone, refuted", j3.AtDelay)
	}
	// no cell at any delay: no entry
	if j := judge(t, "C1", run("r", loop...)); len(j.AtDelay) != 0 {
		t.Fatalf("at_delay %+v without delayed cells", j.AtDelay)
	}
	var md bytes.Buffer
	doc := Judge([]*results.Run{run("r", cat(loop, atDelay("250µs", reps("tcp", "mux", 1, 600, tight)), atDelay("250µs", reps("nats", "core", 1, 1100, tight)))...)}, []string{"C1"})
	if err := Markdown(&md, doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "250µs: refuted (moved)") || !strings.Contains(md.String(), "With 250µs one-way delay per hop**: refuted (moved from supported)") {
		t.Fatalf("claims.md lacks the delayed verdict:\n%s", md.String())
	}
}
