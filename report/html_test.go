package report

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// openLoopRun is an open-loop run at two rates where queueing makes
// corrected and uncorrected latency differ, with a failed cell and a
// cell that errored out.
func openLoopRun(t testing.TB) *results.Run {
	t.Helper()
	var specs []spec
	for _, rate := range []float64{1000, 4000} {
		q := 0.0
		if rate == 4000 {
			q = 0.05
		}
		specs = append(specs,
			spec{driver: "tcp", variant: "default", payload: 1024, mode: "open", rate: rate, conc: 256, medianUs: 50, tput: rate, queueing: q},
			spec{driver: "rabbitmq", kind: "broker", variant: "default", payload: 1024, mode: "open", rate: rate, conc: 256, medianUs: 600, tput: rate * 0.98, queueing: q * 2, failed: 40},
		)
	}
	run := synthRun(t, 7, specs...)
	run.Cells = append(run.Cells, results.Cell{Key: "grpc/unary//1024/r1000/0", Driver: "grpc", Kind: "direct", Variant: "unary",
		Payload: 1024, Mode: "open", Rate: 1000, Concurrency: 256, ServiceTime: "0", Repetition: 1,
		Error: "dial tcp 127.0.0.1:1: connect: connection refused", Incomplete: true})
	run.Scenario.Concurrency = nil
	run.Scenario.Rates = []float64{1000, 4000}
	run.Scenario.Payloads = []int{1024}
	return run
}

func renderHTML(t testing.TB, runs ...*results.Run) string {
	t.Helper()
	var buf bytes.Buffer
	if err := HTML(&buf, runs); err != nil {
		t.Fatalf("HTML: %v", err)
	}
	return buf.String()
}

// external matches anything that could make a browser fetch from
// elsewhere; the SVG namespace names (not fetched) are removed first.
var external = regexp.MustCompile(`(?i)<link\b|<img\b|<iframe\b|<object\b|<embed\b|<source\b|\bsrc\s*=|@import|url\(|https?://|xlink:href|//[a-z0-9.-]+\.[a-z]{2,}/`)

var namespaces = strings.NewReplacer(`xmlns="http://www.w3.org/2000/svg"`, "", `xmlns:xlink="http://www.w3.org/1999/xlink"`, "")

func TestHTMLSelfContained(t *testing.T) {
	for name, runs := range map[string][]*results.Run{
		"closed":    {synthRun(t, 1, threeDrivers()...)},
		"open":      {openLoopRun(t)},
		"two runs":  {synthRun(t, 1, threeDrivers()...), synthRun(t, 2, threeDrivers()...)},
		"100 cells": {hundredRun(t)},
	} {
		t.Run(name, func(t *testing.T) {
			page := namespaces.Replace(renderHTML(t, runs...))
			if m := external.FindString(page); m != "" {
				i := strings.Index(page, m)
				t.Errorf("page refers to something outside itself: %q in %q", m, page[max(0, i-80):min(len(page), i+80)])
			}
			for _, id := range []string{`id="summary"`, `id="percentiles"`, `id="over-time"`, `id="errors"`, `id="skipped"`, `id="environment"`, `id="scenario"`, `id="headline"`} {
				if !strings.Contains(page, id) {
					t.Errorf("page has no %s", id)
				}
			}
			if strings.Contains(page, "ZgotmplZ") {
				t.Error("template escaped an unsafe value to ZgotmplZ")
			}
			if !strings.Contains(page, "Content-Security-Policy") {
				t.Error("no Content-Security-Policy forbidding network requests")
			}
		})
	}
}

func TestHTMLSections(t *testing.T) {
	closed := renderHTML(t, synthRun(t, 1, threeDrivers()...))
	open := renderHTML(t, openLoopRun(t))
	count := func(page, kind string) int { return strings.Count(page, `data-chart="`+kind+`"`) }
	tests := []struct {
		name       string
		page, kind string
		want       int
	}{
		// threeDrivers: one payload at two concurrency levels.
		{"percentile chart per load point", closed, "percentile", 2},
		{"latency over time per load point", closed, "latency-time", 2},
		{"throughput over time per load point", closed, "throughput-time", 2},
		{"latency against concurrency", closed, "latency-load", 1},
		{"throughput against concurrency", closed, "throughput-load", 1},
		{"closed loop: corrected equals uncorrected", closed, "corrected", 0},
		{"latency against rate", open, "latency-load", 1},
		{"corrected vs uncorrected where they differ", open, "corrected", 1},
	}
	for _, tt := range tests {
		if got := count(tt.page, tt.kind); got != tt.want {
			t.Errorf("%s: %d %s charts, want %d", tt.name, got, tt.kind, tt.want)
		}
	}
	if strings.Contains(closed, `id="corrected"`) {
		t.Error("closed-loop report has a corrected-vs-uncorrected section though they never differ")
	}
	for _, want := range []string{"connection refused", "no rocketmq broker", "Synthetic CPU @ 3.0GHz", "go1.26.8", "embedded:synthetic", "nats:2.10"} {
		if !strings.Contains(open, want) {
			t.Errorf("open-loop report does not show %q", want)
		}
	}
	if n := strings.Count(closed, "<tr>\n<td data-v="); n != 6 {
		t.Errorf("summary table has %d rows, want 6", n)
	}
}

func TestHTMLSingleLoadPointHasNoLoadCurves(t *testing.T) {
	page := renderHTML(t, synthRun(t, 1, threeDrivers()[:3]...))
	if strings.Contains(page, `id="load"`) {
		t.Error("a scenario at one load has latency-against-load charts")
	}
}

func TestHTMLErrors(t *testing.T) {
	if err := HTML(&bytes.Buffer{}, nil); err == nil {
		t.Error("HTML of no runs: no error")
	}
	run := synthRun(t, 1, threeDrivers()[:1]...)
	run.Cells[0].Histograms.Corrected = "not a histogram"
	if err := HTML(&bytes.Buffer{}, []*results.Run{run}); err == nil || !strings.Contains(err.Error(), "histogram") {
		t.Errorf("corrupt histogram: err = %v, want one naming the histogram", err)
	}
}

// TestHTML100CellsSize keeps the 100-cell report under 2 MB.
func TestHTML100CellsSize(t *testing.T) {
	page := renderHTML(t, hundredRun(t))
	const limit = 2 << 20
	t.Logf("100-cell report: %d bytes", len(page))
	if len(page) >= limit {
		t.Errorf("100-cell report is %d bytes, want < %d", len(page), limit)
	}
}

func TestFullSeconds(t *testing.T) {
	pts := func(secs ...int) []results.Point {
		var out []results.Point
		for _, s := range secs {
			out = append(out, results.Point{Second: s})
		}
		return out
	}
	tests := []struct {
		seconds float64
		in      []results.Point
		want    int
	}{
		{2, pts(0, 1, 2), 2},   // a straggler after the window
		{2.5, pts(0, 1, 2), 2}, // a partial last second
		{3, pts(0, 1, 2), 3},   // all full
		{0.5, pts(0), 1},       // a window shorter than a second keeps its point
		{2, pts(5, 6), 2},      // nothing fits: keep what there is
		{10, nil, 0},
	}
	for _, tt := range tests {
		got := fullSeconds(&results.Cell{Seconds: tt.seconds, Series: tt.in})
		if len(got) != tt.want {
			t.Errorf("Seconds %v, series %v: kept %d points, want %d", tt.seconds, tt.in, len(got), tt.want)
		}
	}
}

// A run where every driver was skipped still gets a report that says so.
func TestReportsOfARunWithNoCells(t *testing.T) {
	run := synthRun(t, 1)
	run.Complete = false
	run.Incomplete = "every driver was skipped"
	page := renderHTML(t, run)
	for _, want := range []string{"No cells were measured.", "no rocketmq broker", "every driver was skipped"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML of an empty run lacks %q", want)
		}
	}
	var md bytes.Buffer
	if err := Markdown(&md, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "No cells were measured.") || !strings.Contains(md.String(), "Incomplete run") {
		t.Errorf("Markdown of an empty run:\n%s", md.String())
	}
}

// TestRealResult reports on a result written by a real `rpcbench run`
// (tcp, grpc/unary and nats/core at concurrency 1 and 8, 2 s a cell), so a
// change in what the runner writes shows here. Regenerate it with
//
//	rpcbench run --drivers tcp,grpc:unary,nats:core --concurrency 1,8 --payload 64 --duration 2s --warmup 300ms -o /tmp/r
//	cp /tmp/r/*/result.json report/testdata/result-tcp-grpc-nats.json
func TestRealResult(t *testing.T) {
	run, err := results.Read(filepath.Join("testdata", "result-tcp-grpc-nats.json"))
	if err != nil {
		t.Fatal(err)
	}
	page := renderHTML(t, run)
	for kind, want := range map[string]int{"percentile": 2, "latency-time": 2, "throughput-time": 2, "latency-load": 1, "throughput-load": 1} {
		if got := strings.Count(page, `data-chart="`+kind+`"`); got != want {
			t.Errorf("%d %s charts, want %d", got, kind, want)
		}
	}
	var md, bf bytes.Buffer
	if err := Markdown(&md, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "tcp/mux had the lowest p99 latency") {
		t.Errorf("headline:\n%s", md.String())
	}
	if err := Benchfmt(&bf, run); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(bf.String(), "\nBenchmarkRPC/"); n != 6 {
		t.Errorf("%d benchmark lines, want 6", n)
	}
}
