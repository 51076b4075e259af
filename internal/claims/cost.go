package claims

import (
	"fmt"
	"maps"
	"slices"

	"github.com/rpcbench/rpcbench/results"
)

// C4: the broker's CPU share at the highest load, and where MQ drivers
// saturate against direct RPC.

// brokerMargin is the broker's CPU share less the largest share of the
// other roles in one cell (nil: the cell has no broker figure).
func brokerMargin(c *results.Cell) (float64, string) {
	if c.Cost == nil || len(c.Cost.CPUUsPerCall) == 0 {
		return 0, "no CPU cost recorded (a cell ended by a call count, or an older result)"
	}
	b, ok := c.Cost.CPUUsPerCall["broker"]
	if !ok {
		return 0, "no broker CPU in the cost (an external broker, or an embedded one counted in the caller)"
	}
	var total, other float64
	for _, role := range slices.Sorted(maps.Keys(c.Cost.CPUUsPerCall)) {
		v := c.Cost.CPUUsPerCall[role]
		total += v
		if role != "broker" && v > other {
			other = v
		}
	}
	if total <= 0 {
		return 0, "no CPU time measured"
	}
	return (b - other) / total, ""
}

func judgeC4(d *data) finding {
	var f finding
	// the broker's share, at each broker variant's highest closed-loop load
	top := map[string]*group{}
	var order []string
	for _, g := range d.find(func(g *group) bool { return g.isBroker() && steady(g) && g.closed() }) {
		k := g.name()
		if cur, ok := top[k]; !ok || g.first().Concurrency > cur.first().Concurrency {
			if !ok {
				order = append(order, k)
			}
			top[k] = g
		}
	}
	for _, k := range order {
		g := top[k]
		c := Comparison{What: "broker CPU share − largest other share, " + g.label(), Metric: "cpu_share_margin", Outcome: Undecided}
		ref := CellRef{Key: g.key, Runs: slices.Clone(g.runs), Repetitions: len(g.cells), Values: []float64{}}
		var why string
		for _, cell := range g.cells {
			if x := excluded(cell); x != "" {
				why = fmt.Sprintf("repetition %d: %s", cell.Repetition, x)
				break
			}
			v, w := brokerMargin(cell)
			if w != "" {
				why = w
				break
			}
			ref.Values = append(ref.Values, v)
		}
		ref.Mean, ref.SD = meanSD(ref.Values)
		c.Cells = []CellRef{ref}
		switch {
		case why != "":
			c.Why = why
		case len(ref.Values) < MinRepetitions:
			c.Why = fmt.Sprintf("too few repetitions (%d; a confidence interval needs at least %d)", len(ref.Values), MinRepetitions)
			c.Value = ptr(ref.Mean)
		default:
			est, lo, hi := meanCI(ref.Values)
			c.Value, c.Low, c.High = ptr(est), ptr(lo), ptr(hi)
			against(&c, lo, hi, 0, true)
		}
		f.comparisons = append(f.comparisons, c)
	}
	// saturation: the fastest direct driver against each MQ driver
	var directSat, brokerSat []sat
	for _, r := range d.runs {
		for i := range r.Saturation {
			s := &r.Saturation[i]
			if slices.Contains(brokerDrivers, s.Driver) {
				brokerSat = append(brokerSat, sat{r.ID, s})
			} else {
				directSat = append(directSat, sat{r.ID, s})
			}
		}
	}
	if len(directSat) > 0 && len(brokerSat) > 0 {
		bd := directSat[0]
		for _, s := range directSat {
			if s.s.XSat > bd.s.XSat {
				bd = s
			}
		}
		for _, s := range brokerSat {
			f.comparisons = append(f.comparisons, single(fmt.Sprintf("X_sat %s/%s ÷ %s/%s", bd.s.Driver, bd.s.Variant, s.s.Driver, s.s.Variant), "x_sat ratio", bd.s.XSat, s.s.XSat, 1, 0.1))
			if bd.s.MaxSustainableRate != nil && s.s.MaxSustainableRate != nil {
				f.comparisons = append(f.comparisons, single(fmt.Sprintf("R* %s/%s ÷ %s/%s", bd.s.Driver, bd.s.Variant, s.s.Driver, s.s.Variant), "max_sustainable_rate ratio", *bd.s.MaxSustainableRate, *s.s.MaxSustainableRate, 1, 0.1))
			}
		}
	} else {
		// no sweep: closed-loop throughput at the highest concurrency both have
		var pt string
		conc := 0
		for _, g := range d.find(func(g *group) bool { return g.isBroker() && steady(g) && g.closed() }) {
			if g.first().Concurrency > conc && len(d.find(func(h *group) bool { return h.isDirect() && h.point == g.point && steady(h) })) > 0 {
				conc, pt = g.first().Concurrency, g.point
			}
		}
		if pt != "" {
			dt := best(d.find(func(g *group) bool { return g.isDirect() && g.point == pt && steady(g) }), throughput, false)
			for _, g := range d.find(func(g *group) bool { return g.isBroker() && g.point == pt && steady(g) }) {
				f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("throughput %s ÷ %s (no sweep in the data: closed loop at the highest common concurrency)", dt.label(), g.name()), throughput, dt, g, 1, true))
			}
		}
	}
	d.missingBrokers(&f)
	f.notes = append(f.notes, "on one 2-core host caller, responder and broker compete for the same CPUs: the shares are of the CPU each process spent per call")
	return f
}
