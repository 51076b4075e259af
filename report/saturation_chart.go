package report

import (
	"cmp"
	"html/template"
	"image/color"
	"maps"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/rpcbench/rpcbench/results"
)

// saturationChart draws one sweep's latency against throughput: the
// closed-loop ladder's p50 (its cells in run), the open-loop trials' p50
// and p99 at the throughput each achieved, with X_sat (the knee: where
// more callers stopped buying throughput) and R* marked. "" when there is
// nothing to draw.
func saturationChart(run *results.Run, s *results.Saturation) (template.HTML, error) {
	var ladder plotter.XYs
	for i := range run.Cells {
		c := &run.Cells[i]
		if c.Mode != "closed" || c.Driver != s.Driver || c.Variant != s.Variant || !maps.Equal(c.Options, s.Options) ||
			c.Throughput <= 0 || c.Latency.P50 <= 0 || !slices.Contains(s.Settings.Ladder, c.Concurrency) {
			continue
		}
		ladder = append(ladder, plotter.XY{X: c.Throughput, Y: c.Latency.P50})
	}
	slices.SortFunc(ladder, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	// the last trial at each offered rate stands for it
	last := map[float64]results.SweepTrial{}
	for _, t := range s.Trials {
		if t.OKRate > 0 && t.P50 > 0 {
			last[t.Rate] = t
		}
	}
	var p50, p99 plotter.XYs
	var failed plotter.XYs
	for _, rate := range slices.Sorted(maps.Keys(last)) {
		t := last[rate]
		p50 = append(p50, plotter.XY{X: t.OKRate, Y: t.P50})
		p99 = append(p99, plotter.XY{X: t.OKRate, Y: t.P99})
		if t.Verdict != "pass" {
			failed = append(failed, plotter.XY{X: t.OKRate, Y: t.P99})
		}
	}
	if len(ladder)+len(p50) == 0 {
		return "", nil
	}
	p := newGridPlot("Latency against throughput", "ok calls/s", "latency (log scale)")
	xmax, ymin, ymax := 0.0, math.Inf(1), 0.0
	for _, xy := range []plotter.XYs{ladder, p50, p99} {
		for _, pt := range xy {
			xmax, ymin, ymax = math.Max(xmax, pt.X), math.Min(ymin, pt.Y), math.Max(ymax, pt.Y)
		}
	}
	xmax = math.Max(xmax, s.XSat)
	if s.MaxSustainableRate != nil {
		xmax = math.Max(xmax, *s.MaxSustainableRate)
	}
	add := func(name string, xy plotter.XYs, cfg int, dash bool) error {
		if len(xy) == 0 {
			return nil
		}
		l, sc, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		l.Color, l.Width = colorFor(cfg), vg.Points(1.5)
		if dash {
			l.Dashes = dashed
		}
		sc.Color, sc.Radius = colorFor(cfg), vg.Points(2)
		p.Add(l, sc)
		p.Legend.Add(name, l, sc)
		return nil
	}
	if err := add("closed-loop ladder, p50", ladder, 0, false); err != nil {
		return "", err
	}
	if err := add("open-loop trials, p50", p50, 1, false); err != nil {
		return "", err
	}
	if err := add("open-loop trials, p99", p99, 1, true); err != nil {
		return "", err
	}
	if len(failed) > 0 {
		sc, err := plotter.NewScatter(failed)
		if err != nil {
			return "", err
		}
		sc.Color, sc.Radius = color.RGBA{0xb3, 0x26, 0x1e, 0xff}, vg.Points(3.5)
		p.Add(sc)
		p.Legend.Add("trial failed", sc)
	}
	lo, hi := ymin/1.3, ymax*1.3
	mark := func(name string, x float64, c color.Color) error {
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}})
		if err != nil {
			return err
		}
		l.Color, l.Width, l.Dashes = c, vg.Points(1.2), []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	if s.XSat > 0 {
		if err := mark("X_sat (knee) "+formatRate(s.XSat)+"/s", s.XSat, color.Gray{0x40}); err != nil {
			return "", err
		}
	}
	if s.MaxSustainableRate != nil {
		if err := mark("R* "+formatRate(*s.MaxSustainableRate)+"/s", *s.MaxSustainableRate, color.RGBA{0x2c, 0xa0, 0x2c, 0xff}); err != nil {
			return "", err
		}
	} else if s.AtLeast > 0 {
		if err := mark("R* ≥ "+formatRate(s.AtLeast)+"/s (generator's ceiling)", s.AtLeast, color.RGBA{0x9a, 0xc8, 0x9a, 0xff}); err != nil {
			return "", err
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.X.Min, p.X.Max = 0, xmax*1.05
	p.Y.Min, p.Y.Max = lo, hi
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{format: tickMicros}
	p.X.Tick.Marker = relabel{plot.DefaultTicks{}, tickRate}
	return toSVG(p)
}
