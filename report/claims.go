package report

import (
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/rpcbench/rpcbench/results"
)

// Claim is one verdict of the claims suite as the report shows it: the
// report renders what it is given, it judges nothing.
type Claim struct {
	ID, Verdict, Claim, Reason string
	// Evidence is one line: what decided the verdict.
	Evidence string
	// Points are the claim's comparisons, for its chart.
	Points []ClaimPoint
	// Cells are the cell keys the comparisons used.
	Cells []string
	// AtDelay is the verdict at each injected one-way delay per hop, one
	// line each ("250µs: supported, as on loopback"); none when no cell
	// of the claim ran through the delay proxy.
	AtDelay []string
}

// ClaimPoint is one comparison: its value and 95% interval against its
// threshold (HasCI false: a single value), and whether it held ("holds",
// "fails" or "undecided").
type ClaimPoint struct {
	Label            string
	Value, Low, High float64
	Threshold        float64
	HasValue, HasCI  bool
	Outcome          string
}

// claimView is a claim's line in the report's claims section.
type claimView struct {
	Claim
	Chart   template.HTML
	Caption string // what each numbered point of the chart is
}

// HTMLWithClaims is HTML with the claims suite's verdicts at the top.
func HTMLWithClaims(w io.Writer, runs []*results.Run, claims []Claim) error {
	m, err := build(runs)
	if err != nil {
		return err
	}
	pg, err := m.page()
	if err != nil {
		return err
	}
	for _, c := range claims {
		v := claimView{Claim: c}
		v.Chart, v.Caption, _ = claimChart(c)
		pg.Claims = append(pg.Claims, v)
	}
	return tmpl.Execute(w, pg)
}

// claimChart draws each comparison's value over its threshold (1: the
// threshold itself), with its interval: the decision in one picture. ""
// when no comparison has a positive value.
func claimChart(c Claim) (template.HTML, string, error) {
	var pts []ClaimPoint
	var caption []string
	for _, p := range c.Points {
		if p.HasValue && p.Threshold > 0 && p.Value > 0 {
			pts = append(pts, p)
			caption = append(caption, fmt.Sprintf("%d: %s (%s)", len(pts), p.Label, p.Outcome))
		}
	}
	if len(pts) == 0 {
		return "", "", nil
	}
	p := newGridPlot(c.ID+": each comparison over its threshold", "comparison", "value ÷ threshold (log scale)")
	ymin, ymax := 1.0, 1.0
	colour := map[string]color.Color{"holds": color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, "fails": color.RGBA{0xb3, 0x26, 0x1e, 0xff}}
	var names []string
	for i, pt := range pts {
		x := float64(i + 1)
		v := pt.Value / pt.Threshold
		ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
		col, ok := colour[pt.Outcome]
		if !ok {
			col = color.Gray{0x88}
		}
		if pt.HasCI && pt.Low > 0 && pt.High > 0 {
			lo, hi := pt.Low/pt.Threshold, pt.High/pt.Threshold
			ymin, ymax = math.Min(ymin, lo), math.Max(ymax, hi)
			l, err := plotter.NewLine(plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}})
			if err != nil {
				return "", "", err
			}
			l.Color, l.Width = col, vg.Points(1.5)
			p.Add(l)
		}
		sc, err := plotter.NewScatter(plotter.XYs{{X: x, Y: v}})
		if err != nil {
			return "", "", err
		}
		sc.Color, sc.Radius = col, vg.Points(3)
		p.Add(sc)
		names = append(names, fmt.Sprint(i+1))
	}
	th, err := plotter.NewLine(plotter.XYs{{X: 0.5, Y: 1}, {X: float64(len(pts)) + 0.5, Y: 1}})
	if err != nil {
		return "", "", err
	}
	th.Color, th.Width, th.Dashes = color.Gray{0x40}, vg.Points(1), dashed
	p.Add(th)
	p.Legend.Add("threshold", th)
	p.Legend.Top = true
	p.X.Min, p.X.Max = 0.5, float64(len(pts))+0.5
	p.Y.Min, p.Y.Max = ymin/1.5, ymax*1.5
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{format: plainNumber}
	p.NominalX(append([]string{""}, names...)...)
	p.X.Min, p.X.Max = 0.5, float64(len(pts))+0.5
	svg, err := toSVG(p)
	return svg, strings.Join(caption, "; "), err
}
