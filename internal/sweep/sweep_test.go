package sweep

import (
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

// A trial the generator could not keep is retried, then the search ends
// without inventing a bound.
func TestGeneratorLimited(t *testing.T) {
	base := saturating(1e9)
	sys := func(tr Trial, n int) Outcome {
		if tr.Rate > 30000 {
			return Outcome{GeneratorLimited: true}
		}
		return base(tr, n)
	}
	r := run(t, Config{Criteria: crit, Start: 10000}, sys)
	if r.MaxSustainable != nil || !strings.Contains(r.Reason, "generator-limited") {
		t.Fatalf("got %v, %q", r.MaxSustainable, r.Reason)
	}
	if last := r.Trials[len(r.Trials)-1]; last.Verdict != GeneratorLimited {
		t.Fatalf("last trial %+v", last)
	}
	retries := 0
	for _, tr := range r.Trials {
		if tr.Verdict == GeneratorLimited {
			retries++
		}
	}
	if retries != 3 {
		t.Fatalf("%d generator-limited trials, want 3 (1 + 2 retries)", retries)
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
