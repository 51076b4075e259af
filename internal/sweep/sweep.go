// Package sweep finds where a transport saturates: the maximum rate it
// sustains under stated criteria, by open-loop trials. The search is a
// pure step function (Next says what to run, Record takes what it gave),
// so it is tested against fake systems and runs unchanged against real
// ones.
//
// The method suits a noisy 2-core machine (after FD.io's MLRsearch): short
// trials from a start rate (half the closed-loop plateau) up in ×Step
// steps until one fails, or down until one passes; bisection of the
// bracket to a relative Width; then Confirmations full-length trials at
// the bracket's lower end, of which NeedPasses must pass. A failed
// confirmation lowers the bracket and the search goes on with full-length
// trials only (the short ones flattered the system).
//
// A trial on a busy machine says nothing and is repeated, up to Retries
// times. So is a trial the generator could not keep to (GenRetries), with
// two exceptions. A trial that met every criterion while the generator
// was late by no more than the p99 objective passes: late calls leave in
// bunches, a harder load than the one asked for, and latency is counted
// from their actual send. A trial that failed while the generator's
// lateness stayed within GenBound fails: that lateness is too small
// beside the objective to explain it. So does one whose p99 is over the
// objective by more than the generator's lateness p99: late calls leave
// together, and a system that keeps up with the rate works such a bunch
// off in about as long as the lateness, so bunching adds about that much
// to a call, not more. A rate the generator cannot keep to
// at all is where this machine stops being able to test the transport:
// the search steps down from it, and if every rate below it passes, R* is
// reported as not found, with the confirmed rate as a lower bound
// (AtLeast) and the generator's ceiling as the reason.
// A bound the search did not find is reported as not found, with why,
// never invented.
package sweep

import (
	"fmt"
	"math"
	"time"
)

// Criteria decide whether a trial passes.
type Criteria struct {
	// MinOKShare is the least share of the offered rate that must complete
	// ok (0.98).
	MinOKShare float64
	// MaxFailShare is the largest share of calls that may fail (0.001).
	MaxFailShare float64
	// P99 is the latency objective on the corrected p99.
	P99 time.Duration
	// MaxP50Growth bounds the p50 of the trial's last second against its
	// first (1.5): more means a backlog growing within the trial.
	MaxP50Growth float64
	// GenBound is the generator lateness (p99) within which a trial is
	// judged either way. Beyond it only a pass counts, and only while the
	// lateness stays within P99; anything else is generator-limited.
	GenBound time.Duration
}

// MinGenBound is the least GenBound: the runner's own bound on the
// generator's lateness p99 for any open-loop cell.
const MinGenBound = 200 * time.Microsecond

// DefaultCriteria are the criteria with slo as the p99 objective, and a
// generator bound of a tenth of it (at least MinGenBound).
func DefaultCriteria(slo time.Duration) Criteria {
	return Criteria{MinOKShare: 0.98, MaxFailShare: 0.001, P99: slo, MaxP50Growth: 1.5, GenBound: max(MinGenBound, slo/10)}
}

// Trial is what to run next.
type Trial struct {
	Rate float64 `json:"rate"`
	// Full is a full-length confirmation trial; otherwise a short one.
	Full bool `json:"full"`
}

// Outcome is what a trial measured.
type Outcome struct {
	OKRate    float64       `json:"ok_rate"`
	FailShare float64       `json:"fail_share"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	P999      time.Duration `json:"p99_9_ns"`
	// P50First and P50Last are the p50 of the trial's first and last
	// seconds.
	P50First time.Duration `json:"p50_first_ns"`
	P50Last  time.Duration `json:"p50_last_ns"`
	// GenP99 is the generator's own lateness at p99.
	GenP99 time.Duration `json:"generator_lateness_p99_ns"`
	// GeneratorLimited: the generator missed the runner's bounds for an
	// open-loop cell (GeneratorReason says how); the search judges by
	// GenP99 against its criteria instead.
	GeneratorLimited bool   `json:"generator_limited"`
	GeneratorReason  string `json:"generator_reason,omitempty"`
	// Busy: something else used the machine's CPU during the trial.
	Busy bool `json:"busy"`
}

// Verdicts of a trial.
const (
	Pass             = "pass"
	Fail             = "fail"
	GeneratorLimited = "generator-limited"
	Busy             = "busy"
)

// Record is one trial, kept in the results.
type Record struct {
	Trial
	Outcome
	Verdict string `json:"verdict"`
	// Why names the criterion that failed (or why the trial said
	// nothing); for a pass with a late generator, that it was late.
	Why string `json:"why,omitempty"`
}

// Judge gives a trial's verdict and why: the criterion that failed, why
// the trial said nothing, or for a pass that the generator was late.
func Judge(c Criteria, t Trial, o Outcome) (string, string) {
	if o.Busy {
		return Busy, "the machine was busy during the trial"
	}
	v, why := judgeTransport(c, t, o)
	if o.GenP99 <= c.GenBound {
		return v, why
	}
	late := fmt.Sprintf("the generator's lateness p99 %v exceeds %v", o.GenP99.Round(time.Microsecond), c.GenBound)
	switch {
	case v == Pass && (c.P99 == 0 || o.GenP99 <= c.P99):
		return Pass, late + " but not the p99 objective: its late calls left in bunches, a harder load than asked, and it passed"
	case v == Pass:
		return GeneratorLimited, late + " and the p99 objective: the rate was not offered as asked"
	case c.P99 > 0 && o.P99 > c.P99+o.GenP99 && o.FailShare <= c.MaxFailShare && o.OKRate >= c.MinOKShare*t.Rate:
		// calls due over a stretch as long as the lateness left
		// together; a system that keeps up with the rate works such a
		// bunch off in about that stretch, so the bunching adds about
		// the lateness to a call, not more
		return Fail, why + ", beyond the objective by more than the generator's lateness p99 " + o.GenP99.Round(time.Microsecond).String() + " could add"
	}
	return GeneratorLimited, late + ": the failure (" + why + ") may be the generator's"
}

// judgeTransport applies the criteria on the transport's figures.
func judgeTransport(c Criteria, t Trial, o Outcome) (string, string) {
	switch {
	case o.FailShare > c.MaxFailShare:
		return Fail, fmt.Sprintf("failures %.3g%% > %.3g%%", 100*o.FailShare, 100*c.MaxFailShare)
	case o.OKRate < c.MinOKShare*t.Rate:
		return Fail, fmt.Sprintf("ok %.0f/s < %.0f%% of %.0f/s offered", o.OKRate, 100*c.MinOKShare, t.Rate)
	case c.P99 > 0 && o.P99 > c.P99:
		return Fail, fmt.Sprintf("p99 %v > objective %v", o.P99, c.P99)
	case c.MaxP50Growth > 0 && o.P50First > 0 && float64(o.P50Last) > c.MaxP50Growth*float64(o.P50First):
		return Fail, fmt.Sprintf("p50 grew from %v to %v within the trial (backlog)", o.P50First, o.P50Last)
	}
	return Pass, ""
}

// Config sets up a search.
type Config struct {
	Criteria Criteria
	// Start is the first rate (calls/s), e.g. half the closed-loop
	// plateau; Min and Max bound the range searched.
	Start, Min, Max float64
	// Step is the bracketing factor (1.25); Width the relative width the
	// bracket is bisected to (0.05).
	Step, Width float64
	// Confirmations full-length trials at the candidate, of which
	// NeedPasses must pass (3 and 2).
	Confirmations, NeedPasses int
	// Retries is how often a trial on a busy machine is repeated (2);
	// GenRetries how often a generator-limited one is (1).
	Retries, GenRetries int
	// MaxTrials bounds the whole search (40).
	MaxTrials int
}

// Defaults fills the zero fields of c.
func (c Config) Defaults() Config {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Step, 1.25)
	def(&c.Width, 0.05)
	if c.Confirmations == 0 {
		c.Confirmations, c.NeedPasses = 3, 2
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.GenRetries == 0 {
		c.GenRetries = 1
	}
	if c.MaxTrials == 0 {
		c.MaxTrials = 40
	}
	if c.Min == 0 {
		c.Min = c.Start / 64
	}
	if c.Max == 0 {
		c.Max = c.Start * 64
	}
	return c
}

// Result is what the search found.
type Result struct {
	// MaxSustainable is R*, the highest rate confirmed to pass; nil when
	// the search did not find it (Reason says why).
	MaxSustainable *float64 `json:"max_sustainable_rate"`
	Reason         string   `json:"reason,omitempty"`
	// AtLeast is a confirmed lower bound on R* when R* was not found
	// because the generator could not offer more (0: none).
	AtLeast float64 `json:"at_least,omitempty"`
	// Lo and Hi bracket R*: the highest rate seen to pass and the lowest
	// seen to fail above it, or that the generator could not keep to
	// (HiGenerator) (0: none).
	Lo          float64 `json:"bracket_lo"`
	Hi          float64 `json:"bracket_hi"`
	HiGenerator bool    `json:"bracket_hi_generator,omitempty"`
	// Failing is the criterion the trial at Hi failed.
	Failing string   `json:"failing_criterion,omitempty"`
	Trials  []Record `json:"trials"`
}

type phase int

const (
	up phase = iota
	down
	bisect
	confirm
	done
)

// Search is the search's state.
type Search struct {
	c       Config
	ph      phase
	next    Trial
	lo, hi  float64
	hiGen   bool // hi is a rate the generator could not keep to
	failing string
	failWhy string // the last failed confirmation's criterion
	// confirmed is the rate whose confirmation passed (0: none yet);
	// rejects counts candidates not confirmed.
	confirmed float64
	rejects   int
	genMisses int // confirmations of the candidate the generator spoiled
	retries   int
	judged    int // trials that passed or failed
	passes    int
	fails     int
	// allFull: a confirmation failed, so short trials flatter the system;
	// every trial from then on is full-length.
	allFull bool
	res     Result
}

// New starts a search.
func New(c Config) *Search {
	c = c.Defaults()
	return &Search{c: c, next: Trial{Rate: c.Start}}
}

// Next is the trial to run; false when the search is over.
func (s *Search) Next() (Trial, bool) {
	if s.ph == done {
		return Trial{}, false
	}
	if len(s.res.Trials) >= s.c.MaxTrials {
		s.finish(nil, fmt.Sprintf("the search used its %d trials before confirming a rate", s.c.MaxTrials))
		return Trial{}, false
	}
	return s.next, true
}

// Record takes the outcome of the trial Next returned.
func (s *Search) Record(o Outcome) {
	t := s.next
	v, why := Judge(s.c.Criteria, t, o)
	s.res.Trials = append(s.res.Trials, Record{Trial: t, Outcome: o, Verdict: v, Why: why})
	switch v {
	case Busy:
		if s.retries < s.c.Retries {
			s.retries++
			return // the same trial again
		}
		s.finish(nil, fmt.Sprintf("%s at %.0f calls/s, %d times: %s", v, t.Rate, s.retries+1, why))
		return
	case GeneratorLimited:
		// a near miss (late by no more than the objective) is repeated
		if s.retries < s.c.GenRetries && (s.c.Criteria.P99 == 0 || o.GenP99 <= s.c.Criteria.P99) {
			s.retries++
			return
		}
		s.retries = 0
		s.generatorCeiling(t.Rate, why)
		return
	}
	s.retries = 0
	s.judged++
	pass := v == Pass
	if pass {
		s.lo = max(s.lo, t.Rate)
	} else if s.ph != confirm && (s.hi == 0 || t.Rate < s.hi) {
		// a failed confirmation lowers hi only once it rejects the
		// candidate (below)
		s.hi, s.hiGen, s.failing = t.Rate, false, why
	}
	switch s.ph {
	case up:
		switch {
		case !pass && s.judged == 1:
			s.ph = down
			s.step(t.Rate / s.c.Step)
		case !pass:
			s.narrow()
		case t.Rate >= s.c.Max:
			s.finish(nil, fmt.Sprintf("every rate up to %.0f calls/s passed: R* is above the range searched", s.c.Max))
		default:
			s.step(min(max(t.Rate*s.c.Step, t.Rate+1), s.c.Max))
		}
	case down:
		switch {
		case pass:
			s.narrow()
		case t.Rate <= s.c.Min:
			s.finish(nil, fmt.Sprintf("every rate down to %.0f calls/s failed (%s): R* is below the range searched", s.c.Min, why))
		default:
			s.step(max(min(t.Rate/s.c.Step, t.Rate-1), s.c.Min))
		}
	case bisect:
		s.narrow()
	case confirm:
		if pass {
			s.passes++
		} else {
			s.fails++
			s.failWhy = why
		}
		switch {
		case s.passes >= s.c.NeedPasses:
			s.confirmed = t.Rate
			s.lo = max(s.lo, t.Rate)
			s.narrow() // ends, unless a rejection left a wide bracket
		case s.fails+s.genMisses > s.c.Confirmations-s.c.NeedPasses:
			s.reject(t.Rate, false, why)
		default:
			s.next = Trial{Rate: t.Rate, Full: true}
		}
	}
}

// reject takes a candidate that was not confirmed (gen: because the
// generator could not keep to it, with no failure of the transport's
// seen there). It becomes the bracket's upper end; short trials are not
// to be trusted any more, so the next candidate, a bracket's width lower
// (one more width at each further rejection), is confirmed directly with
// full-length trials, and a wide bracket left once one is confirmed is
// bisected with full-length trials too.
func (s *Search) reject(rate float64, gen bool, why string) {
	s.hi, s.hiGen, s.failing = rate, gen, why
	s.lo, s.confirmed, s.allFull = 0, 0, true
	// up, not to nearest: the bracket left is then no wider than asked
	next := math.Ceil(rate / math.Pow(1+s.c.Width, float64(s.rejects+1)))
	s.rejects++
	if rate <= s.c.Min || next >= rate {
		s.finish(nil, fmt.Sprintf("no rate down to %.0f calls/s was confirmed (%s): R* is below the range searched", rate, why))
		return
	}
	s.confirm(max(next, s.c.Min))
}

func (s *Search) confirm(rate float64) {
	s.ph = confirm
	s.passes, s.fails, s.genMisses = 0, 0, 0
	s.next = Trial{Rate: rate, Full: true}
}

// end reports the confirmed rate: R*, or, when the bracket's upper end is
// only where the generator could not keep up, a lower bound on it.
func (s *Search) end() {
	r := s.confirmed
	if s.hiGen {
		s.res.AtLeast = r
		s.finish(nil, fmt.Sprintf("the generator could not keep to %.0f calls/s on this machine (%s), and %.0f calls/s passed (confirmed): R* is at least %.0f calls/s, beyond what this machine can offer", s.hi, s.failing, r, r))
		return
	}
	s.finish(&r, "")
}

// generatorCeiling takes a rate the generator could not keep to, after its
// retries: no rate from there up can be tested on this machine, so it
// caps the bracket, and the search goes on below it.
func (s *Search) generatorCeiling(rate float64, why string) {
	if s.ph == confirm {
		// a confirmation the generator spoiled counts against the
		// candidate as a failure would, without saying the transport
		// failed: while NeedPasses can still be reached, go on
		s.genMisses++
		switch {
		case s.fails+s.genMisses <= s.c.Confirmations-s.c.NeedPasses:
			s.next = Trial{Rate: rate, Full: true}
		case s.fails > 0: // the transport failed here too: that decides
			s.reject(rate, false, s.failWhy)
		default:
			s.reject(rate, true, why)
		}
		return
	}
	if s.hi == 0 || rate < s.hi {
		s.hi, s.hiGen, s.failing = rate, true, why
	}
	if s.lo > 0 {
		s.narrow()
		return
	}
	if rate <= s.c.Min {
		s.finish(nil, fmt.Sprintf("the generator could not keep to the bottom of the range, %.0f calls/s (%s): no rate could be tested", rate, why))
		return
	}
	// down faster than after a failure: where the generator's ceiling
	// lies is not known, and bisection recovers the precision
	s.ph = down
	s.step(max(min(rate/(s.c.Step*s.c.Step), rate-1), s.c.Min))
}

// narrow bisects the bracket, or confirms its lower end once it is narrow
// enough.
func (s *Search) narrow() {
	if s.hi > 0 && s.lo > 0 && s.hi/s.lo-1 > s.c.Width {
		s.ph = bisect
		mid := math.Round(math.Sqrt(s.lo * s.hi))
		if mid > s.lo && mid < s.hi {
			s.next = Trial{Rate: mid, Full: s.allFull}
			return
		}
		// whole calls/s cannot split the bracket further
	}
	if s.lo == s.confirmed {
		s.end()
		return
	}
	s.confirm(s.lo)
}

func (s *Search) step(rate float64) {
	s.next = Trial{Rate: math.Round(rate), Full: s.allFull}
}

func (s *Search) finish(rate *float64, reason string) {
	s.ph = done
	s.res.MaxSustainable, s.res.Reason = rate, reason
}

// Stop ends the search from outside (a time budget ran out): R* not found,
// with reason; the bracket stays as seen.
func (s *Search) Stop(reason string) {
	if s.ph != done {
		s.finish(nil, reason)
	}
}

// Result is what the search found so far (final once Next says false).
func (s *Search) Result() Result {
	r := s.res
	r.Lo, r.Hi, r.HiGenerator, r.Failing = s.lo, s.hi, s.hiGen, s.failing
	if r.Trials == nil {
		r.Trials = []Record{}
	}
	return r
}
