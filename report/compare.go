package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/perf/benchmath"

	"github.com/rpcbench/rpcbench/results"
)

// MinRepetitions is how many repetitions each side needs for a
// significance test and confidence intervals.
const MinRepetitions = 3

// Metrics compare knows, in display order. Latencies are in µs.
var metricNames = []string{"p50", "p90", "p99", "p99.9", "p99.99", "mean", "throughput", "errors"}

// DefaultMetrics are the metrics compare reports when no threshold names
// another.
var DefaultMetrics = []string{"p50", "p99", "p99.9", "throughput"}

// Threshold is a --fail-on rule: fail when Metric changes by more than
// Percent, in the direction of its sign (+10: an increase of more than 10%;
// -5: a decrease of more than 5%). For "errors", the error rate, Percent is
// in percentage points: errors:+0.1% fails a cell whose share of failed
// calls grows by more than 0.1 points.
type Threshold struct {
	Metric  string  `json:"metric"`
	Percent float64 `json:"percent"`
}

func (t Threshold) String() string {
	sign := "+"
	if t.Percent < 0 {
		sign = ""
	}
	return t.Metric + ":" + sign + strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
}

// crossed reports whether a change of deltaPct crosses t.
func (t Threshold) crossed(deltaPct float64) bool {
	if math.IsNaN(deltaPct) {
		return false
	}
	if t.Percent >= 0 {
		return deltaPct > t.Percent
	}
	return deltaPct < t.Percent
}

// ParseThreshold parses "p99:+10%" or "throughput:-5%". Its errors are
// ErrBadInput and name the --fail-on flag.
func ParseThreshold(s string) (Threshold, error) {
	bad := func(why string) error {
		return badInput("--fail-on %q: %s: want METRIC:+N%% or METRIC:-N%%, e.g. p99:+10%% or throughput:-5%% (metrics: %s)",
			s, why, strings.Join(metricNames, ", "))
	}
	name, val, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Threshold{}, bad("no ':'")
	}
	metric, ok := canonicalMetric(name)
	if !ok {
		return Threshold{}, bad("unknown metric " + strconv.Quote(name))
	}
	val = strings.TrimSuffix(strings.TrimSpace(val), "%")
	if !strings.HasPrefix(val, "+") && !strings.HasPrefix(val, "-") {
		return Threshold{}, bad("the change needs a sign, + for an increase or - for a decrease")
	}
	f, err := strconv.ParseFloat(val, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f == 0 {
		return Threshold{}, bad("not a non-zero percentage")
	}
	return Threshold{Metric: metric, Percent: f}, nil
}

func canonicalMetric(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "p50", "median":
		return "p50", true
	case "p90":
		return "p90", true
	case "p99":
		return "p99", true
	case "p99.9", "p999":
		return "p99.9", true
	case "p99.99", "p9999":
		return "p99.99", true
	case "mean":
		return "mean", true
	case "throughput", "tput", "calls/s", "rate":
		return "throughput", true
	case "errors", "error_rate", "error-rate", "failures":
		return "errors", true
	}
	return "", false
}

// CompareOptions configure Compare. The zero value is usable.
type CompareOptions struct {
	Thresholds []Threshold
	// Alpha is the significance level; 0 means 0.05.
	Alpha float64
	// Confidence is the confidence level of the intervals; 0 means 0.95.
	Confidence float64
	// Test is "welch" (default: Welch's t-test, intervals around the mean)
	// or "mann-whitney" (Mann-Whitney U test, intervals around the median;
	// it needs 4 repetitions a side to ever reach p < 0.05).
	Test string
	// BaseName and NewName label the two sides in the output (file names).
	BaseName, NewName string
	// RequireSignificance fails only on changes a significance test
	// confirmed; by default a cell with fewer than MinRepetitions a side is
	// judged on its point estimates (and the output says significance is
	// unknown).
	RequireSignificance bool
	// AllowMissing lets a cell of the base be absent from the new run.
	AllowMissing bool
}

// DefaultErrorRate is the error-rate line compare holds every cell to when
// no errors threshold is given: a cell at or under it in the base that
// goes over it in the new run fails.
const DefaultErrorRate = results.MaxErrorRate

// Comparison is the result of comparing two runs cell by cell.
type Comparison struct {
	Base       RunRef      `json:"base"`
	New        RunRef      `json:"new"`
	Test       string      `json:"test"`
	Alpha      float64     `json:"alpha"`
	Confidence float64     `json:"confidence"`
	Thresholds []Threshold `json:"thresholds"`
	Metrics    []string    `json:"metrics"`
	Cells      []CellDelta `json:"cells"`
	OnlyBase   []string    `json:"only_in_base,omitempty"`
	OnlyNew    []string    `json:"only_in_new,omitempty"`
	// Regressions are the significant changes that crossed a threshold.
	Regressions []Violation `json:"regressions"`
	// Unconfirmed are threshold crossings whose significance is unknown
	// (too few repetitions) or that are not significant; they do not fail.
	Unconfirmed []Violation `json:"unconfirmed,omitempty"`
	// Failures are what fails the comparison besides a cell's metrics:
	// cells missing from the new run, an incomplete new run.
	Failures []string `json:"failures,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// RunRef names one side of a comparison.
type RunRef struct {
	Name     string `json:"name,omitempty"`
	ID       string `json:"id"`
	Scenario string `json:"scenario"`
}

// CellDelta compares one cell.
type CellDelta struct {
	Key      string        `json:"key"`
	Label    string        `json:"label"`
	BaseReps int           `json:"base_repetitions"`
	NewReps  int           `json:"new_repetitions"`
	Metrics  []MetricDelta `json:"metrics"`
	// Verdict is "pass" or "fail"; Why says what decided it.
	Verdict string   `json:"verdict"`
	Why     []string `json:"why"`
}

// MetricDelta compares one metric of one cell.
type MetricDelta struct {
	Metric string   `json:"metric"`
	Unit   string   `json:"unit"`
	Base   Estimate `json:"base"`
	New    Estimate `json:"new"`
	// DeltaPercent is (new/base - 1) × 100 of the centers.
	DeltaPercent float64 `json:"delta_percent"`
	// Significance is "significant", "not significant" or "unknown".
	Significance string   `json:"significance"`
	P            *float64 `json:"p,omitempty"`
	// Better is true when the change is an improvement, false when it is a
	// degradation; nil when there is no change to speak of.
	Better  *bool    `json:"better,omitempty"`
	Crossed []string `json:"crossed,omitempty"`
	// Failing is set when a crossing fails the comparison.
	Failing  bool     `json:"failing,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Estimate is a metric's center over a cell's repetitions and, with enough
// repetitions, its confidence interval.
type Estimate struct {
	Center float64  `json:"center"`
	Lo     *float64 `json:"lo,omitempty"`
	Hi     *float64 `json:"hi,omitempty"`
	N      int      `json:"n"`
}

// Violation is a threshold crossed by a cell's metric.
type Violation struct {
	Cell         string  `json:"cell"`
	Metric       string  `json:"metric"`
	Threshold    string  `json:"threshold"`
	DeltaPercent float64 `json:"delta_percent"`
	Significance string  `json:"significance"`
}

// Failed reports whether the comparison fails: a change crossed a
// threshold (confirmed by a significance test when both sides have enough
// repetitions or RequireSignificance is set), or the new run is missing
// cells or incomplete.
func (c *Comparison) Failed() bool {
	if len(c.Regressions) > 0 || len(c.Failures) > 0 {
		return true
	}
	for _, cd := range c.Cells {
		if cd.Verdict == "fail" {
			return true
		}
	}
	return false
}

// Compare compares two runs cell by cell (cells match on Key; cells of one
// Key with different Repetition values are repetitions). It returns an
// ErrBadInput error when the runs share no cell.
func Compare(base, cur *results.Run, opts CompareOptions) (*Comparison, error) {
	if base == nil || cur == nil {
		return nil, badInput("compare needs two runs")
	}
	if opts.Alpha == 0 {
		opts.Alpha = benchmath.DefaultThresholds.CompareAlpha
	}
	if opts.Confidence == 0 {
		opts.Confidence = 0.95
	}
	if opts.Alpha <= 0 || opts.Alpha >= 1 {
		return nil, badInput("--alpha %v: want a significance level between 0 and 1, e.g. 0.05", opts.Alpha)
	}
	if opts.Confidence <= 0 || opts.Confidence >= 1 {
		return nil, badInput("--confidence %v: want a level between 0 and 1, e.g. 0.95", opts.Confidence)
	}
	var assume benchmath.Assumption
	switch opts.Test {
	case "", "welch":
		opts.Test, assume = "welch", benchmath.AssumeNormal
	case "mann-whitney", "u":
		opts.Test, assume = "mann-whitney", benchmath.AssumeNothing
	default:
		return nil, badInput("--test %q: want welch or mann-whitney", opts.Test)
	}
	baseName, newName := opts.BaseName, opts.NewName
	if baseName == "" {
		baseName = "base"
	}
	if newName == "" {
		newName = "new"
	}
	mb, err := build([]*results.Run{base})
	if err != nil {
		return nil, err
	}
	mn, err := build([]*results.Run{cur})
	if err != nil {
		return nil, err
	}
	c := &Comparison{
		Base:        RunRef{Name: opts.BaseName, ID: base.ID, Scenario: base.Scenario.Name},
		New:         RunRef{Name: opts.NewName, ID: cur.ID, Scenario: cur.Scenario.Name},
		Test:        opts.Test,
		Alpha:       opts.Alpha,
		Confidence:  opts.Confidence,
		Thresholds:  opts.Thresholds,
		Regressions: []Violation{},
	}
	if c.Thresholds == nil {
		c.Thresholds = []Threshold{}
	}
	c.Metrics = append(c.Metrics, DefaultMetrics...)
	for _, t := range opts.Thresholds {
		if !contains(c.Metrics, t.Metric) {
			c.Metrics = append(c.Metrics, t.Metric)
		}
	}
	sort.SliceStable(c.Metrics, func(i, j int) bool { return metricOrder(c.Metrics[i]) < metricOrder(c.Metrics[j]) })

	newRows := map[string]*row{}
	for _, r := range mn.rows {
		newRows[r.key] = r
	}
	baseKeys := map[string]bool{}
	showService := mb.variesService() || mn.variesService()
	thr := &benchmath.Thresholds{CompareAlpha: opts.Alpha}
	errorRule := false
	for _, t := range opts.Thresholds {
		errorRule = errorRule || t.Metric == "errors"
	}
	for _, rb := range mb.rows {
		baseKeys[rb.key] = true
		rn, ok := newRows[rb.key]
		if !ok {
			c.OnlyBase = append(c.OnlyBase, cellLabel(rb, showService))
			continue
		}
		cd := CellDelta{Key: rb.key, Label: cellLabel(rb, showService), BaseReps: len(rb.reps), NewReps: len(rn.reps)}
		fail := func(format string, args ...any) {
			cd.Why = append(cd.Why, fmt.Sprintf(format, args...))
			cd.Verdict = "fail"
		}
		for _, metric := range c.Metrics {
			md := compareMetric(metric, rb, rn, assume, thr, opts)
			if metric == "errors" {
				md = compareErrors(rb, rn)
			}
			for _, t := range opts.Thresholds {
				if t.Metric != metric || !t.crossed(md.DeltaPercent) {
					continue
				}
				md.Crossed = append(md.Crossed, t.String())
				v := Violation{Cell: cd.Label, Metric: metric, Threshold: t.String(), DeltaPercent: md.DeltaPercent, Significance: md.Significance}
				switch {
				case md.Significance == "significant", md.Significance == "point estimate",
					md.Significance == "unknown" && !opts.RequireSignificance:
					md.Failing = true
					c.Regressions = append(c.Regressions, v)
					fail("%s %s crosses %s (%s)", metric, formatDelta(md), t, md.Significance)
				default:
					c.Unconfirmed = append(c.Unconfirmed, v)
					cd.Why = append(cd.Why, fmt.Sprintf("%s %s crosses %s but is %s: not failing", metric, formatDelta(md), t, md.Significance))
				}
			}
			cd.Metrics = append(cd.Metrics, md)
		}
		if !errorRule {
			// the default error rule: no cell may go over the 0.1% line
			be, ne := rb.errorRate, rn.errorRate
			if ne > DefaultErrorRate && be <= DefaultErrorRate {
				md := compareErrors(rb, rn)
				md.Crossed = []string{fmt.Sprintf("errors over %.1f%%", 100*DefaultErrorRate)}
				md.Failing = true
				cd.Metrics = append(cd.Metrics, md)
				c.Regressions = append(c.Regressions, Violation{Cell: cd.Label, Metric: "errors", Threshold: md.Crossed[0], DeltaPercent: md.DeltaPercent, Significance: md.Significance})
				fail("error rate %.2f%% → %.2f%%: over the %.1f%% every cell is held to (set --fail-on errors:+N%% to change it)", 100*be, 100*ne, 100*DefaultErrorRate)
			}
		}
		if why := rn.genLimited; why != "" {
			fail("the new run's generator missed its schedule (generator-limited: %s): its latency is not the load asked for", why)
		}
		if rn.incomplete {
			fail("the new cell was cut short")
		}
		if len(rn.cellErrors) > 0 {
			fail("the new cell did not run: %s", rn.cellErrors[0])
		}
		if cd.Verdict == "" {
			cd.Verdict = "pass"
			if len(cd.Why) == 0 {
				if len(opts.Thresholds) == 0 {
					cd.Why = append(cd.Why, fmt.Sprintf("no --fail-on threshold; error rate %.2f%%, within %.1f%%", 100*rn.errorRate, 100*DefaultErrorRate))
				} else {
					cd.Why = append(cd.Why, "no threshold crossed")
				}
			}
		}
		c.Cells = append(c.Cells, cd)
	}
	for _, r := range mn.rows {
		if !baseKeys[r.key] {
			c.OnlyNew = append(c.OnlyNew, cellLabel(r, showService))
		}
	}
	if len(c.OnlyBase) > 0 && !opts.AllowMissing {
		c.Failures = append(c.Failures, fmt.Sprintf("%d cell(s) of the base are missing from the new run: %s (--allow-missing accepts that)", len(c.OnlyBase), strings.Join(c.OnlyBase, "; ")))
	}
	if !cur.Complete {
		why := cur.Incomplete
		if why == "" {
			why = "no reason recorded"
		}
		c.Failures = append(c.Failures, "the new run is incomplete: "+why)
	}
	if len(c.Cells) == 0 {
		return nil, badInput("%s and %s have no cell in common (%d and %d cells): compare two runs of the same scenario; cells match on driver, variant, options (defaults filled in), payload, response size, load, max_in_flight, service time and responder concurrency",
			baseName, newName, len(mb.rows), len(mn.rows))
	}
	c.Notes = environmentNotes(base, cur)
	unknown := 0
	for _, cd := range c.Cells {
		if cd.BaseReps < MinRepetitions || cd.NewReps < MinRepetitions {
			unknown++
		}
	}
	switch {
	case unknown > 0 && opts.RequireSignificance:
		c.Notes = append(c.Notes, fmt.Sprintf("%d of %d cells have fewer than %d repetitions on a side: their significance is unknown and, with --require-significance, they cannot fail the comparison; run with repeat: %d or more to test them.",
			unknown, len(c.Cells), MinRepetitions, MinRepetitions))
	case unknown > 0:
		c.Notes = append(c.Notes, fmt.Sprintf("%d of %d cells have fewer than %d repetitions on a side: thresholds apply to their point estimates and significance is unknown; run with repeat: %d or more for a significance test, or add --require-significance to fail only on confirmed changes.",
			unknown, len(c.Cells), MinRepetitions, MinRepetitions))
	}
	return c, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func metricOrder(m string) int {
	for i, n := range metricNames {
		if n == m {
			return i
		}
	}
	return len(metricNames)
}

func cellLabel(r *row, service bool) string {
	s := driverLabel(r.driver, r.variant)
	if o := optionsString(r.options); o != "" {
		s += " [" + o + "]"
	}
	s += " · " + formatBytes(r.payload) + " · " + formatLoad(r.mode, r.concurrency, r.rate)
	if service || (r.service != "" && r.service != "0") {
		s += " · service " + r.service
	}
	return s
}

// metricValues are a metric's per-repetition values; cells without a
// successful call contribute nothing to latency metrics.
func metricValues(metric string, r *row) []float64 {
	var out []float64
	for _, c := range r.reps {
		if metric == "throughput" {
			out = append(out, c.Throughput)
			continue
		}
		l := c.Latency
		if l.Count == 0 && c.Histograms.Corrected != "" {
			if h, err := results.DecodeHistogram(c.Histograms.Corrected); err == nil {
				l = results.Summarize(h)
			}
		}
		if l.Count == 0 {
			continue
		}
		var v float64
		switch metric {
		case "p50":
			v = l.P50
		case "p90":
			v = l.P90
		case "p99":
			v = l.P99
		case "p99.9":
			v = l.P999
		case "p99.99":
			v = l.P9999
		case "mean":
			v = l.Mean
		}
		out = append(out, v)
	}
	return out
}

func compareMetric(metric string, rb, rn *row, assume benchmath.Assumption, thr *benchmath.Thresholds, opts CompareOptions) MetricDelta {
	md := MetricDelta{Metric: metric, Unit: "µs", Significance: "unknown", DeltaPercent: math.NaN()}
	if metric == "throughput" {
		md.Unit = "calls/s"
	}
	vb, vn := metricValues(metric, rb), metricValues(metric, rn)
	md.Base.N, md.New.N = len(vb), len(vn)
	if len(vb) == 0 || len(vn) == 0 {
		md.Warnings = append(md.Warnings, "no successful call on a side")
		return md
	}
	enough := len(vb) >= MinRepetitions && len(vn) >= MinRepetitions
	if enough {
		sb, sn := benchmath.NewSample(vb, thr), benchmath.NewSample(vn, thr)
		sumB, sumN := assume.Summary(sb, opts.Confidence), assume.Summary(sn, opts.Confidence)
		md.Base = estimate(sumB, len(vb))
		md.New = estimate(sumN, len(vn))
		cmp := assume.Compare(sb, sn)
		p := cmp.P
		md.P = &p
		if p < opts.Alpha {
			md.Significance = "significant"
		} else {
			md.Significance = "not significant"
		}
		for _, w := range append(append(cmp.Warnings, sumB.Warnings...), sumN.Warnings...) {
			md.Warnings = append(md.Warnings, w.Error())
		}
	} else {
		md.Base = Estimate{Center: mean(vb), N: len(vb)}
		md.New = Estimate{Center: mean(vn), N: len(vn)}
	}
	switch {
	case md.Base.Center == md.New.Center:
		md.DeltaPercent = 0
	case md.Base.Center == 0:
		md.DeltaPercent = math.Inf(1)
	default:
		md.DeltaPercent = (md.New.Center/md.Base.Center - 1) * 100
	}
	if md.DeltaPercent != 0 && md.Significance != "not significant" {
		better := md.DeltaPercent < 0
		if metric == "throughput" {
			better = !better
		}
		md.Better = &better
	}
	return md
}

// compareErrors compares error rates, in percent: the delta is in
// percentage points, judged on the point estimates (a rate over all the
// repetitions' calls).
func compareErrors(rb, rn *row) MetricDelta {
	md := MetricDelta{Metric: "errors", Unit: "%", Significance: "point estimate"}
	md.Base = Estimate{Center: 100 * rb.errorRate, N: len(rb.reps)}
	md.New = Estimate{Center: 100 * rn.errorRate, N: len(rn.reps)}
	md.DeltaPercent = md.New.Center - md.Base.Center
	if md.DeltaPercent != 0 {
		better := md.DeltaPercent < 0
		md.Better = &better
	}
	return md
}

func estimate(s benchmath.Summary, n int) Estimate {
	e := Estimate{Center: s.Center, N: n}
	if !math.IsInf(s.Lo, 0) && !math.IsNaN(s.Lo) {
		lo := s.Lo
		e.Lo = &lo
	}
	if !math.IsInf(s.Hi, 0) && !math.IsNaN(s.Hi) {
		hi := s.Hi
		e.Hi = &hi
	}
	return e
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// environmentNotes points out differences between the machines or builds
// that produced the two runs.
func environmentNotes(a, b *results.Run) []string {
	var notes []string
	ea, eb := a.Environment, b.Environment
	diff := func(what, x, y string) {
		if x != y && x != "" && y != "" {
			notes = append(notes, fmt.Sprintf("%s differs: %s → %s", what, x, y))
		}
	}
	diff("CPU", ea.CPUModel, eb.CPUModel)
	if ea.Cores != eb.Cores && ea.Cores > 0 && eb.Cores > 0 {
		diff("cores", strconv.Itoa(ea.Cores), strconv.Itoa(eb.Cores))
	}
	diff("Go", ea.GoVersion, eb.GoVersion)
	diff("kernel", ea.Kernel, eb.Kernel)
	diff("scenario", a.Scenario.Name, b.Scenario.Name)
	if !a.Complete {
		notes = append(notes, "base run is incomplete: "+a.Incomplete)
	}
	if !b.Complete {
		notes = append(notes, "new run is incomplete: "+b.Incomplete)
	}
	return notes
}

// ---- output ----

// Formats accepted by WriteComparison.
var CompareFormats = []string{"text", "markdown", "json"}

// WriteComparison writes c as text, markdown or json.
func WriteComparison(w io.Writer, c *Comparison, format string) error {
	switch format {
	case "", "text":
		return writeCompareText(w, c)
	case "markdown", "md":
		return writeCompareMarkdown(w, c)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonSafe(c))
	}
	return badInput("--format %q: want one of %s", format, strings.Join(CompareFormats, ", "))
}

// jsonSafe replaces NaN and infinite deltas, which JSON cannot carry.
func jsonSafe(c *Comparison) *Comparison {
	cp := *c
	cp.Cells = make([]CellDelta, len(c.Cells))
	for i, cd := range c.Cells {
		cd.Metrics = append([]MetricDelta(nil), cd.Metrics...)
		for j := range cd.Metrics {
			if d := cd.Metrics[j].DeltaPercent; math.IsNaN(d) || math.IsInf(d, 0) {
				cd.Metrics[j].DeltaPercent = 0
				cd.Metrics[j].Warnings = append(cd.Metrics[j].Warnings, "delta undefined")
			}
		}
		cp.Cells[i] = cd
	}
	return &cp
}

func formatValue(unit string, v float64) string {
	switch unit {
	case "calls/s":
		return formatRate(v)
	case "%":
		return fmt.Sprintf("%.2f%%", v)
	}
	return formatMicros(v)
}

// formatEstimate is "120 µs ± 3%" with an interval, "120 µs" without.
func formatEstimate(unit string, e Estimate) string {
	if e.N == 0 {
		return "–"
	}
	s := formatValue(unit, e.Center)
	if e.Lo != nil && e.Hi != nil && e.Center != 0 {
		pct := math.Max(*e.Hi/e.Center-1, 1-*e.Lo/e.Center) * 100
		s += fmt.Sprintf(" ± %s%%", trimZeros(strconv.FormatFloat(pct, 'f', 1, 64)))
	} else if e.N >= MinRepetitions {
		s += " ± ∞"
	}
	return s
}

func formatDelta(md MetricDelta) string {
	d := md.DeltaPercent
	switch {
	case math.IsNaN(d):
		return "?"
	case math.IsInf(d, 1):
		return "+∞"
	case md.Metric == "errors":
		return fmt.Sprintf("%+.2f pts", d)
	}
	return fmt.Sprintf("%+.1f%%", d)
}

func formatSignificance(md MetricDelta) string {
	n := fmt.Sprintf("n=%d+%d", md.Base.N, md.New.N)
	if md.Base.N == md.New.N {
		n = fmt.Sprintf("n=%d", md.Base.N)
	}
	p := ""
	if md.P != nil {
		p = fmt.Sprintf("p=%.3f", *md.P)
		if *md.P < 0.001 {
			p = "p<0.001"
		}
	}
	switch md.Significance {
	case "significant":
		return p + " " + n
	case "not significant":
		return "~ " + p + " " + n
	}
	return "significance unknown " + n
}

func verdict(md MetricDelta) string {
	var parts []string
	if md.Better != nil && (md.Significance == "significant" || md.Significance == "point estimate") {
		if *md.Better {
			parts = append(parts, "better")
		} else {
			parts = append(parts, "worse")
		}
	}
	for _, t := range md.Crossed {
		if md.Failing {
			parts = append(parts, "FAIL "+t)
		} else {
			parts = append(parts, "crossed "+t+" (not failing: "+md.Significance+")")
		}
	}
	return strings.Join(parts, ", ")
}

func (c *Comparison) testDescription() string {
	name, center := "Welch's t-test", "mean"
	if c.Test == "mann-whitney" {
		name, center = "Mann-Whitney U test", "median"
	}
	return fmt.Sprintf("%s on per-repetition values when both sides have ≥%d repetitions, alpha %g; %s ± %g%% confidence interval",
		name, MinRepetitions, c.Alpha, center, c.Confidence*100)
}

func sideName(r RunRef, fallback string) string {
	parts := []string{}
	if r.Name != "" {
		parts = append(parts, r.Name)
	}
	if r.ID != "" {
		parts = append(parts, r.ID)
	}
	if len(parts) == 0 {
		return fallback
	}
	if len(parts) == 2 {
		return parts[0] + " (" + parts[1] + ")"
	}
	return parts[0]
}

func (c *Comparison) summaryLine() string {
	failedCells := 0
	for _, cd := range c.Cells {
		if cd.Verdict == "fail" {
			failedCells++
		}
	}
	switch {
	case c.Failed():
		var why []string
		if failedCells > 0 {
			why = append(why, fmt.Sprintf("%d of %d cells failed", failedCells, len(c.Cells)))
		}
		why = append(why, c.Failures...)
		return "FAIL: " + strings.Join(why, "; ") + "."
	case len(c.Thresholds) == 0:
		return fmt.Sprintf("PASS: no --fail-on threshold given; every cell's error rate stayed within %.1f%%, every base cell is in the new run and the new run is complete.", 100*DefaultErrorRate)
	case len(c.Unconfirmed) > 0:
		return fmt.Sprintf("PASS: no threshold crossed that fails (%d crossing(s) a significance test did not confirm).", len(c.Unconfirmed))
	}
	return "PASS: no threshold crossed."
}

func writeCompareText(w io.Writer, c *Comparison) error {
	bw := &errWriter{w: w}
	bw.printf("base: %s\nnew:  %s\ntest: %s\n\n", sideName(c.Base, "base"), sideName(c.New, "new"), c.testDescription())
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "cell\tmetric\tbase\tnew\tdelta\tsignificance\t")
	for _, cd := range c.Cells {
		for i, md := range cd.Metrics {
			label := cd.Label
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", label, md.Metric, formatEstimate(md.Unit, md.Base), formatEstimate(md.Unit, md.New),
				formatDelta(md), formatSignificance(md), verdict(md))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		bw.printf("%s", strings.TrimRight(line, " \n"))
		if strings.HasSuffix(line, "\n") {
			bw.printf("\n")
		}
	}
	if len(c.OnlyBase) > 0 {
		bw.printf("\nonly in base: %s\n", strings.Join(c.OnlyBase, "; "))
	}
	if len(c.OnlyNew) > 0 {
		bw.printf("\nonly in new: %s\n", strings.Join(c.OnlyNew, "; "))
	}
	for _, n := range c.Notes {
		bw.printf("\nnote: %s", n)
	}
	if len(c.Notes) > 0 {
		bw.printf("\n")
	}
	bw.printf("\n%s\n", c.summaryLine())
	for _, cd := range c.Cells {
		bw.printf("  %s %s: %s\n", strings.ToUpper(cd.Verdict), cd.Label, strings.Join(cd.Why, "; "))
	}
	return bw.err
}

func writeCompareMarkdown(w io.Writer, c *Comparison) error {
	bw := &errWriter{w: w}
	bw.printf("## rpcbench compare\n\n**%s**\n\n", mdEscape(c.summaryLine()))
	bw.printf("Base: %s · new: %s  \n%s.\n\n", mdEscape(sideName(c.Base, "base")), mdEscape(sideName(c.New, "new")), mdEscape(capitalize(c.testDescription())))
	bw.printf("| cell | metric | base | new | delta | significance | |\n|---|---|--:|--:|--:|---|---|\n")
	for _, cd := range c.Cells {
		for i, md := range cd.Metrics {
			label := mdEscape(cd.Label)
			if i > 0 {
				label = ""
			}
			v := verdict(md)
			if strings.Contains(v, "FAIL") {
				v = "**" + mdEscape(v) + "**"
			} else {
				v = mdEscape(v)
			}
			bw.printf("| %s | %s | %s | %s | %s | %s | %s |\n", label, mdEscape(md.Metric), mdEscape(formatEstimate(md.Unit, md.Base)),
				mdEscape(formatEstimate(md.Unit, md.New)), mdEscape(formatDelta(md)), mdEscape(formatSignificance(md)), v)
		}
	}
	if len(c.OnlyBase) > 0 {
		bw.printf("\nOnly in base: %s\n", mdEscape(strings.Join(c.OnlyBase, "; ")))
	}
	if len(c.OnlyNew) > 0 {
		bw.printf("\nOnly in new: %s\n", mdEscape(strings.Join(c.OnlyNew, "; ")))
	}
	if len(c.Notes) > 0 {
		bw.printf("\n")
		for _, n := range c.Notes {
			bw.printf("- %s\n", mdEscape(n))
		}
	}
	bw.printf("\n**Verdicts**\n\n")
	for _, cd := range c.Cells {
		v := strings.ToUpper(cd.Verdict)
		if cd.Verdict == "fail" {
			v = "**FAIL**"
		}
		bw.printf("- %s %s: %s\n", v, mdEscape(cd.Label), mdEscape(strings.Join(cd.Why, "; ")))
	}
	return bw.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
