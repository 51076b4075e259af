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
	// shownOpts are the options label shows: set where the same driver
	// and variant ran with different options
	shownOpts string

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
	busy                   bool // others took over results.BusyCores of the machine in some repetition's window

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
					options: rowOptions(c), payload: c.Payload, mode: c.Mode, concurrency: c.Concurrency, rate: c.Rate, service: c.ServiceTime}
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
		r.busy = r.busy || c.Cost.Busy()
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
		base[l][results.OptionsString(r.options)] = true
	}
	for _, r := range m.rows {
		opts := results.OptionsString(r.options)
		l := driverLabel(r.driver, r.variant)
		if multiRun {
			l += " (" + r.runLabel + ")"
		}
		label := l
		if len(base[l]) > 1 && opts != "" {
			label = l + " [" + opts + "]"
			r.shownOpts = opts
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
