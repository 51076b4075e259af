package sweep

import (
	"math"
	"strings"
	"testing"
	"time"
)

// system is a fake transport: what a trial at a rate gives.
type system func(t Trial, n int) Outcome

// saturating passes every rate up to capacity and fails above it, the way
// a real transport does: throughput levels off and latency climbs.
func saturating(capacity float64) system {
	return func(t Trial, _ int) Outcome {
		if t.Rate <= capacity {
			return Outcome{OKRate: t.Rate, P50: 100 * time.Microsecond, P99: time.Millisecond, P50First: 100 * time.Microsecond, P50Last: 110 * time.Microsecond}
		}
		return Outcome{OKRate: capacity, P50: 50 * time.Millisecond, P99: 200 * time.Millisecond, P50First: time.Millisecond, P50Last: 90 * time.Millisecond}
	}
}

func run(t *testing.T, c Config, sys system) Result {
	t.Helper()
	s := New(c)
	for n := 0; ; n++ {
		tr, ok := s.Next()
		if !ok {
			break
		}
		if n > 1000 {
			t.Fatal("the search does not end")
		}
		s.Record(sys(tr, n))
	}
	return s.Result()
}

var crit = DefaultCriteria(10 * time.Millisecond)

func TestSaturatesAtKnownRate(t *testing.T) {
	for _, capacity := range []float64{1234, 20000, 99000} {
		r := run(t, Config{Criteria: crit, Start: 5000}, saturating(capacity))
		if r.MaxSustainable == nil {
			t.Fatalf("capacity %v: not found: %s", capacity, r.Reason)
		}
		got := *r.MaxSustainable
		if got > capacity || got < capacity/1.06 {
			t.Errorf("capacity %v: R* = %v, want within 5%% below", capacity, got)
		}
		if r.Hi <= capacity || r.Hi <= *r.MaxSustainable || r.Hi/r.Lo-1 > 0.05+1e-9 {
			t.Errorf("capacity %v: bracket %v..%v", capacity, r.Lo, r.Hi)
		}
		if !strings.Contains(r.Failing, "p99") && !strings.Contains(r.Failing, "ok ") {
			t.Errorf("capacity %v: failing criterion %q", capacity, r.Failing)
		}
		full := 0
		for _, tr := range r.Trials {
			if tr.Full {
				full++
			}
		}
		if full < 2 {
			t.Errorf("capacity %v: %d full-length confirmations", capacity, full)
		}
	}
}

func TestNeverSaturates(t *testing.T) {
	r := run(t, Config{Criteria: crit, Start: 1000, Max: 50000}, saturating(1e12))
	if r.MaxSustainable != nil || !strings.Contains(r.Reason, "above the range") {
		t.Fatalf("got %v, %q: want not found, above the range", r.MaxSustainable, r.Reason)
	}
	if r.Lo != 50000 || r.Hi != 0 {
		t.Fatalf("bracket %v..%v", r.Lo, r.Hi)
	}
}

func TestFailsAtFirstStep(t *testing.T) {
	broken := func(t Trial, _ int) Outcome { return Outcome{OKRate: 0, FailShare: 1} }
	r := run(t, Config{Criteria: crit, Start: 1000, Min: 10}, broken)
	if r.MaxSustainable != nil || !strings.Contains(r.Reason, "below the range") || !strings.Contains(r.Failing, "failures") {
		t.Fatalf("got %v, %q, %q: want not found, below the range, failures", r.MaxSustainable, r.Reason, r.Failing)
	}
}

// The first trial fails; the search walks down, then brackets.
func TestStartAboveCapacity(t *testing.T) {
	r := run(t, Config{Criteria: crit, Start: 10000}, saturating(3000))
	if r.MaxSustainable == nil || *r.MaxSustainable > 3000 || *r.MaxSustainable < 3000/1.06 {
		t.Fatalf("R* = %v (%s)", r.MaxSustainable, r.Reason)
	}
}

// A noisy system fails one full-length trial in three even below its
// capacity: 2 of 3 confirmations still pass.
func TestNoisy(t *testing.T) {
	base := saturating(8000)
	full := 0
	noisy := func(tr Trial, n int) Outcome {
		if tr.Full {
			full++
			if full%3 == 1 {
				return Outcome{OKRate: tr.Rate, P99: time.Second}
			}
		}
		return base(tr, n)
	}
	r := run(t, Config{Criteria: crit, Start: 2000}, noisy)
	if r.MaxSustainable == nil || *r.MaxSustainable > 8000 || *r.MaxSustainable < 8000/1.06 {
		t.Fatalf("R* = %v (%s)", r.MaxSustainable, r.Reason)
	}
	// the failed confirmation did not become the bracket's upper end
	if r.Hi <= *r.MaxSustainable || strings.Contains(r.Failing, "1s") {
		t.Fatalf("bracket %v..%v failing %q: the failed confirmation was taken for the upper end", r.Lo, r.Hi, r.Failing)
	}
}

// Two failed confirmations lower the bracket and the search goes on.
func TestConfirmationFailsLowers(t *testing.T) {
	base := saturating(8000)
	// full-length trials fail above 6000: the short ones flatter the system
	sys := func(tr Trial, n int) Outcome {
		if tr.Full && tr.Rate > 6000 {
			return Outcome{OKRate: tr.Rate * 0.9}
		}
		return base(tr, n)
	}
	r := run(t, Config{Criteria: crit, Start: 2000}, sys)
	if r.MaxSustainable == nil || *r.MaxSustainable > 6000 {
		t.Fatalf("R* = %v (%s), want at most 6000", r.MaxSustainable, r.Reason)
	}
}

// generatorCapped wraps a system with a generator that cannot keep to
// rates above ceiling: beyond it the trial's own figures are those of a
// late generator (late by more than the objective, and short of the rate).
func generatorCapped(sys system, ceiling float64) system {
	return func(t Trial, n int) Outcome {
		if t.Rate > ceiling {
			o := sys(t, n)
			o.GenP99, o.OKRate = 50*time.Millisecond, math.Min(o.OKRate, ceiling)
			return o
		}
		return sys(t, n)
	}
}

// A generator that cannot offer the rates where the system would fail:
// the search steps under its ceiling and reports R* as not found, with the
// confirmed rate below the ceiling as a lower bound, never as R*.
func TestGeneratorCeilingBelowCapacity(t *testing.T) {
	for _, start := range []float64{10000, 100000} { // from below the ceiling, and from above it
		r := run(t, Config{Criteria: crit, Start: start}, generatorCapped(saturating(1e9), 30000))
		if r.MaxSustainable != nil {
			t.Fatalf("start %v: R* = %v: a bound beyond the generator was invented", start, *r.MaxSustainable)
		}
		if r.AtLeast > 30000 || r.AtLeast < 30000/1.06 || !strings.Contains(r.Reason, "generator") || !strings.Contains(r.Reason, "at least") {
			t.Fatalf("start %v: at least %v, %q: want within 5%% under the ceiling 30000, and why", start, r.AtLeast, r.Reason)
		}
		if !r.HiGenerator || r.Hi <= 30000 || r.Hi > 30000*1.06 {
			t.Fatalf("start %v: bracket %v..%v (generator %v)", start, r.Lo, r.Hi, r.HiGenerator)
		}
		limited, full := 0, 0
		for _, tr := range r.Trials {
			if tr.Verdict == GeneratorLimited {
				limited++
			}
			if tr.Full && tr.Verdict == Pass {
				full++
			}
		}
		if limited < 1 || full < 2 {
			t.Fatalf("start %v: %d generator-limited trials, %d confirmations passed", start, limited, full)
		}
	}
}

// A generator whose ceiling is above the system's capacity does not stop
// the search from finding R*, even when it starts above the ceiling.
func TestGeneratorCeilingAboveCapacity(t *testing.T) {
	for _, start := range []float64{2000, 100000} {
		r := run(t, Config{Criteria: crit, Start: start}, generatorCapped(saturating(8000), 30000))
		if r.MaxSustainable == nil || *r.MaxSustainable > 8000 || *r.MaxSustainable < 8000/1.06 || r.HiGenerator {
			t.Fatalf("start %v: R* = %v (%s), bracket %v..%v generator %v", start, r.MaxSustainable, r.Reason, r.Lo, r.Hi, r.HiGenerator)
		}
	}
}

// A generator that keeps to no rate at all: nothing is tested, and the
// search says so.
func TestGeneratorNeverKeepsUp(t *testing.T) {
	r := run(t, Config{Criteria: crit, Start: 1000, Min: 10}, generatorCapped(saturating(1e9), 1))
	if r.MaxSustainable != nil || r.AtLeast != 0 || !strings.Contains(r.Reason, "no rate could be tested") {
		t.Fatalf("got %v, at least %v, %q", r.MaxSustainable, r.AtLeast, r.Reason)
	}
	if last := r.Trials[len(r.Trials)-1]; last.Verdict != GeneratorLimited || last.Rate != 10 {
		t.Fatalf("last trial %+v", last)
	}
}

// A generator that missed its bound by less than the objective (a near
// miss) gets one more try at the rate; far off, it does not.
func TestGeneratorNearMissRetried(t *testing.T) {
	for _, tc := range []struct {
		late  time.Duration
		tries int
	}{{5 * time.Millisecond, 2}, {50 * time.Millisecond, 1}} {
		s := New(Config{Criteria: crit, Start: 1000})
		tries := 0
		for {
			tr, _ := s.Next()
			if tr.Rate != 1000 {
				break
			}
			tries++
			s.Record(Outcome{OKRate: 900, P99: 20 * time.Millisecond, GenP99: tc.late})
		}
		if tries != tc.tries {
			t.Errorf("late %v: %d trials at the rate, want %d", tc.late, tries, tc.tries)
		}
	}
}

// The confirmation fails when the full-length trials show the system
// cannot hold the short trials' rate: the search confirms a little lower
// with full-length trials, not starting over.
func TestRejectedConfirmationCost(t *testing.T) {
	base := saturating(8000)
	sys := func(tr Trial, n int) Outcome {
		if tr.Full && tr.Rate > 7700 {
			return Outcome{OKRate: tr.Rate * 0.9}
		}
		return base(tr, n)
	}
	r := run(t, Config{Criteria: crit, Start: 2000}, sys)
	if r.MaxSustainable == nil || *r.MaxSustainable > 7700 || *r.MaxSustainable < 7700/1.06 {
		t.Fatalf("R* = %v (%s)", r.MaxSustainable, r.Reason)
	}
	full := 0
	for _, tr := range r.Trials {
		if tr.Full {
			full++
		}
	}
	if full > 6 || r.Hi / *r.MaxSustainable - 1 > 0.05+1e-9 {
		t.Fatalf("%d full-length trials, bracket %v..%v", full, *r.MaxSustainable, r.Hi)
	}
}

// A generator that spoils one confirmation in three (a far-off spike, not
// repeated) does not cost the candidate: 2 of 3 still pass.
func TestGeneratorSpikeInConfirmation(t *testing.T) {
	base := saturating(8000)
	full := 0
	sys := func(tr Trial, n int) Outcome {
		if tr.Full {
			full++
			if full%3 == 1 {
				o := base(tr, n)
				o.GenP99 = 50 * time.Millisecond
				return o
			}
		}
		return base(tr, n)
	}
	r := run(t, Config{Criteria: crit, Start: 2000}, sys)
	if r.MaxSustainable == nil || *r.MaxSustainable > 8000 || *r.MaxSustainable < 8000/1.06 || r.HiGenerator {
		t.Fatalf("R* = %v (%s), bracket %v..%v generator %v", r.MaxSustainable, r.Reason, r.Lo, r.Hi, r.HiGenerator)
	}
}

// A busy machine's trial is repeated, then the search ends without
// inventing a bound.
func TestBusy(t *testing.T) {
	r := run(t, Config{Criteria: crit, Start: 1000}, func(Trial, int) Outcome { return Outcome{Busy: true} })
	if r.MaxSustainable != nil || !strings.Contains(r.Reason, "busy") || len(r.Trials) != 3 {
		t.Fatalf("got %v, %q after %d trials, want not found after 3", r.MaxSustainable, r.Reason, len(r.Trials))
	}
}

func TestJudge(t *testing.T) {
	tr := Trial{Rate: 1000}
	for _, tc := range []struct {
		o   Outcome
		v   string
		why string
	}{
		{Outcome{OKRate: 1000, P99: time.Millisecond}, Pass, ""},
		{Outcome{OKRate: 970, P99: time.Millisecond}, Fail, "ok 970/s < 98% of 1000/s"},
		{Outcome{OKRate: 1000, FailShare: 0.01}, Fail, "failures 1%"},
		{Outcome{OKRate: 1000, P99: 20 * time.Millisecond}, Fail, "p99 20ms > objective 10ms"},
		{Outcome{OKRate: 1000, P50First: time.Millisecond, P50Last: 2 * time.Millisecond}, Fail, "backlog"},
		{Outcome{Busy: true}, Busy, "busy"},
		// the generator late within its bound: judged either way
		{Outcome{OKRate: 1000, P99: time.Millisecond, GenP99: time.Millisecond}, Pass, ""},
		{Outcome{OKRate: 1000, P99: 20 * time.Millisecond, GenP99: time.Millisecond}, Fail, "p99 20ms"},
		// beyond its bound: a pass counts while within the objective...
		{Outcome{OKRate: 1000, P99: time.Millisecond, GenP99: 5 * time.Millisecond}, Pass, "harder load"},
		// ...not beyond it, and a failure says nothing
		{Outcome{OKRate: 1000, P99: time.Millisecond, GenP99: 15 * time.Millisecond}, GeneratorLimited, "not offered as asked"},
		{Outcome{OKRate: 1000, P99: 14 * time.Millisecond, GenP99: 5 * time.Millisecond}, GeneratorLimited, "may be the generator's"},
		// over the objective by more than the lateness could add
		{Outcome{OKRate: 1000, P99: 20 * time.Millisecond, GenP99: 5 * time.Millisecond}, Fail, "more than the generator's lateness"},
		// the ok rate short with a late generator: it may be the generator's
		{Outcome{OKRate: 900, P99: 20 * time.Millisecond, GenP99: 5 * time.Millisecond}, GeneratorLimited, "may be the generator's"},
	} {
		v, why := Judge(crit, tr, tc.o)
		if v != tc.v || !strings.Contains(why, tc.why) {
			t.Errorf("%+v: %s %q, want %s %q", tc.o, v, why, tc.v, tc.why)
		}
	}
}

// At very low rates whole calls/s cannot split the bracket: the search
// confirms instead of repeating one rate.
func TestLowRatesEnd(t *testing.T) {
	r := run(t, Config{Criteria: crit, Start: 1, Min: 1, Max: 64}, saturating(1.5))
	if r.MaxSustainable == nil || *r.MaxSustainable != 1 || len(r.Trials) > 10 {
		t.Fatalf("R* %v after %d trials (%s)", r.MaxSustainable, len(r.Trials), r.Reason)
	}
}
