package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"regexp"
	"sort"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Charts are drawn by gonum.org/v1/plot into SVG, then inlined in the page.
// Lines are told apart by colour (one per driver configuration, the same in
// every chart) and legends are HTML beside the chart so they never cover
// data and reflow on a phone.

const (
	chartW vg.Length = 400 // points
	chartH vg.Length = 250
)

// palette is Tableau 10: distinguishable, and readable in greyscale print
// together with the dash patterns.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

func colorFor(i int) color.RGBA { return palette[i%len(palette)] }

func cssColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

var dashed = []vg.Length{vg.Points(4), vg.Points(3)}

// series is one line of a chart.
type series struct {
	cfg    int // colour index
	dashed bool
	xy     plotter.XYs
}

type chartSpec struct {
	title, xLabel, yLabel string
	logX, logY            bool
	latencyY              bool // y values are µs
	rateY                 bool // y values are calls/s
	percentileX           bool
	xMin, xMax            float64 // 0: from data
	yFromZero             bool
	lines                 []series
}

func newPlot(title string) *plot.Plot {
	p := plot.New()
	sans := func(size vg.Length) font.Font {
		return font.Font{Typeface: "Liberation", Variant: "Sans", Size: size}
	}
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(12)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(11)
		a.Tick.Label.Font = sans(10)
		a.Padding = vg.Points(2)
	}
	p.Legend.TextStyle.Font = sans(9)
	return p
}

// newGridPlot is a plot with its title, axis labels and a light grid.
func newGridPlot(title, x, y string) *plot.Plot {
	p := newPlot(title)
	p.X.Label.Text, p.Y.Label.Text = x, y
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{0xe4}
	grid.Horizontal.Color = color.Gray{0xe4}
	p.Add(grid)
	return p
}

// render draws the chart and returns inline SVG markup. It returns "" when
// the chart has no data.
func (cs chartSpec) render() (template.HTML, error) {
	var lines []series
	for _, l := range cs.lines {
		var xy plotter.XYs
		for _, pt := range l.xy {
			if math.IsNaN(pt.Y) || math.IsInf(pt.Y, 0) || (cs.logY && pt.Y <= 0) || (cs.logX && pt.X <= 0) {
				continue
			}
			xy = append(xy, pt)
		}
		if len(xy) > 0 {
			lines = append(lines, series{cfg: l.cfg, dashed: l.dashed, xy: xy})
		}
	}
	if len(lines) == 0 {
		return "", nil
	}
	p := newPlot(cs.title)
	p.X.Label.Text = cs.xLabel
	p.Y.Label.Text = cs.yLabel
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{0xe4}
	grid.Horizontal.Color = color.Gray{0xe4}
	p.Add(grid)

	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, l := range lines {
		line, err := plotter.NewLine(l.xy)
		if err != nil {
			return "", err
		}
		line.Color = colorFor(l.cfg)
		line.Width = vg.Points(1.5)
		if l.dashed {
			line.Dashes = dashed
			line.Width = vg.Points(1.2)
		}
		p.Add(line)
		if len(l.xy) == 1 { // a single point draws no line: mark it
			sc, err := plotter.NewScatter(l.xy)
			if err != nil {
				return "", err
			}
			sc.Color = colorFor(l.cfg)
			sc.Radius = vg.Points(2.5)
			p.Add(sc)
		}
		for _, pt := range l.xy {
			xmin, xmax = math.Min(xmin, pt.X), math.Max(xmax, pt.X)
			ymin, ymax = math.Min(ymin, pt.Y), math.Max(ymax, pt.Y)
		}
	}
	if cs.xMin != 0 || cs.xMax != 0 {
		xmin, xmax = cs.xMin, cs.xMax
	}
	if xmax <= xmin {
		if cs.logX {
			xmin, xmax = xmin/2, xmax*2
		} else {
			xmin, xmax = xmin-1, xmax+1
		}
	}
	if cs.yFromZero && !cs.logY {
		ymin = 0
	}
	if ymax <= ymin {
		if cs.logY || ymax > 0 {
			ymin, ymax = ymin/2, ymax*1.5
		} else {
			ymin, ymax = ymin-1, ymax+1
		}
	}
	if cs.logY {
		// pad a little so lines do not sit on the frame
		ymin, ymax = ymin/1.15, ymax*1.15
	} else {
		ymax += (ymax - ymin) * 0.05
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin, xmax, ymin, ymax

	switch {
	case cs.percentileX:
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = percentileTicks{}
	case cs.logX:
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{format: plainNumber}
	default:
		p.X.Tick.Marker = relabel{plot.DefaultTicks{}, plainNumber}
	}
	yfmt := plainNumber
	if cs.latencyY {
		yfmt = tickMicros
	} else if cs.rateY {
		yfmt = tickRate
	}
	if cs.logY {
		p.Y.Label.Text += " (log scale)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{format: yfmt}
	} else {
		p.Y.Tick.Marker = relabel{plot.DefaultTicks{}, yfmt}
	}
	return toSVG(p)
}

var svgOpen = regexp.MustCompile(`<svg width="[^"]*" height="[^"]*"`)

// toSVG renders p and makes the SVG fit for inlining: no XML prolog, no
// fixed size (it scales with the page), and a font stack that falls back to
// metric-compatible fonts.
func toSVG(p *plot.Plot) (template.HTML, error) {
	c := vgsvg.New(chartW, chartH)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	s = svgOpen.ReplaceAllLiteralString(s, `<svg class="chart" role="img" preserveAspectRatio="xMidYMid meet"`)
	s = strings.ReplaceAll(s, "font-family:Liberation Sans;", "font-family:Liberation Sans,Arimo,Arial,Helvetica,sans-serif;")
	return template.HTML(s), nil
}

// tickMicros and tickRate are formatMicros and formatRate without
// trailing zeros: "50 µs", "1 ms", "120k".
func tickMicros(us float64) string {
	num, unit, _ := strings.Cut(formatMicros(us), " ")
	if unit == "" {
		return trimZeros(num)
	}
	return trimZeros(num) + " " + unit
}

func tickRate(v float64) string {
	s := formatRate(v)
	suffix := strings.TrimLeft(s, "0123456789.")
	return trimZeros(strings.TrimSuffix(s, suffix)) + suffix
}

func plainNumber(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e6:
		return sig3(v/1e6) + "M"
	case math.Abs(v) >= 1e4:
		return trimZeros(fmt.Sprintf("%.1f", v/1e3)) + "k"
	}
	return trimZeros(fmt.Sprintf("%.3f", v))
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// relabel keeps a ticker's positions and formats its labels.
type relabel struct {
	t      plot.Ticker
	format func(float64) string
}

func (r relabel) Ticks(min, max float64) []plot.Tick {
	ts := r.t.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = r.format(ts[i].Value)
		}
	}
	return ts
}

// logTicks labels 1-2-5 steps per decade when the range is narrow and
// whole decades when it is wide.
type logTicks struct{ format func(float64) string }

func (t logTicks) Ticks(min, max float64) []plot.Tick {
	if min <= 0 || max <= min {
		return nil
	}
	decades := math.Log10(max / min)
	steps := []float64{1, 2, 5}
	if decades > 4 {
		steps = []float64{1}
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := base * float64(m)
			if v < min*0.999 || v > max*1.001 {
				continue
			}
			label := ""
			for _, s := range steps {
				if float64(m) == s {
					label = t.format(v)
				}
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: label})
		}
	}
	labelled := 0
	for _, tk := range ticks {
		if tk.Label != "" {
			labelled++
		}
	}
	if labelled < 2 { // too narrow for decade ticks: fall back to linear ones
		return relabel{plot.DefaultTicks{}, t.format}.Ticks(min, max)
	}
	return ticks
}

// percentileTicks labels the 1/(1-q) axis with percentiles.
type percentileTicks struct{}

func (percentileTicks) Ticks(min, max float64) []plot.Tick {
	labels := []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"}
	var ticks []plot.Tick
	for i, l := range labels {
		v := math.Pow(10, float64(i))
		if v > max*1.001 {
			break
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: l})
		for m := 2; m < 10 && i < len(labels)-1; m++ {
			if mv := v * float64(m); mv <= max {
				ticks = append(ticks, plot.Tick{Value: mv})
			}
		}
	}
	return ticks
}

// percentileXY samples a histogram (ns) along the HdrHistogram percentile
// axis: x = 1/(1-q) from q = 0 up to 99.999% or as far as the number of
// values supports; y in µs.
func percentileXY(h *hdrhistogram.Histogram) plotter.XYs {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	xmax := math.Min(1e5, float64(n))
	if xmax < 10 {
		xmax = 10
	}
	const perDecade = 24
	steps := int(math.Ceil(math.Log10(xmax) * perDecade))
	xs := make([]float64, 0, steps+1)
	pcts := make([]float64, 0, steps+1)
	for i := 0; i <= steps; i++ {
		x := math.Min(math.Pow(10, float64(i)/perDecade), xmax)
		xs = append(xs, x)
		pcts = append(pcts, 100*(1-1/x))
	}
	sorted := append([]float64(nil), pcts...)
	vals := h.ValueAtPercentiles(sorted)
	xy := make(plotter.XYs, len(xs))
	for i, x := range xs {
		p := math.Min(pcts[i], 100)
		xy[i] = plotter.XY{X: x, Y: float64(vals[p]) / 1e3}
	}
	return xy
}

// wideRange says whether values spread enough to want a log axis.
func wideRange(lines []series) bool {
	lo, hi := math.Inf(1), 0.0
	for _, l := range lines {
		for _, p := range l.xy {
			if p.Y > 0 {
				lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
			}
		}
	}
	return hi > 0 && hi/lo > 20
}

// loadAxisLog says whether load values spread enough to want a log axis.
func loadAxisLog(xs []float64) bool {
	sort.Float64s(xs)
	return len(xs) > 1 && xs[0] > 0 && xs[len(xs)-1]/xs[0] >= 8
}
