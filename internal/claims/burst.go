package claims

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rpcbench/rpcbench/results"
)

// C7: a burst beyond the responder's capacity, MQ against direct RPC.

// drained reports whether a burst cell's last second is back to its
// first's p50 (within 1.5×) with no errors, and says what it saw.
func drained(c *results.Cell) (bool, string) {
	if len(c.Series) < 2 {
		return false, "no time series"
	}
	first, last := c.Series[0], c.Series[len(c.Series)-1]
	if first.P50 <= 0 {
		return false, "no ok calls in the first second"
	}
	ok := last.Errors == 0 && last.P50 > 0 && last.P50 <= 1.5*first.P50
	return ok, fmt.Sprintf("p50 first second %s µs, last %s µs, errors in the last second %d", fmtNum(first.P50), fmtNum(last.P50), last.Errors)
}

// BurstLatenessShare is how late, at p99, the generator may start a
// burst cell's calls, as a share of the call timeout, for its error rate
// to count. A burst overloads the machine the generator shares, and on 2
// cores its lateness p99 reaches a few milliseconds, past the 200 µs that
// makes a cell generator-limited; but a call's deadline runs from its
// intended start, so lateness only shortens its time to the deadline, by
// at most this share, and spreads a 1 s burst by as little: the error
// rate is the system's, not the generator's.
const BurstLatenessShare = 0.01

// burstErr is the mean error rate over a burst group's repetitions, and
// why it cannot be used. timeout is the calls' timeout (0: not known).
func burstErr(g *group, timeout time.Duration) (float64, CellRef, string) {
	ref := CellRef{Key: g.key, Runs: g.runs, Repetitions: len(g.cells), Values: []float64{}}
	for _, c := range g.cells {
		var late time.Duration
		if c.Generator != nil {
			late = time.Duration(c.Generator.Lateness.P99 * float64(time.Microsecond))
		}
		switch {
		case c.Error != "":
			return 0, ref, fmt.Sprintf("%s repetition %d did not run: %s", g.label(), c.Repetition, c.Error)
		case c.GeneratorLimited() && (timeout <= 0 || late > time.Duration(BurstLatenessShare*float64(timeout))):
			return 0, ref, fmt.Sprintf("%s repetition %d: generator-limited: %s (over %.0f%% of the %v timeout)", g.label(), c.Repetition, c.Generator.Reason, 100*BurstLatenessShare, timeout)
		case c.Incomplete:
			return 0, ref, fmt.Sprintf("%s repetition %d: cut short", g.label(), c.Repetition)
		}
		ref.Values = append(ref.Values, c.ErrorRate)
	}
	ref.Mean, ref.SD = meanSD(ref.Values)
	return ref.Mean, ref, ""
}

func judgeC7(d *data) finding {
	var f finding
	burst := func(g *group) bool { return g.first().Phases != "" && g.first().Faults == nil }
	for _, pt := range d.points(func(g *group) bool { return burst(g) && g.isBroker() }) {
		directs := d.find(func(g *group) bool { return burst(g) && g.isDirect() && g.point == pt })
		if len(directs) == 0 {
			continue
		}
		var bd *group
		var bdErr float64
		var bdRef CellRef
		var bdWhy []string
		for _, g := range directs {
			e, ref, why := burstErr(g, d.timeout(g))
			if why != "" {
				bdWhy = append(bdWhy, why)
				continue
			}
			if bd == nil || e < bdErr {
				bd, bdErr, bdRef = g, e, ref
			}
		}
		for _, g := range d.find(func(g *group) bool { return burst(g) && g.isBroker() && g.point == pt }) {
			mqErr, ref, why := burstErr(g, d.timeout(g))
			cmp := Comparison{What: fmt.Sprintf("burst %s: error rate", g.label()), Metric: "error rate difference (direct − MQ)", Outcome: Undecided, Threshold: 0.001, Cells: []CellRef{ref}}
			if bd == nil {
				cmp.Why = "no usable direct cell: " + strings.Join(bdWhy, "; ")
				f.comparisons = append(f.comparisons, cmp)
				continue
			}
			cmp.Cells = append(cmp.Cells, bdRef)
			if why != "" {
				// its error rate is not known: not shown as 0
				cmp.What += fmt.Sprintf(" against %s's %.2f%%", bd.name(), 100*bdErr)
				cmp.Why = why
				f.comparisons = append(f.comparisons, cmp)
				continue
			}
			cmp.What += fmt.Sprintf(" %.2f%% against %s's %.2f%%", 100*mqErr, bd.name(), 100*bdErr)
			cmp.Value = ptr(bdErr - mqErr)
			allDrained, seen := true, ""
			for _, c := range g.cells {
				ok, s := drained(c)
				allDrained = allDrained && ok
				seen = s
			}
			cmp.What += "; drain: " + seen
			switch {
			case bdErr == 0 && mqErr == 0:
				cmp.Why = "no failures either way: the burst overflowed no timeout (a larger burst or a shorter timeout would be needed)"
			case bdErr-mqErr >= 0.001 && allDrained:
				cmp.Outcome = Holds
			case mqErr >= bdErr || !allDrained:
				cmp.Outcome = Fails
			default:
				cmp.Why = "the difference is under 0.1 percentage point"
			}
			f.comparisons = append(f.comparisons, cmp)
		}
	}
	if len(f.comparisons) == 0 {
		f.missing = append(f.missing, "no burst cells (phases) with both a direct and an MQ driver in the data")
	} else {
		d.missingBrokers(&f)
	}
	f.notes = append(f.notes, "latency during the burst is in each cell's series and p99; the error rate counts timeouts, overflow and failures",
		fmt.Sprintf("a burst cell counts while the generator started its calls at most %.0f%% of the timeout late at p99 (it shares the overloaded machine; a call's deadline runs from its intended start)", 100*BurstLatenessShare))
	return f
}

// timeout is the shortest call timeout of the runs g's cells come from
// (0 when none says).
func (d *data) timeout(g *group) time.Duration {
	var out time.Duration
	for _, r := range d.runs {
		if r == nil || !slices.Contains(g.runs, r.ID) {
			continue
		}
		if t, err := parseDur(r.Scenario.Timeout); err == nil && t > 0 && (out == 0 || t < out) {
			out = t
		}
	}
	return out
}
