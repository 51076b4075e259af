package report

import (
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/rpcbench/rpcbench/results"
)

// faultView is one fault cell: its ledger, its faults with their recovery
// times, and its timeline chart.
type faultView struct {
	Label  string
	Ledger results.Ledger
	// Bad is set when calls were lost or duplicated: the row is marked.
	Bad    bool
	Events []faultEventView
	Chart  template.HTML
	Notes  []string
}

type faultEventView struct {
	Action, At, Restored, FirstOK, Recovered, Error, NotApplicable string
}

// faults lists every fault cell (each repetition on its own: a fault run
// is not averaged).
func (m *model) faults() []faultView {
	var out []faultView
	service := m.variesService()
	for _, r := range m.rows {
		for _, c := range r.reps {
			f := c.Faults
			if f == nil {
				continue
			}
			label := cellLabel(r, service)
			if len(r.reps) > 1 {
				label += fmt.Sprintf(" · rep %d", c.Repetition)
			}
			if m.multiRun() {
				label = r.runLabel + " · " + label
			}
			v := faultView{Label: label, Ledger: f.Ledger, Notes: f.Notes,
				Bad: f.Ledger.Lost > 0 || f.Ledger.Duplicated > 0 || f.Ledger.Undrained}
			for _, ev := range f.Events {
				v.Events = append(v.Events, eventView(ev))
			}
			v.Chart, _ = timelineChart(f)
			out = append(out, v)
		}
	}
	return out
}

func eventView(ev results.FaultEvent) faultEventView {
	ms := func(p *float64) string {
		if p == nil {
			return "never"
		}
		return fmt.Sprintf("%.0f ms", *p)
	}
	v := faultEventView{Action: ev.Action, At: fmt.Sprintf("%.1f s", ev.At), Restored: "not restored",
		FirstOK: ms(ev.FirstOKMs), Recovered: ms(ev.RecoveredMs), Error: ev.Error, NotApplicable: ev.NotApplicable}
	if ev.Restored != nil {
		v.Restored = fmt.Sprintf("%.1f s", *ev.Restored)
	}
	if ev.BaselineP99Us == 0 {
		v.Recovered = "no baseline"
	}
	return v
}

// timelineChart draws ok and failed calls per second over the cell (from
// the 100 ms timeline), with the faults marked.
func timelineChart(f *results.Faults) (template.HTML, error) {
	if len(f.Timeline) == 0 {
		return "", nil
	}
	perSec := 1000 / float64(max(f.StepMs, 1))
	var okXY, failXY plotter.XYs
	ymax := 1.0
	for _, p := range f.Timeline {
		okXY = append(okXY, plotter.XY{X: p.T, Y: float64(p.OK) * perSec})
		failXY = append(failXY, plotter.XY{X: p.T, Y: float64(p.Failed) * perSec})
		ymax = math.Max(ymax, math.Max(float64(p.OK), float64(p.Failed))*perSec)
	}
	p := newGridPlot("calls ending per second (100 ms steps)", "seconds from the cell's start", "calls/s")
	ok, err := plotter.NewLine(okXY)
	if err != nil {
		return "", err
	}
	ok.Color, ok.Width = colorFor(0), vg.Points(1.5)
	failed, err := plotter.NewLine(failXY)
	if err != nil {
		return "", err
	}
	failed.Color, failed.Width = color.RGBA{0xb3, 0x26, 0x1e, 0xff}, vg.Points(1.5)
	failed.Dashes = dashed
	p.Add(ok, failed)
	p.Legend.Add("ok", ok)
	p.Legend.Add("failed", failed)
	p.Legend.Top = true
	for _, ev := range f.Events {
		mark := func(x float64, c color.Color) error {
			l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: ymax * 1.05}})
			if err != nil {
				return err
			}
			l.Color, l.Width, l.Dashes = c, vg.Points(1), []vg.Length{vg.Points(2), vg.Points(2)}
			p.Add(l)
			return nil
		}
		if ev.At >= 0 {
			if err := mark(ev.At, color.Gray{0x40}); err != nil {
				return "", err
			}
		}
		if ev.Restored != nil {
			if err := mark(*ev.Restored, color.RGBA{0x2c, 0xa0, 0x2c, 0xff}); err != nil {
				return "", err
			}
		}
	}
	p.Y.Min, p.Y.Max = 0, ymax*1.1
	p.X.Min, p.X.Max = 0, f.Timeline[len(f.Timeline)-1].T
	p.X.Tick.Marker = relabel{plot.DefaultTicks{}, plainNumber}
	p.Y.Tick.Marker = relabel{plot.DefaultTicks{}, tickRate}
	return toSVG(p)
}

// faultsMarkdown is the summary's faults section.
func (m *model) faultsMarkdown() string {
	fs := m.faults()
	if len(fs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("**Faults** (every call accounted for against the responder's ledger; **LOST** and **DUPLICATED** calls are marked)\n\n")
	b.WriteString("| cell | attempted | exactly once | lost | duplicated | executed after the caller gave up | not sent | unexpected | fault: first ok after restore, p99 back within 1.5× |\n|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, f := range fs {
		l := f.Ledger
		lost, dup := fmt.Sprint(l.Lost), fmt.Sprint(l.Duplicated)
		if l.Lost > 0 {
			lost = "**LOST " + lost + "**"
		}
		if l.Duplicated > 0 {
			dup = "**DUPLICATED " + dup + "**"
		}
		var evs []string
		for _, e := range f.Events {
			s := fmt.Sprintf("%s at %s: %s, %s", e.Action, e.At, e.FirstOK, e.Recovered)
			if e.Error != "" {
				s = fmt.Sprintf("%s at %s: failed: %s", e.Action, e.At, e.Error)
			}
			if e.NotApplicable != "" {
				s = fmt.Sprintf("%s: not done (%s)", e.Action, e.NotApplicable)
			}
			evs = append(evs, s)
		}
		label := f.Label
		if l.Undrained {
			label += " (drain hit its bound: later handlings not counted)"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %d | %d | %d | %s |\n", mdEscape(label), l.Attempted, l.ExactlyOnce, lost, dup,
			l.ExecutedAfterTimeout, l.NotSent, l.Unexpected, mdEscape(strings.Join(evs, "; ")))
	}
	b.WriteString("\nattempted = exactly once + lost + duplicated + executed after the caller gave up; not sent: calls that never left the caller. " + faultLimitsNote + "\n\n")
	return b.String()
}

// faultLimitsNote says what a fault on one host cannot show.
const faultLimitsNote = "A fault on one host cannot show what a power loss would: a broker killed here loses nothing its kernel's page cache holds, so fsync policies cannot be told apart by killing processes."
