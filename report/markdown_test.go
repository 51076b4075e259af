package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

func renderMarkdown(t *testing.T, runs ...*results.Run) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Markdown(&buf, runs); err != nil {
		t.Fatalf("Markdown: %v", err)
	}
	return buf.String()
}

func TestMarkdownGolden(t *testing.T) {
	repeated := synthRun(t, 11, threeDrivers()[3:]...)
	for i := range repeated.Cells {
		repeated.Cells[i].Repetition = 1
	}
	more := synthRun(t, 12, threeDrivers()[3:]...)
	for i := range more.Cells {
		more.Cells[i].Repetition = 2
	}
	repeated.Cells = append(repeated.Cells, more.Cells...)
	tests := []struct {
		name string
		runs []*results.Run
	}{
		{"summary-closed.md", []*results.Run{synthRun(t, 1, threeDrivers()...)}},
		{"summary-open.md", []*results.Run{openLoopRun(t)}},
		{"summary-two-runs.md", []*results.Run{synthRun(t, 1, threeDrivers()[:3]...), synthRun(t, 2, threeDrivers()[:3]...)}},
		{"summary-repetitions.md", []*results.Run{repeated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name, renderMarkdown(t, tt.runs...))
		})
	}
}

// TestMarkdownEnvironmentLinkFree checks that nothing in the environment
// line can turn into a link, a mention or an issue reference on a forge:
// it must sit inside a code span.
func TestMarkdownEnvironmentLinkFree(t *testing.T) {
	run := synthRun(t, 1, threeDrivers()[:1]...)
	run.Environment.Kernel = "6.1.0 #1 SMP https://example.com @someone"
	run.Environment.CPUModel = "CPU `with` backticks"
	md := renderMarkdown(t, run)
	var line string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "Environment: ") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no environment line in:\n%s", md)
	}
	if !regexp.MustCompile("^Environment: `[^`]*`$").MatchString(line) {
		t.Errorf("environment line is not one code span: %q", line)
	}
	if strings.Contains(line, "nats://") || strings.Contains(line, "127.0.0.1") {
		t.Errorf("environment line carries a broker address: %q", line)
	}
	if strings.Contains(md, "](") {
		t.Errorf("summary has a Markdown link:\n%s", md)
	}
}

func TestMarkdownEscapesTableCells(t *testing.T) {
	run := synthRun(t, 1, spec{driver: "odd|driver", variant: "a_b", payload: 64, conc: 1, medianUs: 10})
	md := renderMarkdown(t, run)
	if !strings.Contains(md, `odd\|driver`) {
		t.Errorf("a | in a driver name is not escaped:\n%s", md)
	}
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| odd") && strings.Count(strings.ReplaceAll(l, `\|`, ""), "|") != 11 {
			t.Errorf("table row has the wrong number of cells: %q", l)
		}
	}
}

// The open-loop generator's own lateness is in the summary, with the
// cells it limited marked.
func TestMarkdownGeneratorLateness(t *testing.T) {
	run := synthRun(t, 5, spec{driver: "tcp", variant: "default", payload: 64, mode: "open", rate: 1000, conc: 256, medianUs: 50, tput: 1000})
	run.Cells[0].Generator = &results.Generator{Lateness: results.Latency{P50: 3, P99: 350}, Limited: true, Reason: "p99 350µs exceeds 200µs", BoundP99US: 200, BoundLateShare: 0.01}
	var b strings.Builder
	if err := Markdown(&b, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Open-loop generator", "generator lateness p50 3.00 µs, p99 350 µs", "generator-limited"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
