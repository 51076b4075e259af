// Package report turns rpcbench results into things people and CI read: a
// self-contained HTML report, a Markdown summary, a statistical comparison of
// two runs and Go benchmark format for benchstat. It reads only the results
// type; it never reaches into the runner or the drivers.
package report

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/results"
)

// ErrBadInput marks errors caused by the input (no runs, no cells to
// compare, a malformed flag or option); commands map it to exit status 2.
var ErrBadInput = errors.New("bad input")

// inputError is a one-line message that is also ErrBadInput.
type inputError struct{ msg string }

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == ErrBadInput }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// row is one cell of the matrix with its repetitions merged.
type row struct {
	run      int // index into the runs given
	runLabel string
	key      string
	config   string // identifies the line across load points: run, driver, variant, options
	label    string // what a reader sees for the config

	driver, kind, variant string
	options               map[string]string
	payload               int
	mode                  string
	concurrency           int
	rate                  float64
	service               string

	reps []*results.Cell // sorted by repetition

	corrected, uncorrected *hdrhistogram.Histogram // merged over repetitions; nil when no histogram was stored
	lat, uncor             results.Latency
	throughput             float64 // mean over repetitions
	counts                 results.Counts
	errors                 int64 // failed + overflow, summed
	errorRate              float64
	genLimited             string // why the generator missed its bounds, "" when it did not
	errorMsgs              []results.ErrorCount
	warnings               []string
	cellErrors             []string
	incomplete             bool
	unsettled              bool // measured before its unit reached a steady state

	ratio float64 // p99 over the p99 of the fastest direct-RPC row at the same point; 0 when there is none
}

// point identifies a load point: rows at the same point are comparable.
type point struct {
	payload     int
	mode        string
	concurrency int
	rate        float64
	service     string
}

func (r *row) point() point {
	p := point{payload: r.payload, mode: r.mode, service: r.service}
	if r.mode == "open" {
		p.rate = r.rate
	} else {
		p.concurrency = r.concurrency
	}
	return p
}

func (r *row) ok() bool { return r.lat.Count > 0 }

// rankable reports whether the row may stand in a headline, a ranking or a
// ratio: it measured successful calls, at most results.MaxErrorRate of its
// calls failed, and its generator kept its schedule.
func (r *row) rankable() bool { return r.ok() && r.leftOutWhy() == "" }

// leftOutWhy says why a row with successful calls is kept out of
// headlines, rankings and ratios.
func (r *row) leftOutWhy() string {
	switch {
	case r.errorRate > results.MaxErrorRate:
		return fmt.Sprintf("%.2f%% of calls failed", 100*r.errorRate)
	case r.genLimited != "":
		return "generator-limited"
	case r.incomplete:
		return "cut short"
	}
	return ""
}

// load is the load value on a load axis: concurrency or rate.
func (r *row) load() float64 {
	if r.mode == "open" {
		return r.rate
	}
	return float64(r.concurrency)
}

// model is everything the reporters show, derived once from the runs.
type model struct {
	runs    []*results.Run
	labels  []string // one per run
	rows    []*row
	configs []string // config ids in order of first appearance
	cfgIdx  map[string]int
	cfgName map[string]string
	points  []point // in row order of first appearance, sorted
}

// build groups cells by run and key, merges repetitions and computes ratios.
func build(runs []*results.Run) (*model, error) {
	if len(runs) == 0 {
		return nil, badInput("no results to report on: give at least one result.json")
	}
	m := &model{runs: runs, cfgIdx: map[string]int{}, cfgName: map[string]string{}}
	m.labels = runLabels(runs)
	for i, run := range runs {
		if run == nil {
			return nil, fmt.Errorf("report: run %d is nil", i)
		}
		byKey := map[string]*row{}
		for ci := range run.Cells {
			c := &run.Cells[ci]
			key := results.CellKey(c)
			r := byKey[key]
			if r == nil {
				r = &row{run: i, runLabel: m.labels[i], key: key, driver: c.Driver, kind: c.Kind, variant: c.Variant,
					options: c.Options, payload: c.Payload, mode: c.Mode, concurrency: c.Concurrency, rate: c.Rate, service: c.ServiceTime}
				byKey[key] = r
				m.rows = append(m.rows, r)
			}
			r.reps = append(r.reps, c)
		}
	}
	for _, r := range m.rows {
		if err := r.merge(); err != nil {
			return nil, err
		}
	}
	m.assignConfigs()
	sort.SliceStable(m.rows, func(i, j int) bool { return m.rowLess(m.rows[i], m.rows[j]) })
	seen := map[point]bool{}
	for _, r := range m.rows {
		if p := r.point(); !seen[p] {
			seen[p] = true
			m.points = append(m.points, p)
		}
	}
	sort.SliceStable(m.points, func(i, j int) bool { return pointLess(m.points[i], m.points[j]) })
	m.ratios()
	return m, nil
}

// runLabels names each run in labels: its ID when there is one run,
// "run 1", "run 2"... when several are merged (runNotes maps them to IDs).
func runLabels(runs []*results.Run) []string {
	labels := make([]string, len(runs))
	for i, r := range runs {
		switch {
		case len(runs) > 1:
			labels[i] = fmt.Sprintf("run %d", i+1)
		case r != nil && r.ID != "":
			labels[i] = r.ID
		default:
			labels[i] = "run"
		}
	}
	return labels
}

// runNotes says which run each label stands for.
func (m *model) runNotes() []string {
	if !m.multiRun() {
		return nil
	}
	var out []string
	for i, r := range m.runs {
		s := m.labels[i] + ": " + r.ID
		if r.Scenario.Name != "" && !strings.HasSuffix(r.ID, r.Scenario.Name) {
			s += " (scenario " + r.Scenario.Name + ")"
		}
		out = append(out, s)
	}
	return out
}

// merge combines a row's repetitions.
func (r *row) merge() error {
	sort.SliceStable(r.reps, func(i, j int) bool { return r.reps[i].Repetition < r.reps[j].Repetition })
	var tput float64
	haveHist := true
	for _, c := range r.reps {
		if c.Histograms.Corrected == "" {
			haveHist = false
		}
	}
	for _, c := range r.reps {
		tput += c.Throughput
		r.counts = addCounts(r.counts, c.Counts)
		if c.Error != "" {
			r.cellErrors = append(r.cellErrors, c.Error)
		}
		if c.Incomplete {
			r.incomplete = true
		}
		if !haveHist {
			continue
		}
		h, err := results.DecodeHistogram(c.Histograms.Corrected)
		if err != nil {
			return fmt.Errorf("cell %s repetition %d: corrected histogram: %v", r.key, c.Repetition, err)
		}
		if r.corrected == nil {
			r.corrected = h
		} else {
			r.corrected.Merge(h)
		}
		u := h
		if c.Histograms.Uncorrected != "" {
			if u, err = results.DecodeHistogram(c.Histograms.Uncorrected); err != nil {
				return fmt.Errorf("cell %s repetition %d: uncorrected histogram: %v", r.key, c.Repetition, err)
			}
		}
		if r.uncorrected == nil {
			r.uncorrected = u
		} else {
			r.uncorrected.Merge(u)
		}
	}
	r.throughput = tput / float64(len(r.reps))
	r.errors = r.counts.Failed() + r.counts.Overflow
	r.errorRate = r.counts.ErrorRate()
	msgs := map[string]int64{}
	for _, c := range r.reps {
		r.unsettled = r.unsettled || c.Unsettled
		if c.GeneratorLimited() && r.genLimited == "" {
			r.genLimited = c.Generator.Reason
		}
		for _, e := range c.Errors {
			msgs[e.Message] += e.Count
		}
		for _, w := range c.Warnings {
			if !slices.Contains(r.warnings, w) {
				r.warnings = append(r.warnings, w)
			}
		}
	}
	for k, v := range msgs {
		r.errorMsgs = append(r.errorMsgs, results.ErrorCount{Message: k, Count: v})
	}
	sort.Slice(r.errorMsgs, func(i, j int) bool {
		if r.errorMsgs[i].Count != r.errorMsgs[j].Count {
			return r.errorMsgs[i].Count > r.errorMsgs[j].Count
		}
		return r.errorMsgs[i].Message < r.errorMsgs[j].Message
	})
	if haveHist {
		r.lat = results.Summarize(r.corrected)
		r.uncor = results.Summarize(r.uncorrected)
		return nil
	}
	// No histograms stored: average the summaries.
	r.lat = meanLatency(r.reps, func(c *results.Cell) results.Latency { return c.Latency })
	r.uncor = meanLatency(r.reps, func(c *results.Cell) results.Latency { return c.Uncorrected })
	if r.uncor.Count == 0 {
		r.uncor = r.lat
	}
	return nil
}

func addCounts(a, b results.Counts) results.Counts {
	a.Scheduled += b.Scheduled
	a.Started += b.Started
	a.OK += b.OK
	a.Timeout += b.Timeout
	a.Transport += b.Transport
	a.Responder += b.Responder
	a.Mismatch += b.Mismatch
	a.Overflow += b.Overflow
	a.Late += b.Late
	return a
}

func meanLatency(cells []*results.Cell, get func(*results.Cell) results.Latency) results.Latency {
	var out results.Latency
	n := 0
	for _, c := range cells {
		l := get(c)
		if l.Count == 0 {
			continue
		}
		n++
		out.Count += l.Count
		out.Min += l.Min
		out.Mean += l.Mean
		out.P50 += l.P50
		out.P90 += l.P90
		out.P99 += l.P99
		out.P999 += l.P999
		out.P9999 += l.P9999
		out.Max = math.Max(out.Max, l.Max)
	}
	if n == 0 {
		return results.Latency{}
	}
	f := float64(n)
	out.Min /= f
	out.Mean /= f
	out.P50 /= f
	out.P90 /= f
	out.P99 /= f
	out.P999 /= f
	out.P9999 /= f
	return out
}

// driverLabel is "driver" or "driver/variant".
func driverLabel(driver, variant string) string {
	if variant == "" || variant == "default" {
		return driver
	}
	return driver + "/" + variant
}

func optionsString(o map[string]string) string {
	if len(o) == 0 {
		return ""
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + o[k]
	}
	return strings.Join(parts, ",")
}

// assignConfigs gives each row the line it belongs to across load points
// and a label that tells the lines apart.
func (m *model) assignConfigs() {
	multiRun := len(m.runs) > 1
	type ident struct{ run, drv, opts string }
	ids := map[ident]string{}
	// labels without options first; add options only where needed
	base := map[string]map[string]bool{} // label -> set of option strings
	for _, r := range m.rows {
		l := driverLabel(r.driver, r.variant)
		if multiRun {
			l += " (" + r.runLabel + ")"
		}
		if base[l] == nil {
			base[l] = map[string]bool{}
		}
		base[l][optionsString(r.options)] = true
	}
	for _, r := range m.rows {
		opts := optionsString(r.options)
		l := driverLabel(r.driver, r.variant)
		if multiRun {
			l += " (" + r.runLabel + ")"
		}
		label := l
		if len(base[l]) > 1 && opts != "" {
			label = l + " [" + opts + "]"
		}
		id := ident{strconv.Itoa(r.run), driverLabel(r.driver, r.variant), opts}
		cfg, ok := ids[id]
		if !ok {
			cfg = fmt.Sprintf("c%d", len(ids))
			ids[id] = cfg
			m.cfgIdx[cfg] = len(m.configs)
			m.configs = append(m.configs, cfg)
			m.cfgName[cfg] = label
		}
		r.config = cfg
		r.label = label
	}
}

func pointLess(a, b point) bool {
	if a.mode != b.mode {
		return a.mode < b.mode
	}
	if a.payload != b.payload {
		return a.payload < b.payload
	}
	if a.service != b.service {
		return serviceNanos(a.service) < serviceNanos(b.service)
	}
	if a.concurrency != b.concurrency {
		return a.concurrency < b.concurrency
	}
	return a.rate < b.rate
}

func (m *model) rowLess(a, b *row) bool {
	pa, pb := a.point(), b.point()
	if pa != pb {
		return pointLess(pa, pb)
	}
	if a.kind != b.kind { // direct RPC first
		return a.kind == "direct"
	}
	return m.cfgIdx[a.config] < m.cfgIdx[b.config]
}

// serviceNanos orders service times; unparsable ones sort last.
func serviceNanos(s string) float64 {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "exp:"), "fixed:")
	if s == "0" || s == "" {
		return 0
	}
	s = strings.ReplaceAll(s, "µ", "u")
	for _, u := range []struct {
		suf string
		mul float64
	}{{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}} {
		if strings.HasSuffix(s, u.suf) {
			if f, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suf), 64); err == nil {
				return f * u.mul
			}
			break
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return math.Inf(1)
}

// ratios computes each row's p99 relative to the fastest direct-RPC row at
// the same point.
func (m *model) ratios() {
	best := map[point]float64{}
	for _, r := range m.rows {
		if r.kind != "direct" || !r.rankable() || r.lat.P99 <= 0 {
			continue
		}
		p := r.point()
		if b, ok := best[p]; !ok || r.lat.P99 < b {
			best[p] = r.lat.P99
		}
	}
	for _, r := range m.rows {
		if b, ok := best[r.point()]; ok && r.rankable() {
			r.ratio = r.lat.P99 / b
		}
	}
}

// rowsAt returns the rows at p, in row order.
func (m *model) rowsAt(p point) []*row {
	var out []*row
	for _, r := range m.rows {
		if r.point() == p {
			out = append(out, r)
		}
	}
	return out
}

// varies reports whether the rows differ in the given dimension.
func (m *model) varies(f func(*row) string) bool {
	first := ""
	for i, r := range m.rows {
		v := f(r)
		if i == 0 {
			first = v
		} else if v != first {
			return true
		}
	}
	return false
}

func (m *model) multiRun() bool { return len(m.runs) > 1 }

func (m *model) variesService() bool { return m.varies(func(r *row) string { return r.service }) }
func (m *model) variesLoad() bool {
	return m.varies(func(r *row) string { return r.mode + formatLoad(r.mode, r.concurrency, r.rate) })
}

// reps is the number of repetitions most rows have, and whether all agree.
func (m *model) reps() (n int, uniform bool) {
	uniform = true
	for i, r := range m.rows {
		if i == 0 {
			n = len(r.reps)
		} else if len(r.reps) != n {
			uniform = false
			if len(r.reps) > n {
				n = len(r.reps)
			}
		}
	}
	return n, uniform
}

// skipped lists every run's skipped drivers.
type skipRow struct {
	Run                     string
	Driver, Variant, Reason string
}

func (m *model) skipped() []skipRow {
	var out []skipRow
	for i, run := range m.runs {
		for _, s := range run.Skipped {
			out = append(out, skipRow{Run: m.labels[i], Driver: s.Driver, Variant: s.Variant, Reason: s.Reason})
		}
	}
	return out
}

// ---- formatting ----

// formatMicros formats a latency given in microseconds with three
// significant digits and a unit a person reads at a glance.
func formatMicros(us float64) string {
	switch {
	case math.IsNaN(us) || us < 0:
		return "–"
	case us == 0:
		return "0"
	case us < 1:
		return sig3(us*1e3) + " ns"
	case us < 1e3:
		return sig3(us) + " µs"
	case us < 1e6:
		return sig3(us/1e3) + " ms"
	}
	return sig3(us/1e6) + " s"
}

// sig3 formats v with three significant digits, without exponent.
func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// formatRate formats calls per second.
func formatRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e6:
		return sig3(v/1e6) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return sig3(v)
}

// formatBytes formats a payload size.
func formatBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

func formatLoad(mode string, conc int, rate float64) string {
	if mode == "open" {
		return strconv.FormatFloat(rate, 'f', -1, 64) + "/s"
	}
	return "conc " + strconv.Itoa(conc)
}

func formatLoadLong(mode string, conc int, rate float64) string {
	if mode == "open" {
		return "rate " + strconv.FormatFloat(rate, 'f', -1, 64) + " calls/s"
	}
	return "concurrency " + strconv.Itoa(conc)
}

func formatRatio(v float64) string {
	if v == 0 {
		return "–"
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64) + "×"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "×"
}

func (p point) String() string {
	s := formatBytes(p.payload) + ", " + formatLoadLong(p.mode, p.concurrency, p.rate)
	if p.service != "" && p.service != "0" {
		s += ", service " + p.service
	}
	return s
}

// ---- headline ----

// headline says in one sentence what was compared and what won.
func (m *model) headline() string {
	var ok []*row
	anyOK := false
	for _, r := range m.rows {
		if r.rankable() {
			ok = append(ok, r)
		}
		anyOK = anyOK || r.ok()
	}
	if len(ok) == 0 {
		switch {
		case len(m.rows) == 0:
			return "No cells were measured."
		case anyOK:
			return fmt.Sprintf("None of the %d cells can be ranked: each failed more than %.1f%% of its calls, was cut short or was generator-limited.", len(m.rows), 100*results.MaxErrorRate)
		}
		return fmt.Sprintf("None of the %d cells measured a successful call.", len(m.rows))
	}
	names := m.driverNames(ok)
	if m.multiRun() {
		names[len(names)-1] += fmt.Sprintf(" from %d runs", len(m.runs))
	}
	if len(ok) == 1 {
		r := ok[0]
		return fmt.Sprintf("Measured %s at %s: p50 %s, p99 %s, %s calls/s.", r.label, r.point(), formatMicros(r.lat.P50), formatMicros(r.lat.P99), formatRate(r.throughput))
	}
	var pts []point
	for _, p := range m.points {
		if len(okAt(ok, p)) > 0 {
			pts = append(pts, p)
		}
	}
	if len(pts) == 1 {
		rs := okAt(ok, pts[0])
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].lat.P99 < rs[j].lat.P99 })
		if len(rs) == 1 {
			return fmt.Sprintf("Measured %s at %s: p99 %s.", rs[0].label, pts[0], formatMicros(rs[0].lat.P99))
		}
		return fmt.Sprintf("Compared %s at %s: %s won with the lowest p99 latency, %s against %s for %s, the next best.",
			joinAnd(names), pts[0], rs[0].label, formatMicros(rs[0].lat.P99), formatMicros(rs[1].lat.P99), rs[1].label)
	}
	wins := map[string]int{}
	compared := 0
	for _, p := range pts {
		rs := okAt(ok, p)
		if len(rs) < 2 {
			continue
		}
		compared++
		best := rs[0]
		for _, r := range rs[1:] {
			if r.lat.P99 < best.lat.P99 {
				best = r
			}
		}
		wins[best.config]++
	}
	if compared == 0 {
		return fmt.Sprintf("Measured %s over %d load points (%s); no load point has two drivers to compare.", joinAnd(names), len(pts), m.dimensions())
	}
	type w struct {
		cfg string
		n   int
	}
	var ws []w
	for c, n := range wins {
		ws = append(ws, w{c, n})
	}
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].n != ws[j].n {
			return ws[i].n > ws[j].n
		}
		return m.cfgIdx[ws[i].cfg] < m.cfgIdx[ws[j].cfg]
	})
	var parts []string
	for i, x := range ws {
		switch {
		case i == 0 && x.n == compared && compared == len(pts):
			parts = append(parts, fmt.Sprintf("%s had the lowest p99 latency at every one", m.cfgName[x.cfg]))
		case i == 0:
			parts = append(parts, fmt.Sprintf("%s had the lowest p99 latency at %d of %d", m.cfgName[x.cfg], x.n, compared))
		default:
			parts = append(parts, fmt.Sprintf("%s at %d", m.cfgName[x.cfg], x.n))
		}
	}
	if len(parts) > 3 {
		parts = append(parts[:3], "others at the rest")
	}
	return fmt.Sprintf("Compared %s over %d load points (%s): %s.", joinAnd(names), len(pts), m.dimensions(), joinAnd(parts))
}

// directVsBroker is a second sentence when both kinds ran: how far the
// fastest broker driver is from the fastest direct RPC at the median point.
func (m *model) directVsBroker() string {
	var ratios []float64
	for _, p := range m.points {
		var bestD, bestB float64
		for _, r := range m.rowsAt(p) {
			if !r.rankable() {
				continue
			}
			switch r.kind {
			case "direct":
				if bestD == 0 || r.lat.P99 < bestD {
					bestD = r.lat.P99
				}
			case "broker":
				if bestB == 0 || r.lat.P99 < bestB {
					bestB = r.lat.P99
				}
			}
		}
		if bestD > 0 && bestB > 0 {
			ratios = append(ratios, bestB/bestD)
		}
	}
	if len(ratios) == 0 {
		return ""
	}
	sort.Float64s(ratios)
	med := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		med = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
	}
	if len(ratios) == 1 {
		return fmt.Sprintf("The fastest message-queue driver's p99 was %s that of the fastest direct RPC.", formatRatio(med))
	}
	return fmt.Sprintf("At the median load point the fastest message-queue driver's p99 was %s that of the fastest direct RPC (range %s to %s over %d points).",
		formatRatio(med), formatRatio(ratios[0]), formatRatio(ratios[len(ratios)-1]), len(ratios))
}

// mqCosts says, for each message-queue driver configuration, what carrying
// RPC over it cost here: its p50 and throughput relative to the fastest
// direct driver at the same load point, with the broker's version and
// source ("" when no point has both).
func (m *model) mqCosts() string {
	type point2 struct {
		p         point
		p50, tput float64
	}
	var order []string
	per := map[string][]string{}
	for _, p := range m.points {
		var bestP50, bestTput float64
		for _, r := range m.rowsAt(p) {
			if r.kind != "direct" || !r.rankable() {
				continue
			}
			if bestP50 == 0 || r.lat.P50 < bestP50 {
				bestP50 = r.lat.P50
			}
			bestTput = max(bestTput, r.throughput)
		}
		if bestP50 <= 0 || bestTput <= 0 {
			continue
		}
		for _, r := range m.rowsAt(p) {
			if r.kind != "broker" || !r.rankable() {
				continue
			}
			if _, ok := per[r.config]; !ok {
				order = append(order, r.config)
			}
			per[r.config] = append(per[r.config], fmt.Sprintf("%s p50 %s, throughput %s", formatLoad(r.mode, r.concurrency, r.rate),
				formatRatio(r.lat.P50/bestP50), formatRatio(r.throughput/bestTput)))
		}
	}
	if len(order) == 0 {
		return ""
	}
	var parts []string
	for _, cfg := range order {
		label := m.cfgName[cfg]
		if b := m.brokerOf(cfg); b != "" {
			label += " (" + b + ")"
		}
		parts = append(parts, label+": "+strings.Join(per[cfg], "; "))
	}
	return "What RPC over a message queue cost here, against the fastest direct RPC at the same load: " + strings.Join(parts, ". ") + "."
}

// brokerOf names the broker, version and source a configuration's cells
// ran on.
func (m *model) brokerOf(cfg string) string {
	for _, r := range m.rows {
		if r.config != cfg || len(r.reps) == 0 {
			continue
		}
		c := r.reps[0]
		for _, b := range m.runs[r.run].Environment.Brokers {
			if b.Kind == c.Driver || strings.HasPrefix(c.Broker, b.Kind+" ") {
				s := b.Kind
				if b.Version != "" {
					s += " " + b.Version
				}
				if b.Source != "" {
					s += ", " + b.Source
				}
				return s
			}
		}
		return c.Broker
	}
	return ""
}

// generatorLines describes the open-loop generator's own lateness for
// every open-loop row: never part of the latency, shown so a reader can
// judge the load that was offered.
func (m *model) generatorLines() []string {
	var out []string
	for _, r := range m.rows {
		if r.mode != "open" {
			continue
		}
		for _, c := range r.reps {
			g := c.Generator
			if g == nil {
				continue
			}
			line := fmt.Sprintf("%s at %s: generator lateness p50 %s, p99 %s, %d of %d calls over 1 ms late (bounds: p99 %s, 1%%)",
				r.label, r.point(), formatMicros(g.Lateness.P50), formatMicros(g.Lateness.P99), c.Counts.Late, c.Counts.Started, formatMicros(g.BoundP99US))
			if g.Limited {
				line += ": generator-limited"
			}
			if len(r.reps) > 1 {
				line += fmt.Sprintf(" (repetition %d)", c.Repetition)
			}
			out = append(out, line)
		}
	}
	return out
}

// leftOut names the cells kept out of the headline, rankings and ratios,
// and why ("" when none was).
func (m *model) leftOut() string {
	var parts []string
	for _, r := range m.rows {
		if !r.ok() {
			continue
		}
		if why := r.leftOutWhy(); why != "" {
			parts = append(parts, fmt.Sprintf("%s at %s (%s)", r.label, r.point(), why))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	if len(parts) > 6 {
		parts = append(parts[:6], fmt.Sprintf("%d more", len(parts)-6))
	}
	return fmt.Sprintf("Left out of the headline, rankings and ratios (more than %.1f%% of calls failed, generator-limited or cut short): %s.", 100*results.MaxErrorRate, strings.Join(parts, "; "))
}

func okAt(rows []*row, p point) []*row {
	var out []*row
	for _, r := range rows {
		if r.point() == p {
			out = append(out, r)
		}
	}
	return out
}

// driverNames lists the driver configurations among rows, each once
// whatever run it came from.
func (m *model) driverNames(rows []*row) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range m.configs {
		for _, r := range rows {
			if r.config != c {
				continue
			}
			n := driverLabel(r.driver, r.variant)
			if o := optionsString(r.options); o != "" && strings.Contains(r.label, "[") {
				n += " [" + o + "]"
			}
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	if len(out) > 6 {
		out = append(out[:5], fmt.Sprintf("%d more", len(out)-5))
	}
	return out
}

// dimensions describes what varies across the points: "payloads 64 B and
// 1 KiB; concurrency 1, 8 and 64".
func (m *model) dimensions() string {
	var pl []int
	var conc []int
	var rates []float64
	var sv []string
	seenP, seenC, seenR, seenS := map[int]bool{}, map[int]bool{}, map[float64]bool{}, map[string]bool{}
	for _, p := range m.points {
		if !seenP[p.payload] {
			seenP[p.payload] = true
			pl = append(pl, p.payload)
		}
		if p.mode == "open" {
			if !seenR[p.rate] {
				seenR[p.rate] = true
				rates = append(rates, p.rate)
			}
		} else if !seenC[p.concurrency] {
			seenC[p.concurrency] = true
			conc = append(conc, p.concurrency)
		}
		if !seenS[p.service] {
			seenS[p.service] = true
			sv = append(sv, p.service)
		}
	}
	sort.Ints(pl)
	sort.Ints(conc)
	sort.Float64s(rates)
	var parts []string
	if len(pl) > 1 {
		var s []string
		for _, n := range pl {
			s = append(s, formatBytes(n))
		}
		parts = append(parts, "payloads "+joinAnd(s))
	}
	if len(conc) > 1 || (len(conc) == 1 && len(rates) > 0) {
		var s []string
		for _, c := range conc {
			s = append(s, strconv.Itoa(c))
		}
		parts = append(parts, "concurrency "+joinAnd(s))
	}
	if len(rates) > 1 || (len(rates) == 1 && len(conc) > 0) {
		var s []string
		for _, r := range rates {
			s = append(s, strconv.FormatFloat(r, 'f', -1, 64))
		}
		parts = append(parts, "rates "+joinAnd(s)+" calls/s")
	}
	if len(sv) > 1 {
		parts = append(parts, "service times "+joinAnd(sv))
	}
	if len(parts) == 0 {
		return m.points[0].String()
	}
	return strings.Join(parts, "; ")
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	case 2:
		return s[0] + " and " + s[1]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// environmentLine is a one-line, link-free description of a run's machine.
func environmentLine(run *results.Run) string {
	e := run.Environment
	var parts []string
	v := e.RpcbenchVersion
	if v == "" {
		v = "unknown version"
	}
	if e.Commit != "" && e.Commit != "unknown" {
		c := e.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		v += " (" + c + ")"
	}
	parts = append(parts, "rpcbench "+v)
	if e.GoVersion != "" {
		parts = append(parts, e.GoVersion)
	}
	if e.OS != "" || e.Arch != "" {
		parts = append(parts, e.OS+"/"+e.Arch)
	}
	if e.Kernel != "" {
		parts = append(parts, "kernel "+e.Kernel)
	}
	cpu := e.CPUModel
	if e.Cores > 0 {
		if cpu != "" {
			cpu += ", "
		}
		cpu += strconv.Itoa(e.Cores) + " cores"
	}
	if e.GOMAXPROCS > 0 {
		cpu += ", GOMAXPROCS " + strconv.Itoa(e.GOMAXPROCS)
	}
	if cpu != "" {
		parts = append(parts, strings.TrimPrefix(cpu, ", "))
	}
	for _, b := range e.Brokers {
		s := b.Kind
		if b.Version != "" {
			s += " " + b.Version
		}
		if b.Source != "" {
			s += " (" + b.Source + ")"
		}
		parts = append(parts, "broker "+s)
	}
	return strings.Join(parts, " · ")
}
