package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/perf/benchmath"

	"github.com/rpcbench/rpcbench/results"
)

// MinRepetitions is how many repetitions each side needs for a
// significance test and confidence intervals.
const MinRepetitions = 3

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
		if !contains(c.Metrics, t.Metric) && t.Metric != "rstar" {
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
	compareSaturation(c, base, cur, opts)
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

// compareSaturation holds the new run's R* (rpcbench sweep) to the base's
// under an rstar threshold: a drop beyond it is a regression, and an R*
// the base confirmed that the new run did not find (or a driver variant
// the new sweep lacks) fails the comparison.
func compareSaturation(c *Comparison, base, cur *results.Run, opts CompareOptions) {
	var rules []Threshold
	for _, t := range opts.Thresholds {
		if t.Metric == "rstar" {
			rules = append(rules, t)
		}
	}
	if len(rules) == 0 {
		return
	}
	key := func(s results.Saturation) string { return driverLabel(s.Driver, s.Variant) + optionsSuffix(s.Options) }
	got := map[string]results.Saturation{}
	for _, s := range cur.Saturation {
		got[key(s)] = s
	}
	if len(base.Saturation) == 0 {
		c.Failures = append(c.Failures, "--fail-on rstar: the base has no saturation sweep (run rpcbench sweep for both sides)")
		return
	}
	for _, sb := range base.Saturation {
		k := key(sb)
		sn, ok := got[k]
		switch {
		case !ok:
			if !opts.AllowMissing {
				c.Failures = append(c.Failures, fmt.Sprintf("%s: the base's saturation sweep is missing from the new run (--allow-missing accepts that)", k))
			}
			continue
		case sb.MaxSustainableRate == nil:
			continue // nothing to hold the new run to
		case sn.MaxSustainableRate == nil && sn.AtLeast >= *sb.MaxSustainableRate:
			continue // held at least as high; the new run's generator could not offer more
		case sn.MaxSustainableRate == nil:
			c.Failures = append(c.Failures, fmt.Sprintf("%s: R* %.0f calls/s in the base, not found in the new run: %s", k, *sb.MaxSustainableRate, sn.Reason))
			continue
		}
		delta := (*sn.MaxSustainableRate / *sb.MaxSustainableRate - 1) * 100
		for _, t := range rules {
			if t.crossed(delta) {
				c.Regressions = append(c.Regressions, Violation{Cell: k + " saturation", Metric: "rstar", Threshold: t.String(), DeltaPercent: delta, Significance: "point estimate"})
			}
		}
	}
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
	if o := results.OptionsString(r.options); o != "" {
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
