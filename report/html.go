package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot/plotter"

	"github.com/rpcbench/rpcbench/results"
)

//go:embed report.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("report").Parse(pageTemplate))

// HTML writes a self-contained HTML report of one or more runs: every
// style, script and chart is inline, and the page makes no network request.
// Several runs are merged into one comparison; their cells are labelled
// with the run they came from.
func HTML(w io.Writer, runs []*results.Run) error {
	m, err := build(runs)
	if err != nil {
		return err
	}
	pg, err := m.page()
	if err != nil {
		return err
	}
	return tmpl.Execute(w, pg)
}

type page struct {
	Title    string
	Headline string
	Second   string
	Notes    []string

	ShowRun, ShowService, ShowReps bool
	Rows                           []rowView
	Legend                         []legendItem

	Percentile []figure
	Load       []figure
	Time       []figure
	TimeNote   string

	Corrected        []corrView
	CorrectedFigures []figure

	Errors     []errView
	Skipped    []skipRow
	Saturation []satRow
	Cost       *costView
	Hops       []hopRow
	Queues     []queueRow
	Faults     []faultView
	FaultNote  string
	Runs       []runView
	// Claims are the claims suite's verdicts, shown first (HTMLWithClaims).
	Claims []claimView
}

type cellVal struct {
	Text string
	Sort string
}

type rowView struct {
	Label, Color, Kind, Run, Driver, Variant string
	Payload, Load, Service                   cellVal
	P50, P99, P999, Tput, Errors, Ratio      cellVal
	Reps                                     int
	Flag, FlagDetail                         string
}

type legendItem struct {
	Name, Color string
	Dashed      bool
}

type figure struct {
	Kind    string // percentile, latency-time, throughput-time, latency-load, throughput-load, corrected
	Title   string
	SVG     template.HTML
	Legend  []legendItem
	Caption string
}

type corrView struct {
	Label, Color, Point                  string
	CP50, CP99, CP999, UP50, UP99, UP999 string
}

type errView struct {
	Label, Point                                                                   string
	Scheduled, OK, Timeout, Transport, Responder, Mismatch, Overflow, Late, Failed int64
	Messages                                                                       []string
}

type kv struct{ K, V string }

type runView struct {
	Label        string
	Env          []kv
	Libraries    []kv
	Brokers      []results.Broker
	Scenario     []kv
	ScenarioJSON string
}

func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "Infinity"
	}
	return strconv.FormatFloat(v, 'g', 10, 64)
}

func (m *model) page() (*page, error) {
	pg := &page{
		Title:      "rpcbench report",
		Headline:   m.headline(),
		Second:     strings.TrimSpace(m.directVsBroker() + " " + m.mqCosts() + " " + m.leftOut()),
		ShowRun:    m.multiRun(),
		Skipped:    m.skipped(),
		Saturation: m.saturation(),
		Cost:       m.costs(),
		Hops:       m.hops(),
		Queues:     m.queues(),
		Faults:     m.faults(),
		FaultNote:  faultLimitsNote,
	}
	if len(m.runs) == 1 && m.runs[0].Scenario.Name != "" {
		pg.Title = "rpcbench: " + m.runs[0].Scenario.Name
	}
	pg.ShowService = m.variesService()
	reps, uniform := m.reps()
	pg.ShowReps = !uniform
	switch {
	case reps > 1 && uniform:
		pg.Notes = append(pg.Notes, fmt.Sprintf("Each cell ran %d times; latencies are from the merged histograms of its repetitions, throughput is their mean.", reps))
	case !uniform:
		pg.Notes = append(pg.Notes, "Cells ran different numbers of times; latencies are from the merged histograms of each cell's repetitions, throughput is their mean.")
	}
	for i, run := range m.runs {
		if !run.Complete {
			why := run.Incomplete
			if why == "" {
				why = "no reason recorded"
			}
			pg.Notes = append(pg.Notes, fmt.Sprintf("Run %s is incomplete: %s.", m.labels[i], strings.TrimSuffix(why, ".")))
		}
	}
	if rn := m.runNotes(); len(rn) > 0 {
		pg.Notes = append(pg.Notes, fmt.Sprintf("%d runs merged: %s.", len(m.runs), strings.Join(rn, "; ")))
	}
	for _, g := range m.generatorLines() {
		pg.Notes = append(pg.Notes, "Open-loop "+g+" (the generator's own lateness, never charged to the transport).")
	}
	pg.Notes = append(pg.Notes, "Latency is measured from each call's intended start (coordinated omission corrected). “vs fastest direct” is a cell's p99 over the p99 of the fastest direct-RPC cell at the same payload and load.")

	for _, r := range m.rows {
		pg.Rows = append(pg.Rows, m.rowView(r))
	}
	for _, c := range m.configs {
		pg.Legend = append(pg.Legend, legendItem{Name: m.cfgName[c], Color: cssColor(colorFor(m.cfgIdx[c]))})
	}
	var err error
	if pg.Percentile, err = m.percentileFigures(); err != nil {
		return nil, err
	}
	if m.variesLoad() {
		if pg.Load, err = m.loadFigures(); err != nil {
			return nil, err
		}
	}
	if pg.Time, err = m.timeFigures(); err != nil {
		return nil, err
	}
	if reps > 1 {
		pg.TimeNote = "Over-time charts show each cell's first repetition."
	}
	if pg.Corrected, pg.CorrectedFigures, err = m.correctedSection(); err != nil {
		return nil, err
	}
	pg.Errors = m.errorViews()
	for i, run := range m.runs {
		pg.Runs = append(pg.Runs, runViewOf(m.labels[i], run))
	}
	return pg, nil
}

func (m *model) rowView(r *row) rowView {
	v := rowView{
		Label:   r.label,
		Color:   cssColor(colorFor(m.cfgIdx[r.config])),
		Kind:    r.kind,
		Run:     r.runLabel,
		Driver:  r.driver,
		Variant: r.variant,
		Payload: cellVal{formatBytes(r.payload), strconv.Itoa(r.payload)},
		Load:    cellVal{formatLoad(r.mode, r.concurrency, r.rate), num(r.load())},
		Service: cellVal{r.service, num(serviceNanos(r.service))},
		Tput:    cellVal{formatRate(r.throughput), num(r.throughput)},
		Errors:  cellVal{errorsCell(r), strconv.FormatInt(r.errors, 10)},
		Reps:    len(r.reps),
	}
	lat := func(us float64) cellVal {
		if !r.ok() {
			return cellVal{"–", "Infinity"}
		}
		return cellVal{formatMicros(us), num(us)}
	}
	v.P50, v.P99, v.P999 = lat(r.lat.P50), lat(r.lat.P99), lat(r.lat.P999)
	if r.ratio > 0 {
		v.Ratio = cellVal{formatRatio(r.ratio), num(r.ratio)}
	} else {
		v.Ratio = cellVal{"–", "Infinity"}
	}
	switch {
	case len(r.cellErrors) > 0:
		v.Flag, v.FlagDetail = "error", r.cellErrors[0]
	case r.incomplete:
		v.Flag = "cut short"
	case !r.ok():
		v.Flag = "no successful call"
	case r.errorRate > results.MaxErrorRate:
		v.Flag, v.FlagDetail = "failures", fmt.Sprintf("%.2f%% of calls failed: left out of rankings and ratios", 100*r.errorRate)
	case r.genLimited != "":
		v.Flag, v.FlagDetail = "generator-limited", r.genLimited
	case r.unsettled:
		v.Flag, v.FlagDetail = "unsettled", "measured before the driver's throughput and p50 settled (see the run's warm-ups)"
	case r.busy:
		v.Flag, v.FlagDetail = "busy machine", fmt.Sprintf("other processes or the hypervisor took over %.2f cores during the window (cost.other_cpu_cores, cost.steal_cores)", results.BusyCores)
	}
	if v.FlagDetail == "" && len(r.errorMsgs) > 0 {
		e := r.errorMsgs[0]
		v.FlagDetail = fmt.Sprintf("%d× %s", e.Count, e.Message)
	}
	return v
}

func (m *model) legendFor(rows []*row, dashedToo bool) []legendItem {
	var out []legendItem
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.config] {
			continue
		}
		seen[r.config] = true
		out = append(out, legendItem{Name: r.label, Color: cssColor(colorFor(m.cfgIdx[r.config])), Dashed: dashedToo})
	}
	return out
}

// percentileFigures draws one percentile-distribution chart per load
// point with every cell at that point overlaid.
func (m *model) percentileFigures() ([]figure, error) {
	var out []figure
	for _, p := range m.points {
		rows := m.rowsAt(p)
		var lines []series
		var shown []*row
		maxX := 100.0
		for _, r := range rows {
			if r.corrected == nil || r.corrected.TotalCount() == 0 {
				continue
			}
			xy := percentileXY(r.corrected)
			lines = append(lines, series{cfg: m.cfgIdx[r.config], xy: xy})
			shown = append(shown, r)
			maxX = math.Max(maxX, xy[len(xy)-1].X)
		}
		if len(lines) == 0 {
			continue
		}
		svg, err := chartSpec{
			title: "Latency by percentile · " + p.String(), xLabel: "percentile", yLabel: "latency",
			percentileX: true, logX: true, xMin: 1, xMax: maxX, latencyY: true, logY: wideRange(lines), lines: lines,
		}.render()
		if err != nil {
			return nil, err
		}
		if svg == "" {
			continue
		}
		out = append(out, figure{Kind: "percentile", Title: p.String(), SVG: svg, Legend: m.legendFor(shown, false)})
	}
	return out, nil
}

type loadGroup struct {
	mode, service string
	payload       int
}

// loadFigures draws latency and throughput against load, one pair per
// payload and service time, one line per driver configuration.
func (m *model) loadFigures() ([]figure, error) {
	var groups []loadGroup
	byGroup := map[loadGroup][]*row{}
	for _, r := range m.rows {
		g := loadGroup{r.mode, r.service, r.payload}
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], r)
	}
	var out []figure
	for _, g := range groups {
		rows := byGroup[g]
		loads := map[float64]bool{}
		for _, r := range rows {
			loads[r.load()] = true
		}
		if len(loads) < 2 {
			continue
		}
		var xs []float64
		for x := range loads {
			xs = append(xs, x)
		}
		logX := loadAxisLog(xs)
		xLabel := "concurrency"
		if g.mode == "open" {
			xLabel = "offered rate (calls/s)"
		}
		title := formatBytes(g.payload)
		if g.service != "" && g.service != "0" {
			title += ", service " + g.service
		}
		var lat, tput []series
		var shown []*row
		for _, cfg := range m.configs {
			var p50, p99, tp plotter.XYs
			for _, r := range rows {
				if r.config != cfg || !r.ok() {
					continue
				}
				p50 = append(p50, plotter.XY{X: r.load(), Y: r.lat.P50})
				p99 = append(p99, plotter.XY{X: r.load(), Y: r.lat.P99})
				tp = append(tp, plotter.XY{X: r.load(), Y: r.throughput})
				if len(p99) == 1 {
					shown = append(shown, r)
				}
			}
			if len(p99) == 0 {
				continue
			}
			for _, s := range []plotter.XYs{p50, p99, tp} {
				sort.Slice(s, func(i, j int) bool { return s[i].X < s[j].X })
			}
			i := m.cfgIdx[cfg]
			lat = append(lat, series{cfg: i, xy: p99}, series{cfg: i, dashed: true, xy: p50})
			tput = append(tput, series{cfg: i, xy: tp})
		}
		if len(lat) == 0 {
			continue
		}
		svg, err := chartSpec{title: "Latency against load · " + title, xLabel: xLabel, yLabel: "latency",
			logX: logX, latencyY: true, logY: wideRange(lat), lines: lat}.render()
		if err != nil {
			return nil, err
		}
		out = append(out, figure{Kind: "latency-load", Title: title, SVG: svg, Legend: m.legendFor(shown, false), Caption: "Solid: p99. Dashed: p50."})
		svg, err = chartSpec{title: "Throughput against load · " + title, xLabel: xLabel, yLabel: "calls/s",
			logX: logX, rateY: true, yFromZero: true, lines: tput}.render()
		if err != nil {
			return nil, err
		}
		out = append(out, figure{Kind: "throughput-load", Title: title, SVG: svg, Legend: m.legendFor(shown, false)})
	}
	return out, nil
}

// timeFigures draws latency over time and throughput over time for every
// cell, the cells at one load point overlaid in one pair of charts.
func (m *model) timeFigures() ([]figure, error) {
	var out []figure
	for _, p := range m.points {
		var lat, tput []series
		var shown []*row
		for _, r := range m.rowsAt(p) {
			if len(r.reps) == 0 || len(r.reps[0].Series) == 0 {
				continue
			}
			var p50, p99, tp plotter.XYs
			for _, pt := range fullSeconds(r.reps[0]) {
				x := float64(pt.Second)
				tp = append(tp, plotter.XY{X: x, Y: pt.Throughput})
				if pt.OK > 0 {
					p50 = append(p50, plotter.XY{X: x, Y: pt.P50})
					p99 = append(p99, plotter.XY{X: x, Y: pt.P99})
				}
			}
			i := m.cfgIdx[r.config]
			lat = append(lat, series{cfg: i, xy: p99}, series{cfg: i, dashed: true, xy: p50})
			tput = append(tput, series{cfg: i, xy: tp})
			shown = append(shown, r)
		}
		if len(shown) == 0 {
			continue
		}
		svg, err := chartSpec{title: "Latency over time · " + p.String(), xLabel: "second",
			yLabel: "latency", latencyY: true, logY: wideRange(lat), lines: lat}.render()
		if err != nil {
			return nil, err
		}
		if svg != "" {
			out = append(out, figure{Kind: "latency-time", Title: p.String(), SVG: svg, Legend: m.legendFor(shown, false), Caption: "Each full second of the measured window. Solid: p99. Dashed: p50."})
		}
		svg, err = chartSpec{title: "Throughput over time · " + p.String(), xLabel: "second",
			yLabel: "calls/s", rateY: true, yFromZero: true, lines: tput}.render()
		if err != nil {
			return nil, err
		}
		if svg != "" {
			out = append(out, figure{Kind: "throughput-time", Title: p.String(), SVG: svg, Legend: m.legendFor(shown, false)})
		}
	}
	return out, nil
}

// differs says whether corrected and uncorrected latency tell different
// stories for r (more than 1% apart at p50, p99 or p99.9).
func differs(r *row) bool {
	if !r.ok() || r.uncor.Count == 0 {
		return false
	}
	d := func(a, b float64) bool { return math.Abs(a-b) > 0.01*math.Max(a, b) }
	return d(r.lat.P50, r.uncor.P50) || d(r.lat.P99, r.uncor.P99) || d(r.lat.P999, r.uncor.P999)
}

func (m *model) correctedSection() ([]corrView, []figure, error) {
	var views []corrView
	var figs []figure
	for _, p := range m.points {
		var lines []series
		var shown []*row
		maxX := 100.0
		for _, r := range m.rowsAt(p) {
			if !differs(r) {
				continue
			}
			views = append(views, corrView{
				Label: r.label, Color: cssColor(colorFor(m.cfgIdx[r.config])), Point: p.String(),
				CP50: formatMicros(r.lat.P50), CP99: formatMicros(r.lat.P99), CP999: formatMicros(r.lat.P999),
				UP50: formatMicros(r.uncor.P50), UP99: formatMicros(r.uncor.P99), UP999: formatMicros(r.uncor.P999),
			})
			if r.corrected == nil || r.uncorrected == nil {
				continue
			}
			i := m.cfgIdx[r.config]
			c, u := percentileXY(r.corrected), percentileXY(r.uncorrected)
			lines = append(lines, series{cfg: i, xy: c}, series{cfg: i, dashed: true, xy: u})
			shown = append(shown, r)
			maxX = math.Max(maxX, c[len(c)-1].X)
		}
		if len(lines) == 0 {
			continue
		}
		svg, err := chartSpec{title: "Corrected and uncorrected · " + p.String(), xLabel: "percentile",
			yLabel: "latency", percentileX: true, logX: true, xMin: 1, xMax: maxX,
			latencyY: true, logY: wideRange(lines), lines: lines}.render()
		if err != nil {
			return nil, nil, err
		}
		if svg != "" {
			figs = append(figs, figure{Kind: "corrected", Title: p.String(), SVG: svg, Legend: m.legendFor(shown, false),
				Caption: "Solid: from each call's intended start (corrected). Dashed: from its actual send (uncorrected)."})
		}
	}
	return views, figs, nil
}

func (m *model) errorViews() []errView {
	var out []errView
	for _, r := range m.rows {
		c := r.counts
		if r.errors == 0 && len(r.cellErrors) == 0 && !r.incomplete {
			continue
		}
		msgs := r.cellErrors
		if r.incomplete && len(msgs) == 0 {
			msgs = []string{"cut short"}
		}
		out = append(out, errView{Label: r.label, Point: r.point().String(), Scheduled: c.Scheduled, OK: c.OK, Timeout: c.Timeout,
			Transport: c.Transport, Responder: c.Responder, Mismatch: c.Mismatch, Overflow: c.Overflow, Late: c.Late,
			Failed: r.errors, Messages: msgs})
	}
	return out
}

func runViewOf(label string, run *results.Run) runView {
	e := run.Environment
	v := runView{Label: label, Brokers: e.Brokers}
	add := func(k, val string) {
		if val != "" {
			v.Env = append(v.Env, kv{k, val})
		}
	}
	add("run", run.ID)
	if !run.StartedAt.IsZero() {
		add("started", run.StartedAt.UTC().Format(time.RFC3339))
	}
	if !run.FinishedAt.IsZero() {
		add("finished", run.FinishedAt.UTC().Format(time.RFC3339))
		if !run.StartedAt.IsZero() {
			add("wall time", run.FinishedAt.Sub(run.StartedAt).Round(time.Second).String())
		}
	}
	if run.Complete {
		add("complete", "yes")
	} else {
		add("complete", "no: "+run.Incomplete)
	}
	add("rpcbench", e.RpcbenchVersion)
	add("commit", e.Commit)
	add("Go", e.GoVersion)
	if e.OS != "" || e.Arch != "" {
		add("OS/arch", e.OS+"/"+e.Arch)
	}
	add("kernel", e.Kernel)
	add("CPU", e.CPUModel)
	if e.Cores > 0 {
		add("cores", strconv.Itoa(e.Cores))
	}
	if e.GOMAXPROCS > 0 {
		add("GOMAXPROCS", strconv.Itoa(e.GOMAXPROCS))
	}
	add("schema version", strconv.Itoa(run.SchemaVersion))
	keys := make([]string, 0, len(e.Libraries))
	for k := range e.Libraries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Libraries = append(v.Libraries, kv{k, e.Libraries[k]})
	}

	s := run.Scenario
	sc := func(k, val string) {
		if val != "" {
			v.Scenario = append(v.Scenario, kv{k, val})
		}
	}
	sc("name", s.Name)
	sc("description", s.Description)
	sc("source", s.Source)
	var drv []string
	for _, d := range s.Drivers {
		x := d.Name
		if len(d.Variants) > 0 {
			x += " (" + strings.Join(d.Variants, ", ") + ")"
		}
		if o := results.OptionsString(d.Options); o != "" {
			x += " [" + o + "]"
		}
		if d.Duration != "" {
			x += " (cells of " + d.Duration + ")"
		}
		drv = append(drv, x)
	}
	sc("drivers", strings.Join(drv, "; "))
	var pl []string
	for _, n := range s.Payloads {
		pl = append(pl, formatBytes(n))
	}
	sc("payloads", strings.Join(pl, ", "))
	sc("response size", formatBytes(s.ResponseSize))
	if len(s.Concurrency) > 0 {
		var cs []string
		for _, c := range s.Concurrency {
			cs = append(cs, strconv.Itoa(c))
		}
		sc("concurrency (closed loop)", strings.Join(cs, ", "))
	}
	if len(s.Rates) > 0 {
		var rs []string
		for _, r := range s.Rates {
			rs = append(rs, strconv.FormatFloat(r, 'f', -1, 64))
		}
		sc("rate, calls/s (open loop)", strings.Join(rs, ", "))
		sc("max in flight", strconv.Itoa(s.MaxInFlight))
	}
	sc("service times", strings.Join(s.ServiceTimes, ", "))
	if ch := s.Chain; ch != nil {
		var ds []string
		for _, d := range ch.Depth {
			ds = append(ds, strconv.Itoa(d))
		}
		sc("call chains (hops × mode)", strings.Join(ds, ", ")+" × "+strings.Join(ch.Mode, ", "))
	}
	dur := s.Duration
	if slices.ContainsFunc(s.Drivers, func(d results.ScenarioDriver) bool { return d.Duration != "" }) {
		dur += " (some drivers' own: see drivers)"
	}
	sc("duration", dur)
	if s.Calls > 0 {
		sc("calls per cell", strconv.FormatInt(s.Calls, 10))
	}
	sc("warm-up", s.Warmup)
	sc("broker warm-up", s.BrokerWarmup)
	sc("timeout", s.Timeout)
	sc("repetitions", strconv.Itoa(s.Repeat))
	if b, err := json.MarshalIndent(s, "", "  "); err == nil {
		v.ScenarioJSON = string(b)
	}
	return v
}

// fullSeconds drops series points for seconds that are not wholly inside
// the cell's measured window (a partial last second, or stragglers that
// completed after it), which would show as a false drop in throughput.
func fullSeconds(c *results.Cell) []results.Point {
	if c.Seconds < 1 {
		return c.Series
	}
	var out []results.Point
	for _, p := range c.Series {
		if float64(p.Second)+1 <= c.Seconds+1e-6 {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return c.Series
	}
	return out
}
