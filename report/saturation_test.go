package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// A sweep's saturation is in both reports: R* where it was confirmed, and
// "not found" with the reason where it was not, never a number.
func TestSaturationReported(t *testing.T) {
	run := synthRun(t, 7, spec{driver: "tcp", variant: "mux", payload: 64, conc: 1, medianUs: 20})
	rstar := 41000.0
	run.Saturation = []results.Saturation{
		{Driver: "grpc", Variant: "unary", XSat: 16845, XSatConcurrency: 64, MaxSustainableRate: &rstar, BracketLo: 41000, BracketHi: 43000, FailingCriterion: "p99 3ms > objective 1ms",
			Criteria: results.SweepCriteria{P99US: 1000, P99Why: "given"}, Trials: []results.SweepTrial{{Rate: 8000, Verdict: "pass"}, {Rate: 43000, Verdict: "fail", Why: "p99"}}},
		{Driver: "tcp", Variant: "mux", XSat: 418135, XSatConcurrency: 256, Reason: "generator-limited at 209068 calls/s, 3 times", BracketLo: 0,
			Criteria: results.SweepCriteria{P99US: 1000, P99Why: "given"}, Trials: []results.SweepTrial{{Rate: 209068, Verdict: "generator-limited", Why: "lateness"}}},
	}
	md := renderMarkdown(t, run)
	for _, want := range []string{"**Saturation**", "| grpc/unary | 16.8k | 64 | **41.0k calls/s** |", "| tcp/mux | 418.1k | 256 | not found: generator-limited at 209068 calls/s, 3 times |", "2 (1 passed)"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	var b bytes.Buffer
	if err := HTML(&b, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="saturation"`, "<strong>41.0k calls/s</strong>", "not found: generator-limited"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

// compare --fail-on rstar:-10%: a drop of R* beyond 10% fails, a smaller
// one passes, and an R* the new sweep did not find fails.
func TestCompareRStar(t *testing.T) {
	mk := func(rstar *float64, reason string) *results.Run {
		run := synthRun(t, 9, spec{driver: "grpc", variant: "unary", payload: 64, conc: 1, medianUs: 80})
		run.Saturation = []results.Saturation{{Driver: "grpc", Variant: "unary", XSat: 16000, XSatConcurrency: 64, MaxSustainableRate: rstar, Reason: reason}}
		return run
	}
	f := func(v float64) *float64 { return &v }
	atLeast := func(run *results.Run, v float64) *results.Run {
		run.Saturation[0].AtLeast = v
		return run
	}
	thr, err := ParseThreshold("rstar:-10%")
	if err != nil {
		t.Fatal(err)
	}
	opts := CompareOptions{Thresholds: []Threshold{thr}}
	for _, tc := range []struct {
		name string
		cur  *results.Run
		fail bool
		want string
	}{
		{"small drop passes", mk(f(9500), ""), false, ""},
		{"big drop fails", mk(f(8000), ""), true, "rstar"},
		{"not found fails", mk(nil, "generator-limited"), true, "not found in the new run: generator-limited"},
		{"a lower bound at the base's R* passes", atLeast(mk(nil, "the generator could not keep to 11000 calls/s"), 10000), false, ""},
		{"a lower bound under it fails", atLeast(mk(nil, "the generator could not keep to 9000 calls/s"), 8600), true, "not found in the new run: the generator could not keep to 9000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compare(mk(f(10000), ""), tc.cur, opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.Failed() != tc.fail {
				t.Fatalf("failed=%v, want %v: %+v %v", c.Failed(), tc.fail, c.Regressions, c.Failures)
			}
			var b bytes.Buffer
			if err := WriteComparison(&b, c, "text"); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, b.String())
			}
		})
	}
}

// The CPU each process spent per call is in both reports, by role.
func TestCostReported(t *testing.T) {
	run := synthRun(t, 11, spec{driver: "nats", variant: "core", payload: 64, conc: 1, medianUs: 90})
	run.Cells[0].Cost = &results.Cost{WindowSeconds: 1.5, Calls: 9000, CPUUsPerCall: map[string]float64{"caller": 55.4, "responder": 42.5, "broker": 69.7}, Notes: []string{"read from /proc"}}
	md := renderMarkdown(t, run)
	if !strings.Contains(md, "| caller | responder | broker | total |") || !strings.Contains(md, "| 55.4 µs | 42.5 µs | 69.7 µs | 168 µs |") {
		t.Errorf("summary lacks the cost table:\n%s", md)
	}
	var b bytes.Buffer
	if err := HTML(&b, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `id="cost"`) || !strings.Contains(b.String(), "69.7 µs") {
		t.Error("HTML lacks the cost table")
	}
}

// Cells run at several hop delays give a slope of p50 against the delay.
func TestHopSlope(t *testing.T) {
	run := synthRun(t, 13,
		spec{driver: "tcp", variant: "mux", payload: 64, conc: 1, medianUs: 30},
		spec{driver: "tcp", variant: "mux", payload: 64, conc: 1, medianUs: 530},
		spec{driver: "tcp", variant: "mux", payload: 64, conc: 1, medianUs: 2030})
	for i, d := range []string{"0s", "250µs", "1ms"} {
		run.Cells[i].Hop = &results.Hop{OneWayDelay: d, Jitter: "0s"}
		run.Cells[i].Key = results.CellKey(&run.Cells[i])
	}
	md := renderMarkdown(t, run)
	if !strings.Contains(md, "**Hop delay**") || !strings.Contains(md, "| 2.00 |") {
		t.Errorf("summary lacks the hop slope 2.00:\n%s", md)
	}
}

// The latency-against-throughput chart marks the knee (X_sat) and R*
// where the sweep confirmed one, and no R* where it found none.
func TestSaturationChart(t *testing.T) {
	run := synthRun(t, 7, spec{driver: "grpc", variant: "unary", payload: 64, conc: 4, medianUs: 200})
	rstar := 41000.0
	s := results.Saturation{Driver: "grpc", Variant: "unary", XSat: 45000, XSatConcurrency: 4, MaxSustainableRate: &rstar,
		Settings: results.SweepSettings{Ladder: []int{1, 2, 4}},
		Trials: []results.SweepTrial{
			{Rate: 20000, OKRate: 19990, P50: 150, P99: 400, Verdict: "pass"},
			{Rate: 41000, OKRate: 40950, P50: 210, P99: 900, Verdict: "pass"},
			{Rate: 51000, OKRate: 45000, P50: 5000, P99: 40000, Verdict: "fail"},
		}}
	svg, err := saturationChart(run, &s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"X_sat (knee) 45.0k/s", "R* 41.0k/s", "closed-loop ladder, p50", "open-loop trials, p99", "trial failed"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	s.MaxSustainableRate = nil
	svg, err = saturationChart(run, &s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(svg), "R* ") {
		t.Error("a sweep that found no R* has one drawn")
	}
	if !strings.Contains(string(svg), "X_sat (knee)") {
		t.Error("the knee is not drawn")
	}
}

// A cell's queue delay is in both reports, beside the call's p50; cells
// without one (a remote responder) leave the table out.
func TestQueueDelayReported(t *testing.T) {
	run := synthRun(t, 7, spec{driver: "nats", variant: "core", payload: 64, conc: 1, medianUs: 200})
	md := renderMarkdown(t, run)
	if strings.Contains(md, "**Queue delay**") {
		t.Fatal("a queue-delay table without any queue delay")
	}
	for i := range run.Cells {
		run.Cells[i].QueueDelay = &results.Latency{Count: 100, P50: 80, P99: 300}
	}
	md = renderMarkdown(t, run)
	if !strings.Contains(md, "**Queue delay**") || !strings.Contains(md, "| 80.0 µs | 300 µs |") {
		t.Fatalf("summary lacks the queue delay:\n%s", md)
	}
	var b bytes.Buffer
	if err := HTML(&b, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `id="queue"`) || !strings.Contains(b.String(), "80.0 µs") {
		t.Error("HTML lacks the queue delay")
	}
}

// A cell measured while others took over BusyCores of the machine is
// marked so in both reports; one on a quiet machine is not.
func TestBusyMachineMarked(t *testing.T) {
	run := synthRun(t, 7, spec{driver: "tcp", variant: "mux", payload: 64, conc: 1, medianUs: 20})
	quiet, busy := 0.05, 0.6
	run.Cells[0].Cost = &results.Cost{OtherCPUCores: &quiet, StealCores: &quiet}
	if md := renderMarkdown(t, run); strings.Contains(md, "busy machine") {
		t.Fatal("a quiet cell marked busy")
	}
	run.Cells[0].Cost.StealCores = &busy
	if md := renderMarkdown(t, run); !strings.Contains(md, "tcp (direct) ⚠ busy machine") {
		t.Fatalf("a busy cell not marked:\n%s", md)
	}
	var b bytes.Buffer
	if err := HTML(&b, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "busy machine") {
		t.Error("HTML does not mark the busy cell")
	}
}

// The claims section leads the report: each verdict, its evidence line,
// and a chart of its comparisons over their thresholds; without claims
// there is no section.
func TestClaimsSection(t *testing.T) {
	run := synthRun(t, 7, spec{driver: "tcp", variant: "mux", payload: 64, conc: 1, medianUs: 20})
	var b bytes.Buffer
	if err := HTML(&b, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `id="claims"`) {
		t.Fatal("a claims section without claims")
	}
	b.Reset()
	cl := []Claim{{ID: "C1", Verdict: "supported", Claim: "MQ costs hops", Reason: "every comparison holds", Evidence: "p50 nats ÷ tcp: 7.2 against 2 (holds)",
		Points: []ClaimPoint{{Label: "p50 nats ÷ tcp", Value: 7.2, Low: 6.1, High: 8.4, Threshold: 2, HasValue: true, HasCI: true, Outcome: "holds"}},
		Cells:  []string{"tcp/mux c=1"}}}
	if err := HTMLWithClaims(&b, []*results.Run{run}, cl); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, want := range []string{`id="claims"`, "<strong>supported</strong>", "p50 nats ÷ tcp: 7.2 against 2 (holds)", "C1: each comparison over its threshold", "1: p50 nats ÷ tcp (holds)", "<code>tcp/mux c=1</code>"} {
		if !strings.Contains(h, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Index(h, `id="claims"`) > strings.Index(h, `id="summary"`) {
		t.Error("the claims section is not above the summary")
	}
}
