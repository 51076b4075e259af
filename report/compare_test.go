package report

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// cellSpecs is the matrix compare tests use: one direct-RPC and one broker
// cell, each repeated reps times, latencies scaled by scale.
func cellSpecs(reps int, scale float64) []spec {
	return []spec{
		{driver: "tcp", variant: "default", payload: 64, conc: 4, medianUs: 100 * scale, reps: reps, calls: 10000},
		{driver: "nats", kind: "broker", variant: "default", payload: 64, conc: 4, medianUs: 400 * scale, reps: reps, calls: 10000},
	}
}

func mustThresholds(t *testing.T, ss ...string) []Threshold {
	t.Helper()
	var out []Threshold
	for _, s := range ss {
		th, err := ParseThreshold(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, th)
	}
	return out
}

func metricOf(t *testing.T, c *Comparison, cellPrefix, metric string) MetricDelta {
	t.Helper()
	for _, cd := range c.Cells {
		if strings.HasPrefix(cd.Label, cellPrefix) {
			for _, md := range cd.Metrics {
				if md.Metric == metric {
					return md
				}
			}
		}
	}
	t.Fatalf("no %s for cell %q", metric, cellPrefix)
	return MetricDelta{}
}

func TestCompareFlagsShiftedDistribution(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(5, 1)...)
	shifted := synthRun(t, 2, cellSpecs(5, 1.2)...)
	c, err := Compare(base, shifted, CompareOptions{Thresholds: mustThresholds(t, "p99:+10%", "throughput:-5%")})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Failed() {
		t.Fatalf("a 20%% slower distribution was not flagged: %+v", c)
	}
	for _, cell := range []string{"tcp", "nats"} {
		p99 := metricOf(t, c, cell, "p99")
		if p99.Significance != "significant" || p99.DeltaPercent < 15 || p99.DeltaPercent > 25 {
			t.Errorf("%s p99: %s, delta %.1f%%, want significant and about +20%%", cell, p99.Significance, p99.DeltaPercent)
		}
		if p99.Base.Lo == nil || p99.Base.Hi == nil || !(*p99.Base.Lo <= p99.Base.Center && p99.Base.Center <= *p99.Base.Hi) {
			t.Errorf("%s p99: no confidence interval around the base center: %+v", cell, p99.Base)
		}
		if p99.Better == nil || *p99.Better {
			t.Errorf("%s p99: a slowdown is not marked worse", cell)
		}
		tp := metricOf(t, c, cell, "throughput")
		if tp.Significance != "significant" || len(tp.Crossed) != 1 {
			t.Errorf("%s throughput: %s, crossed %v, delta %.1f%%; want a significant drop past -5%%", cell, tp.Significance, tp.Crossed, tp.DeltaPercent)
		}
	}
	if len(c.Regressions) != 4 {
		t.Errorf("%d regressions, want 4 (p99 and throughput of two cells): %+v", len(c.Regressions), c.Regressions)
	}
}

func TestCompareSameDistributionNotFlagged(t *testing.T) {
	for seed := uint64(10); seed < 14; seed++ {
		a := synthRun(t, seed, cellSpecs(5, 1)...)
		b := synthRun(t, seed+100, cellSpecs(5, 1)...)
		c, err := Compare(a, b, CompareOptions{Thresholds: mustThresholds(t, "p50:+5%", "p99:+10%", "p99.9:+10%", "throughput:-5%")})
		if err != nil {
			t.Fatal(err)
		}
		if c.Failed() {
			t.Errorf("seed %d: two draws of one distribution flagged: %+v", seed, c.Regressions)
		}
		if len(c.Unconfirmed) != 0 {
			t.Errorf("seed %d: two draws of one distribution crossed a threshold: %+v", seed, c.Unconfirmed)
		}
		for _, cd := range c.Cells {
			for _, md := range cd.Metrics {
				if math.Abs(md.DeltaPercent) > 5 {
					t.Errorf("seed %d: %s %s moved %.1f%% between draws of one distribution", seed, cd.Label, md.Metric, md.DeltaPercent)
				}
			}
		}
	}
}

func TestCompareImprovementDoesNotFail(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(5, 1)...)
	faster := synthRun(t, 2, cellSpecs(5, 0.8)...)
	c, err := Compare(base, faster, CompareOptions{Thresholds: mustThresholds(t, "p99:+10%", "throughput:-5%")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed() {
		t.Errorf("a 20%% faster run failed: %+v", c.Regressions)
	}
	p99 := metricOf(t, c, "tcp", "p99")
	if p99.Significance != "significant" || p99.Better == nil || !*p99.Better {
		t.Errorf("p99 improvement: %s, better %v", p99.Significance, p99.Better)
	}
	// A rule on decreases catches it.
	c, err = Compare(base, faster, CompareOptions{Thresholds: mustThresholds(t, "p99:-10%")})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Failed() {
		t.Error("p99:-10% did not catch a 20% drop in p99")
	}
}

// With one repetition a side, significance is unknown: thresholds apply
// to the point estimates and the output says so; --require-significance
// keeps such a comparison from failing.
func TestCompareWithoutRepetitions(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(1, 1)...)
	shifted := synthRun(t, 2, cellSpecs(1, 1.5)...)
	c, err := Compare(base, shifted, CompareOptions{Thresholds: mustThresholds(t, "p99:+10%")})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Failed() || len(c.Regressions) != 2 {
		t.Errorf("a single-repetition regression of +50%% passed: regressions %v", c.Regressions)
	}
	p99 := metricOf(t, c, "tcp", "p99")
	if p99.Significance != "unknown" || p99.P != nil || p99.Base.Lo != nil {
		t.Errorf("p99 without repetitions: %+v, want significance unknown and no interval", p99)
	}
	if p99.DeltaPercent < 40 {
		t.Errorf("p99 delta %.1f%%, want about +50%%", p99.DeltaPercent)
	}
	var buf bytes.Buffer
	if err := WriteComparison(&buf, c, "text"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"significance unknown", "FAIL tcp", "point estimates"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text output does not say %q:\n%s", want, buf.String())
		}
	}

	c, err = Compare(base, shifted, CompareOptions{Thresholds: mustThresholds(t, "p99:+10%"), RequireSignificance: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed() || len(c.Unconfirmed) != 2 {
		t.Errorf("with --require-significance: failed=%v unconfirmed %v, want a pass with both crossings unconfirmed", c.Failed(), c.Unconfirmed)
	}
}

// An unchanged single-repetition run passes, every cell saying why.
func TestCompareUnchangedPasses(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(1, 1)...)
	same := synthRun(t, 2, cellSpecs(1, 1)...)
	c, err := Compare(base, same, CompareOptions{Thresholds: mustThresholds(t, "p99:+10%", "throughput:-5%")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed() {
		t.Fatalf("an unchanged run failed: %v %v", c.Regressions, c.Failures)
	}
	for _, cd := range c.Cells {
		if cd.Verdict != "pass" || len(cd.Why) == 0 {
			t.Errorf("%s: verdict %q why %v", cd.Label, cd.Verdict, cd.Why)
		}
	}
}

// A new run in which every call of a cell failed fails, with no
// threshold given at all.
func TestCompareAllFailedFails(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(1, 1)...)
	cur := synthRun(t, 2, cellSpecs(1, 1)...)
	for i := range cur.Cells {
		c := &cur.Cells[i]
		c.Counts = results.Counts{Scheduled: 1000, Started: 1000, Timeout: 1000}
		c.Latency, c.Uncorrected, c.Throughput = results.Latency{}, results.Latency{}, 0
		c.Histograms = results.Histograms{}
	}
	for _, th := range [][]Threshold{nil, mustThresholds(t, "p99:+10%", "throughput:-5%")} {
		c, err := Compare(base, cur, CompareOptions{Thresholds: th})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Failed() {
			t.Fatalf("thresholds %v: a run where every call failed passed", th)
		}
		for _, cd := range c.Cells {
			if cd.Verdict != "fail" || !strings.Contains(strings.Join(cd.Why, " "), "error rate") {
				t.Errorf("%s: verdict %q why %v", cd.Label, cd.Verdict, cd.Why)
			}
		}
	}
	// an explicit errors threshold replaces the default rule
	c, err := Compare(base, cur, CompareOptions{Thresholds: mustThresholds(t, "errors:+0.5%")})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Failed() || metricOf(t, c, "tcp", "errors").DeltaPercent != 100 {
		t.Fatalf("errors:+0.5%%: failed=%v", c.Failed())
	}
}

// A cell missing from the new run fails unless allowed; an incomplete new
// run fails.
func TestCompareMissingAndIncomplete(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(1, 1)...)
	cur := synthRun(t, 2, cellSpecs(1, 1)...)
	cur.Cells = cur.Cells[:1]
	c, err := Compare(base, cur, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Failed() || len(c.Failures) != 1 || !strings.Contains(c.Failures[0], "missing") {
		t.Fatalf("missing cell: failed=%v failures %v", c.Failed(), c.Failures)
	}
	if c, err = Compare(base, cur, CompareOptions{AllowMissing: true}); err != nil || c.Failed() {
		t.Fatalf("--allow-missing: err %v failed %v", err, c.Failed())
	}
	cur = synthRun(t, 2, cellSpecs(1, 1)...)
	cur.Complete, cur.Incomplete = false, "interrupted"
	if c, err = Compare(base, cur, CompareOptions{}); err != nil || !c.Failed() {
		t.Fatalf("incomplete new run: err %v failed %v", err, c.Failed())
	}
	// a generator-limited new cell fails
	cur = synthRun(t, 2, cellSpecs(1, 1)...)
	cur.Cells[0].Generator = &results.Generator{Limited: true, Reason: "lateness p99 3ms exceeds 200µs"}
	if c, err = Compare(base, cur, CompareOptions{}); err != nil || !c.Failed() {
		t.Fatalf("generator-limited new cell: err %v failed %v", err, c.Failed())
	}
}

// With 3 repetitions a side Welch's t-test can detect a clear shift; the
// Mann-Whitney U test cannot reach p < 0.05 with 3+3 values, so it must
// not fail the comparison.
func TestCompareThreeRepetitions(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(3, 1)...)
	shifted := synthRun(t, 2, cellSpecs(3, 1.2)...)
	th := mustThresholds(t, "p99:+10%")
	c, err := Compare(base, shifted, CompareOptions{Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Failed() {
		t.Error("welch, 3+3 repetitions: a 20% shift was not flagged")
	}
	c, err = Compare(base, shifted, CompareOptions{Thresholds: th, Test: "mann-whitney"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Failed() {
		t.Error("mann-whitney, 3+3 repetitions: flagged although p can be no lower than 0.1")
	}
	if md := metricOf(t, c, "tcp", "p99"); md.Significance != "not significant" || len(md.Warnings) == 0 {
		t.Errorf("mann-whitney 3+3: %s, warnings %v; want not significant with a warning about sample size", md.Significance, md.Warnings)
	}
}

func TestCompareCellsOnOneSide(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(1, 1)...)
	cur := synthRun(t, 2, append(cellSpecs(1, 1)[:1], spec{driver: "grpc", variant: "unary", payload: 64, conc: 4, medianUs: 80})...)
	c, err := Compare(base, cur, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Cells) != 1 || len(c.OnlyBase) != 1 || len(c.OnlyNew) != 1 {
		t.Errorf("cells %d, only base %v, only new %v; want 1, nats, grpc", len(c.Cells), c.OnlyBase, c.OnlyNew)
	}
}

func TestParseThreshold(t *testing.T) {
	good := map[string]Threshold{
		"p99:+10%":        {"p99", 10},
		"throughput:-5%":  {"throughput", -5},
		"p999:+2.5%":      {"p99.9", 2.5},
		" P50 : +1 ":      {"p50", 1},
		"tput:-0.5%":      {"throughput", -0.5},
		"p99.99:+100%":    {"p99.99", 100},
		"mean:+3%":        {"mean", 3},
		"median:+4%":      {"p50", 4},
		"calls/s:-10%":    {"throughput", -10},
		"p90:+7%":         {"p90", 7},
		"throughput:-50%": {"throughput", -50},
	}
	for in, want := range good {
		got, err := ParseThreshold(in)
		if err != nil || got != want {
			t.Errorf("ParseThreshold(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "p99", "p99:10%", "p98:+10%", "p99:+abc%", "p99:+0%", "throughput:-", ":+5%", "p99:+NaN%", "p99:+Inf%"} {
		_, err := ParseThreshold(in)
		if !isBadInput(err) {
			t.Errorf("ParseThreshold(%q): err = %v, want bad input", in, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "--fail-on") || strings.Contains(msg, "\n") {
			t.Errorf("ParseThreshold(%q): %q should be one line naming --fail-on", in, msg)
		}
	}
}

// TestCompareOutcomes checks what each outcome gives the command to map
// to its exit code: a passing comparison (exit 0), a failing one (exit 1)
// and ErrBadInput (exit 2) with nothing written. Reading the files is the
// command's: cmd/rpcbench tests it.
func TestCompareOutcomes(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(5, 1)...)
	same := synthRun(t, 2, cellSpecs(5, 1)...)
	slower := synthRun(t, 3, cellSpecs(5, 1.2)...)
	other := synthRun(t, 4, spec{driver: "grpc", variant: "unary", payload: 4096, conc: 1, medianUs: 80})
	fail := mustThresholds(t, "p99:+10%", "throughput:-5%")

	tests := []struct {
		name       string
		base, cur  *results.Run
		format     string
		failed     bool
		badInput   string // for bad input: the message names this
		thresholds []Threshold
	}{
		{"same distribution passes", base, same, "text", false, "", fail},
		{"20% slower fails", base, slower, "text", true, "", fail},
		{"20% slower without thresholds passes", base, slower, "text", false, "", nil},
		{"json output fails too", base, slower, "json", true, "", fail},
		{"no common cells", base, other, "text", false, "no cell in common", fail},
		{"bad format", base, same, "yaml", false, "--format", fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c, err := Compare(tt.base, tt.cur, CompareOptions{Thresholds: tt.thresholds})
			if err == nil {
				err = WriteComparison(&out, c, tt.format)
			}
			if tt.badInput != "" {
				if !isBadInput(err) {
					t.Fatalf("err = %v, want bad input", err)
				}
				msg := err.Error()
				if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.badInput) {
					t.Errorf("bad-input message %q: want one line containing %q", msg, tt.badInput)
				}
				if out.Len() != 0 {
					t.Errorf("bad input wrote output:\n%s", out.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Failed() != tt.failed {
				t.Fatalf("Failed() = %v, want %v\n%s", c.Failed(), tt.failed, out.String())
			}
			if out.Len() == 0 {
				t.Error("no output")
			}
			if tt.format == "json" {
				var c Comparison
				if err := json.Unmarshal(out.Bytes(), &c); err != nil {
					t.Fatalf("json output does not decode: %v", err)
				}
				if len(c.Regressions) == 0 || len(c.Cells) != 2 {
					t.Errorf("json: %d regressions, %d cells", len(c.Regressions), len(c.Cells))
				}
			}
		})
	}
}

func TestCompareOutputGolden(t *testing.T) {
	base := synthRun(t, 1, cellSpecs(5, 1)...)
	slower := synthRun(t, 3, cellSpecs(5, 1.2)...)
	slower.Environment.GoVersion = "go1.27.0"
	c, err := Compare(base, slower, CompareOptions{Thresholds: mustThresholds(t, "p99:+10%", "throughput:-5%"), BaseName: "base.json", NewName: "new.json"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ format, file string }{{"text", "compare.txt"}, {"markdown", "compare.md"}} {
		var buf bytes.Buffer
		if err := WriteComparison(&buf, c, f.format); err != nil {
			t.Fatal(err)
		}
		golden(t, f.file, buf.String())
	}
}
