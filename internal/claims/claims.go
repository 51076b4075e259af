// Package claims judges the claims rpcbench was started to test (the
// articles' C1..C11, stated in scenarios/claims/README.md) against stored
// results: pure functions from results documents to verdicts. A verdict is
// never written by hand: each claim turns the cells it needs into
// comparisons, each comparison holds, fails or stays undecided (with why),
// and the verdict follows from them.
package claims

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// SchemaVersion is the version of the claims.json format (schema.json).
const SchemaVersion = 1

// Verdict is what the data says of a claim.
type Verdict string

// Verdicts.
const (
	// Supported: every comparison the claim needs holds.
	Supported Verdict = "supported"
	// Refuted: every comparison decided fails.
	Refuted Verdict = "refuted"
	// Mixed: some hold, some fail (Reason names which).
	Mixed Verdict = "mixed"
	// Inconclusive: the data cannot decide (Reason says why).
	Inconclusive Verdict = "inconclusive"
)

// Outcome is what one comparison found.
type Outcome string

// Outcomes of a comparison.
const (
	Holds     Outcome = "holds"
	Fails     Outcome = "fails"
	Undecided Outcome = "undecided"
)

// MinRepetitions is the fewest repetitions a latency or throughput
// comparison is decided on: with fewer there is no confidence interval.
const MinRepetitions = 3

// Document is claims.json: every claim judged, and what it was judged on.
type Document struct {
	SchemaVersion int      `json:"schema_version"`
	Runs          []RunRef `json:"runs"`
	// Machine is where the runs were measured (their environment
	// manifests; several lines when they differ).
	Machine string      `json:"machine"`
	Claims  []Judgement `json:"claims"`
}

// RunRef names a run the verdicts used.
type RunRef struct {
	ID       string `json:"id"`
	Scenario string `json:"scenario"`
	Complete bool   `json:"complete"`
	Cells    int    `json:"cells"`
}

// Judgement is one claim with its verdict.
type Judgement struct {
	ID        string   `json:"id"`
	Claim     string   `json:"claim"`
	Source    string   `json:"source"`
	Assertion string   `json:"assertion"`
	Tolerance string   `json:"tolerance"`
	Verdict   Verdict  `json:"verdict"`
	Reason    string   `json:"reason"`
	Evidence  Evidence `json:"evidence"`
	// AtDelay is the claim judged again on the cells measured through the
	// delay proxy at each injected one-way delay per hop (loopback
	// flatters brokers: no network time per hop), one entry per delay the
	// data holds cells for the claim at; Verdict and Evidence are judged
	// on cells without the proxy.
	AtDelay []DelayJudgement `json:"at_delay,omitempty"`
}

// DelayJudgement is a claim's verdict on the cells measured at one
// injected one-way delay per hop.
type DelayJudgement struct {
	OneWayDelay string       `json:"one_way_delay"`
	Verdict     Verdict      `json:"verdict"`
	Reason      string       `json:"reason"`
	Comparisons []Comparison `json:"comparisons"`
	// Moved says whether the verdict differs from the one on loopback.
	Moved bool `json:"moved"`
	// Notes are the judge's notes on these cells (what of the claim they
	// could not decide).
	Notes []string `json:"notes,omitempty"`
}

// Evidence is what a verdict was decided on.
type Evidence struct {
	Machine     string       `json:"machine"`
	Runs        []string     `json:"runs"`
	Comparisons []Comparison `json:"comparisons"`
	// Missing are the drivers or variants the claim needs that are not in
	// the data, with why (a run's skip reason, or "not in the data").
	Missing []string `json:"missing,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Comparison is one test of the assertion: a measured value (a ratio, a
// share, a count) against its threshold, with the cells it came from.
type Comparison struct {
	What    string  `json:"what"`
	Metric  string  `json:"metric"`
	Outcome Outcome `json:"outcome"`
	Why     string  `json:"why,omitempty"`
	// Value is the estimate (nil: none could be made); Low and High its
	// 95% confidence interval (nil: a single value, no interval).
	Value     *float64  `json:"value"`
	Low       *float64  `json:"ci_low,omitempty"`
	High      *float64  `json:"ci_high,omitempty"`
	Threshold float64   `json:"threshold"`
	Cells     []CellRef `json:"cells"`
}

// CellRef is one cell key's repetitions as a comparison used them.
type CellRef struct {
	Key         string    `json:"key"`
	Runs        []string  `json:"runs"`
	Repetitions int       `json:"repetitions"`
	Values      []float64 `json:"values"`
	Mean        float64   `json:"mean"`
	// SD is the standard deviation over the repetitions (0: one).
	SD float64 `json:"sd"`
	// Excluded says why the cell cannot be used (empty: it can).
	Excluded string `json:"excluded,omitempty"`
}

// Claim is one claim of the suite and how it is judged.
type Claim struct {
	ID        string
	Claim     string
	Source    string
	Assertion string
	Tolerance string
	judge     func(d *data) finding
	// delayed: the claim is judged again on the cells of each injected
	// hop delay (a latency claim whose drivers the delay proxy carries)
	delayed bool
}

// finding is what a claim's judge found: its comparisons, the drivers it
// needed that were missing, notes, and a reason that overrides the one
// derived from the comparisons (measurement not implemented).
type finding struct {
	comparisons []Comparison
	missing     []string
	notes       []string
	// delayNotes are notes for a judgement at an injected delay only.
	delayNotes []string
	// inconclusive, when set, makes the verdict inconclusive with it as the
	// reason whatever the comparisons say.
	inconclusive string
}

// Suite returns the claims in order C1..C11.
func Suite() []Claim { return slices.Clone(suite) }

// IDs lists the claims' ids in order.
func IDs() []string {
	var ids []string
	for _, c := range suite {
		ids = append(ids, c.ID)
	}
	return ids
}

// Lookup returns the claim with id (case-insensitive).
func Lookup(id string) (Claim, bool) {
	for _, c := range suite {
		if strings.EqualFold(c.ID, id) {
			return c, true
		}
	}
	return Claim{}, false
}

// Judge judges the claims named by only (all when empty) against runs.
// It is a pure function of its arguments.
func Judge(runs []*results.Run, only []string) Document {
	all := index(runs, func(*results.Cell) bool { return true })
	d := index(runs, func(c *results.Cell) bool { return c.Hop == nil })
	d.hopNotes, d.anyHop = all.hopSlopes(), all.hasHop()
	delays := delaysIn(runs)
	atDelay := map[string]*data{}
	for _, dl := range delays {
		atDelay[dl] = index(runs, func(c *results.Cell) bool { return c.Hop != nil && c.Hop.OneWayDelay == dl })
		atDelay[dl].hopNotes, atDelay[dl].anyHop, atDelay[dl].delayed = d.hopNotes, true, true
	}
	doc := Document{SchemaVersion: SchemaVersion, Machine: d.machine, Runs: []RunRef{}, Claims: []Judgement{}}
	for _, r := range runs {
		doc.Runs = append(doc.Runs, RunRef{ID: r.ID, Scenario: r.Scenario.Name, Complete: r.Complete, Cells: len(r.Cells)})
	}
	for _, c := range suite {
		if len(only) > 0 && !slices.ContainsFunc(only, func(id string) bool { return strings.EqualFold(id, c.ID) }) {
			continue
		}
		j := judgeOne(c, d)
		for _, dl := range delays {
			if !c.delayed {
				break
			}
			f := c.judge(atDelay[dl])
			if len(f.comparisons) == 0 || f.inconclusive != "" {
				continue // no cells for this claim at this delay
			}
			v, why := decide(f)
			j.AtDelay = append(j.AtDelay, DelayJudgement{OneWayDelay: dl, Verdict: v, Reason: why, Comparisons: f.comparisons, Moved: v != j.Verdict, Notes: f.delayNotes})
		}
		doc.Claims = append(doc.Claims, j)
	}
	return doc
}

// delaysIn are the non-zero one-way delays the runs' cells were measured
// at through the delay proxy, in increasing order (0 is the proxy's own
// cost, its calibration: no claim is judged on it).
func delaysIn(runs []*results.Run) []string {
	type dl struct {
		s string
		d float64
	}
	var out []dl
	for _, r := range runs {
		for i := range r.Cells {
			h := r.Cells[i].Hop
			if h == nil || slices.ContainsFunc(out, func(x dl) bool { return x.s == h.OneWayDelay }) {
				continue
			}
			if v, err := parseDur(h.OneWayDelay); err == nil && v > 0 {
				out = append(out, dl{h.OneWayDelay, v.Seconds()})
			}
		}
	}
	slices.SortFunc(out, func(a, b dl) int { return cmp.Compare(a.d, b.d) })
	var s []string
	for _, x := range out {
		s = append(s, x.s)
	}
	return s
}

func judgeOne(c Claim, d *data) Judgement {
	f := c.judge(d)
	j := Judgement{
		ID: c.ID, Claim: c.Claim, Source: c.Source, Assertion: c.Assertion, Tolerance: c.Tolerance,
		Evidence: Evidence{Machine: d.machine, Runs: d.runIDs(f.comparisons), Comparisons: f.comparisons, Missing: f.missing, Notes: append(f.notes, d.notes...)},
	}
	if j.Evidence.Comparisons == nil {
		j.Evidence.Comparisons = []Comparison{}
	}
	j.Verdict, j.Reason = decide(f)
	return j
}

// decide derives the verdict from the comparisons: supported when every
// one holds, refuted when every one fails, mixed when some hold and some
// fail, inconclusive when none was decided or when the undecided ones
// could tip it.
func decide(f finding) (Verdict, string) {
	if f.inconclusive != "" {
		return Inconclusive, f.inconclusive
	}
	var holds, fails, undecided []Comparison
	for _, c := range f.comparisons {
		switch c.Outcome {
		case Holds:
			holds = append(holds, c)
		case Fails:
			fails = append(fails, c)
		default:
			undecided = append(undecided, c)
		}
	}
	missing := ""
	if len(f.missing) > 0 {
		missing = "; not in the data: " + strings.Join(f.missing, "; ")
	}
	list := func(cs []Comparison, max int) string {
		var parts []string
		for i, c := range cs {
			if i == max {
				parts = append(parts, fmt.Sprintf("and %d more", len(cs)-max))
				break
			}
			s := c.What
			if c.Value != nil {
				s += " = " + fmtNum(*c.Value)
			}
			if c.Why != "" && c.Outcome == Undecided {
				s += " (" + c.Why + ")"
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "; ")
	}
	switch {
	case len(f.comparisons) == 0:
		why := "no cells in the data for this claim"
		if len(f.missing) > 0 {
			why = "not in the data: " + strings.Join(f.missing, "; ")
		}
		return Inconclusive, why
	case len(holds) > 0 && len(fails) > 0:
		r := fmt.Sprintf("holds for %s; fails for %s", list(holds, 6), list(fails, 6))
		if len(undecided) > 0 {
			r += fmt.Sprintf("; undecided: %s", list(undecided, 4))
		}
		return Mixed, r + missing
	case len(undecided) > 0:
		r := fmt.Sprintf("%d of %d comparisons undecided (%s): %s", len(undecided), len(f.comparisons), causes(undecided), list(undecided, 4))
		if len(holds)+len(fails) > 0 {
			r += fmt.Sprintf("; the %d decided ones %s", len(holds)+len(fails), map[bool]string{true: "hold", false: "fail"}[len(holds) > 0])
		}
		return Inconclusive, r + missing
	case len(fails) == 0:
		return Supported, fmt.Sprintf("all %d comparisons hold: %s", len(holds), list(holds, 6)) + missing
	}
	return Refuted, fmt.Sprintf("all %d comparisons fail: %s", len(fails), list(fails, 6)) + missing
}

// causes counts the undecided comparisons by why, e.g. "unsettled
// cells: 3, inside the noise: 1".
func causes(cs []Comparison) string {
	kinds := []struct{ match, name string }{
		{"unsettled", "unsettled cells"},
		{"generator-limited", "generator-limited cells"},
		{"of calls failed", "cells with failures over 0.1%"},
		{"did not run", "cells that did not run"},
		{"cut short", "cells cut short"},
		{"too few repetitions", "too few repetitions"},
		{"inside the noise", "inside the noise"},
		{"resolution", "inside the resolution"},
	}
	counts := map[string]int{}
	var order []string
	for _, c := range cs {
		name := "other"
		for _, k := range kinds {
			if strings.Contains(c.Why, k.match) {
				name = k.name
				break
			}
		}
		if counts[name] == 0 {
			order = append(order, name)
		}
		counts[name]++
	}
	var parts []string
	for _, n := range order {
		parts = append(parts, fmt.Sprintf("%s: %d", n, counts[n]))
	}
	return strings.Join(parts, ", ")
}

func fmtNum(v float64) string {
	switch a := abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
