package claims

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// C10: a chain of synchronous calls adds up; an asynchronous tail does
// not. Per driver variant and load, from the call-chain cells (scenario
// key chain):
//   - sync: the slope of p50 against depth, per hop, is one hop's latency:
//     the slope ÷ the depth-1 p50 within chainTolerance of 1;
//   - async-tail: the slope ÷ the depth-1 p50 below asyncSlopeMax;
//   - at the deepest depth both modes ran, async-tail's p50 ÷ sync's
//     below 1 (the tail cut the caller's time).

// chainTolerance is how far the sync slope may be from one hop's latency.
const chainTolerance = 0.2

// asyncSlopeMax bounds the async-tail slope, as a share of one hop's
// latency per added hop.
const asyncSlopeMax = 0.1

// MinChainDepths is the fewest depths a slope is fitted on.
const MinChainDepths = 3

// series is one driver variant's chain cells of one mode at one load: a
// group per depth.
type series struct {
	base   string // the cell key without its chain
	mode   string
	groups map[int]*group
}

func chainBase(key string) string {
	i := strings.Index(key, " chain=")
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], ' ')
	if j < 0 {
		return key[:i]
	}
	return key[:i] + key[i+1+j:]
}

// chainSeries groups the chain cells by driver variant, load and mode.
func (d *data) chainSeries() []*series {
	var out []*series
	for _, g := range d.chains {
		c := g.first()
		base := chainBase(g.key)
		i := slices.IndexFunc(out, func(s *series) bool { return s.base == base && s.mode == c.Chain.Mode })
		if i < 0 {
			out = append(out, &series{base: base, mode: c.Chain.Mode, groups: map[int]*group{}})
			i = len(out) - 1
		}
		out[i].groups[c.Chain.Depth] = g
	}
	return out
}

func (s *series) depths() []int {
	var ds []int
	for d := range s.groups {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds
}

func (s *series) label() string {
	g := s.groups[s.depths()[0]]
	return g.label() + " " + s.mode
}

// slope fits p50 = a + b·depth over every usable repetition of every
// depth, and returns b with its 95% interval, the depth-1 (shallowest)
// mean p50, the cells, and why it cannot (when it cannot).
func (s *series) slope() (b, lo, hi, hop float64, refs []CellRef, why string) {
	var xs, ys []float64
	var bad []string
	ds := s.depths()
	for _, d := range ds {
		r, vals, w := s.groups[d].ref(p50)
		refs = append(refs, r)
		switch {
		case w != "":
			bad = append(bad, w)
		case len(vals) < MinRepetitions:
			bad = append(bad, fmt.Sprintf("depth %d: too few repetitions (%d; a confidence interval needs at least %d)", d, len(vals), MinRepetitions))
		}
		for _, v := range vals {
			xs, ys = append(xs, float64(d)), append(ys, v)
		}
	}
	if len(bad) > 0 {
		return 0, 0, 0, 0, refs, strings.Join(bad, "; ")
	}
	if len(ds) < MinChainDepths {
		return 0, 0, 0, 0, refs, fmt.Sprintf("%d depths (%v); a slope needs at least %d", len(ds), ds, MinChainDepths)
	}
	if ds[0] != 1 {
		return 0, 0, 0, 0, refs, fmt.Sprintf("no depth-1 cells (depths %v): one hop's latency is unknown", ds)
	}
	hop = refs[0].Mean
	b, se := fitSlope(xs, ys)
	h := t975(float64(len(xs)-2)) * se
	return b, b - h, b + h, hop, refs, ""
}

// fitSlope is the least-squares slope of y on x and its standard error.
func fitSlope(xs, ys []float64) (b, se float64) {
	mx, _ := meanSD(xs)
	my, _ := meanSD(ys)
	var sxx, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, math.Inf(1)
	}
	b = sxy / sxx
	a := my - b*mx
	var sse float64
	for i := range xs {
		r := ys[i] - a - b*xs[i]
		sse += r * r
	}
	if len(xs) <= 2 {
		return b, math.Inf(1)
	}
	return b, math.Sqrt(sse / float64(len(xs)-2) / sxx)
}

func judgeC10(d *data) finding {
	var f finding
	all := d.chainSeries()
	for _, s := range all {
		b, lo, hi, hop, refs, why := s.slope()
		c := Comparison{Metric: "p50 slope per hop ÷ depth-1 p50", Outcome: Undecided, Cells: refs}
		switch s.mode {
		case results.ChainModeSync:
			c.What = fmt.Sprintf("%s: each added hop adds one hop's latency", s.label())
			c.Threshold = 1
		default:
			c.What = fmt.Sprintf("%s: an added hop adds nothing to the caller's wait", s.label())
			c.Threshold = asyncSlopeMax
		}
		if why != "" {
			c.Why = why
			f.comparisons = append(f.comparisons, c)
			continue
		}
		c.Value, c.Low, c.High = ptr(b/hop), ptr(lo/hop), ptr(hi/hop)
		if s.mode == results.ChainModeSync {
			within(&c, lo/hop, hi/hop, 1-chainTolerance, 1+chainTolerance)
		} else {
			against(&c, lo/hop, hi/hop, asyncSlopeMax, false)
		}
		f.comparisons = append(f.comparisons, c)
	}
	// the tail cut the caller's time: async-tail ÷ sync at the deepest
	// depth both ran
	for _, a := range all {
		if a.mode != results.ChainModeAsyncTail {
			continue
		}
		i := slices.IndexFunc(all, func(s *series) bool { return s.base == a.base && s.mode == results.ChainModeSync })
		if i < 0 {
			continue
		}
		sy := all[i]
		deep := 0
		for dep := range a.groups {
			if sy.groups[dep] != nil && dep > deep {
				deep = dep
			}
		}
		if deep < 2 {
			continue
		}
		f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("%s: p50 async-tail ÷ sync at depth %d", strings.TrimSuffix(a.label(), " "+a.mode), deep), p50, a.groups[deep], sy.groups[deep], 1, false))
	}
	if len(all) == 0 {
		f.missing = append(f.missing, "no call-chain cells (a scenario with the chain key: depth [1, 2, 4, 6], mode [sync, async-tail])")
	}
	f.notes = append(f.notes,
		"a chain's hops are the same service through the same driver on this host; async-tail sends the tail with the driver's request-reply call on a goroutine of the hop, its reply discarded (a one-way publish would also save the reply's trip)",
		fmt.Sprintf("sync holds when the slope's 95%% interval lies within ±%.0f%% of one hop's latency (the depth-1 p50: its service time and its transport), fails when it lies wholly outside; async-tail holds when the interval lies below %.0f%% of it", 100*chainTolerance, 100*asyncSlopeMax))
	return f
}

// within decides an estimate with interval [lo, hi] against the band
// [min, max]: inside holds, wholly outside fails, across an edge is
// undecided.
func within(c *Comparison, lo, hi, min, max float64) {
	switch {
	case lo >= min && hi <= max:
		c.Outcome = Holds
	case hi < min || lo > max:
		c.Outcome = Fails
	default:
		c.Outcome = Undecided
		c.Why = fmt.Sprintf("the 95%% interval %s..%s crosses an edge of %s..%s: inside the noise", fmtNum(lo), fmtNum(hi), fmtNum(min), fmtNum(max))
	}
}
