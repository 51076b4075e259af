package claims

import (
	"fmt"
	"math"
)

// meanSD is the mean and sample standard deviation of v (0, 0 when empty;
// SD 0 for one value).
func meanSD(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return 0, 0
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// t975 is the 97.5% quantile of Student's t with df degrees of freedom
// (two-sided 95%), from a table, interpolated in 1/df beyond it.
func t975(df float64) float64 {
	table := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	switch {
	case df < 1 || math.IsNaN(df):
		return math.Inf(1)
	case df >= 30:
		// between 2.042 at 30 and 1.960 at infinity, linear in 1/df
		return 1.960 + (2.042-1.960)*30/df
	}
	lo := int(df)
	if float64(lo) == df {
		return table[lo]
	}
	f := df - float64(lo)
	return table[lo]*(1-f) + table[lo+1]*f
}

// meanCI is the mean of v and its 95% t-interval.
func meanCI(v []float64) (est, lo, hi float64) {
	m, sd := meanSD(v)
	h := t975(float64(len(v)-1)) * sd / math.Sqrt(float64(len(v)))
	return m, m - h, m + h
}

// ratioCI estimates mean(num)/mean(den) as the ratio of geometric means
// with a 95% interval: Welch's t-interval of the difference of the mean
// logarithms, exponentiated (latencies and rates are positive and their
// spread grows with them). ok is false when a value is not positive.
func ratioCI(num, den []float64) (est, lo, hi float64, ok bool) {
	ln := func(v []float64) ([]float64, bool) {
		out := make([]float64, len(v))
		for i, x := range v {
			if !(x > 0) || math.IsInf(x, 0) {
				return nil, false
			}
			out[i] = math.Log(x)
		}
		return out, true
	}
	a, oka := ln(num)
	b, okb := ln(den)
	if !oka || !okb || len(a) < 2 || len(b) < 2 {
		return 0, 0, 0, false
	}
	ma, sa := meanSD(a)
	mb, sb := meanSD(b)
	va, vb := sa*sa/float64(len(a)), sb*sb/float64(len(b))
	se := math.Sqrt(va + vb)
	df := float64(len(a) + len(b) - 2)
	if va+vb > 0 {
		// Welch-Satterthwaite
		df = (va + vb) * (va + vb) / (va*va/float64(len(a)-1) + vb*vb/float64(len(b)-1))
	}
	d := ma - mb
	h := t975(df) * se
	return math.Exp(d), math.Exp(d - h), math.Exp(d + h), true
}

func ptr(v float64) *float64 { return &v }

// against decides an estimate with interval [lo, hi] against threshold:
// above says the assertion wants the value above it. The interval must lie
// wholly on one side; one that includes the threshold is undecided.
func against(c *Comparison, lo, hi, threshold float64, above bool) {
	c.Threshold = threshold
	switch {
	case above && lo > threshold, !above && hi < threshold:
		c.Outcome = Holds
	case above && hi < threshold, !above && lo > threshold:
		c.Outcome = Fails
	default:
		c.Outcome = Undecided
		c.Why = fmt.Sprintf("the 95%% interval %s..%s includes the threshold %s: inside the noise", fmtNum(lo), fmtNum(hi), fmtNum(threshold))
	}
}

// ratio compares metric m of num against den: their ratio (with its 95%
// interval over the repetitions) must be above threshold (above) or below
// it. Cells that cannot be used, too few repetitions and an interval that
// includes the threshold leave it undecided.
func ratio(what string, m metricFn, num, den *group, threshold float64, above bool) Comparison {
	c := Comparison{What: what, Metric: m.name + " ratio", Threshold: threshold, Outcome: Undecided}
	rn, vn, whyN := num.ref(m)
	rd, vd, whyD := den.ref(m)
	c.Cells = []CellRef{rn, rd}
	switch {
	case whyN != "" || whyD != "":
		c.Why = joinNonEmpty("; ", whyN, whyD)
		return c
	case len(vn) < MinRepetitions || len(vd) < MinRepetitions:
		c.Why = fmt.Sprintf("too few repetitions (%d and %d; a confidence interval needs at least %d each)", len(vn), len(vd), MinRepetitions)
		if len(vn) > 0 && len(vd) > 0 && rd.Mean > 0 {
			c.Value = ptr(rn.Mean / rd.Mean)
		}
		return c
	}
	est, lo, hi, ok := ratioCI(vn, vd)
	if !ok {
		c.Why = "a value is zero or missing: no ratio"
		return c
	}
	c.Value, c.Low, c.High = ptr(est), ptr(lo), ptr(hi)
	against(&c, lo, hi, threshold, above)
	return c
}

// single compares two single values (a sweep's R* or X_sat: found once,
// no repetitions) by their ratio: above threshold×(1+margin) holds, below
// threshold/(1+margin) fails, between is within the measurement's
// resolution.
func single(what, metric string, num, den, threshold, margin float64, refs ...CellRef) Comparison {
	c := Comparison{What: what, Metric: metric, Threshold: threshold, Outcome: Undecided, Cells: refs}
	if c.Cells == nil {
		c.Cells = []CellRef{}
	}
	if !(den > 0) || !(num > 0) {
		c.Why = "a value is zero or missing"
		return c
	}
	r := num / den
	c.Value = ptr(r)
	switch {
	case r > threshold*(1+margin):
		c.Outcome = Holds
	case r < threshold/(1+margin):
		c.Outcome = Fails
	default:
		c.Why = fmt.Sprintf("within ±%.0f%% of %s: inside the resolution of a single measurement", 100*margin, fmtNum(threshold))
	}
	return c
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	s := ""
	for i, p := range out {
		if i > 0 {
			s += sep
		}
		s += p
	}
	return s
}
