package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// TestFaultsSection: a fault cell's ledger, recovery and timeline reach
// the HTML report and the summary, with lost and duplicated calls marked.
func TestFaultsSection(t *testing.T) {
	run := synthRun(t, 1,
		spec{driver: "tcp", variant: "default", payload: 64, mode: "open", rate: 100, conc: 256, medianUs: 50},
		spec{driver: "nats", kind: "broker", variant: "jetstream", payload: 64, mode: "open", rate: 100, conc: 256, medianUs: 300})
	first := 12.5
	restored := 3.0
	for i := range run.Cells {
		c := &run.Cells[i]
		f := &results.Faults{StepMs: 100, Events: []results.FaultEvent{{Action: "kill-responder", At: 2, Restored: &restored, FirstOKMs: &first, BaselineP99Us: 900}}}
		for k := 0; k < 50; k++ {
			f.Timeline = append(f.Timeline, results.TimelinePoint{T: float64(k) / 10, OK: 10, Failed: int64(k % 3)})
		}
		if c.Driver == "tcp" {
			f.Ledger = results.Ledger{Attempted: 1000, ExactlyOnce: 990, Lost: 7, Duplicated: 3, Handlings: 996, Incarnations: 2}
		} else {
			f.Ledger = results.Ledger{Attempted: 1000, ExactlyOnce: 1000, Handlings: 1000, Incarnations: 2}
		}
		c.Faults = f
	}
	var html, md bytes.Buffer
	if err := HTML(&html, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	if err := Markdown(&md, []*results.Run{run}); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	for _, want := range []string{`id="faults"`, "LOST 7", "DUPLICATED 3", `class="fault-bad"`, "first ok call 12 ms after the restore", "p99 back within 1.5× of its value before the fault after never", "calls ending per second", faultLimitsNote[:40]} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Count(h, `class="fault-bad"`) != 1 {
		t.Errorf("%d rows marked bad, want 1 (tcp)", strings.Count(h, `class="fault-bad"`))
	}
	m := md.String()
	for _, want := range []string{"**Faults**", "**LOST 7**", "**DUPLICATED 3**", "kill-responder at 2.0 s: 12 ms, never"} {
		if !strings.Contains(m, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}
