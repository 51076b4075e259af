package claims

import (
	"fmt"
	"strings"

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

// burstErr is the mean error rate over a burst group's repetitions, and
// why it cannot be used.
func burstErr(g *group) (float64, CellRef, string) {
	ref := CellRef{Key: g.key, Runs: g.runs, Repetitions: len(g.cells), Values: []float64{}}
	for _, c := range g.cells {
		switch {
		case c.Error != "":
			return 0, ref, fmt.Sprintf("%s repetition %d did not run: %s", g.label(), c.Repetition, c.Error)
		case c.GeneratorLimited():
			return 0, ref, fmt.Sprintf("%s repetition %d: generator-limited: %s", g.label(), c.Repetition, c.Generator.Reason)
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
			e, ref, why := burstErr(g)
			if why != "" {
				bdWhy = append(bdWhy, why)
				continue
			}
			if bd == nil || e < bdErr {
				bd, bdErr, bdRef = g, e, ref
			}
		}
		for _, g := range d.find(func(g *group) bool { return burst(g) && g.isBroker() && g.point == pt }) {
			mqErr, ref, why := burstErr(g)
			cmp := Comparison{What: fmt.Sprintf("burst %s: error rate", g.label()), Metric: "error rate difference (direct − MQ)", Outcome: Undecided, Threshold: 0.001, Cells: []CellRef{ref}}
			if bd == nil {
				cmp.Why = "no usable direct cell: " + strings.Join(bdWhy, "; ")
				f.comparisons = append(f.comparisons, cmp)
				continue
			}
			cmp.What += fmt.Sprintf(" %.2f%% against %s's %.2f%%", 100*mqErr, bd.name(), 100*bdErr)
			cmp.Cells = append(cmp.Cells, bdRef)
			if why != "" {
				cmp.Why = why
				f.comparisons = append(f.comparisons, cmp)
				continue
			}
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
	f.notes = append(f.notes, "latency during the burst is in each cell's series and p99; the error rate counts timeouts, overflow and failures")
	return f
}
