package runner

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rpcbench/rpcbench/internal/sweep"
	"github.com/rpcbench/rpcbench/results"
)

// SweepConfig turns a run into a saturation sweep: per unit, a closed-loop
// concurrency ladder, then open-loop trials searching for the highest rate
// the unit sustains (internal/sweep).
type SweepConfig struct {
	// Ladder is the closed-loop concurrencies, in order (default 1, 2, 4 ...
	// 256); the ladder stops early once throughput stops growing.
	Ladder []int
	// Step is each ladder cell's and each short trial's measured duration;
	// Full is a confirmation trial's.
	Step, Full time.Duration
	// SLO is the p99 objective; 0 derives it from the unloaded p50
	// (min(10 ms, max(1 ms, 10 x p50 at concurrency 1))).
	SLO time.Duration
	// MaxInFlight caps the open-loop trials' calls in flight.
	MaxInFlight int
	// Budget bounds a unit's sweep, ladder and trials (0: none): no trial
	// starts that would end past it, and R* is then not found.
	Budget time.Duration
}

// DefaultLadder is the closed-loop concurrency ladder of a sweep.
var DefaultLadder = []int{1, 2, 4, 8, 16, 32, 64, 128, 256}

func (sc *SweepConfig) ladder() []int {
	if len(sc.Ladder) == 0 {
		return DefaultLadder
	}
	return sc.Ladder
}

// plateauGain: a ladder step that adds less than this share of throughput
// over the best so far, twice in a row, ends the ladder.
const plateauGain = 0.05

// minPlateauConcurrency: the ladder runs at least up to this many callers
// before a plateau ends it. Below it one noisy cell can look like one:
// tcp at 1, 2 and 4 callers measured 76,000, 54,000 and 78,000 calls/s
// in one sweep, and the ladder stopped at 4 callers with X_sat 78,000;
// at 256 callers it reaches 560,000-660,000.
const minPlateauConcurrency = 16

// sweepUnit runs the sweep of one unit against its responder at addr:
// the ladder's cells go into run.Cells, the search into run.Saturation.
// It reports whether some ladder cell could not run; the error is ctx's.
func sweepUnit(ctx context.Context, p Plan, u Unit, addr, brokerName string, settled bool, run *Outcome, index *int, total int, ms []meter, notes []string) (bool, error) {
	sc := p.Sweep
	began := time.Now()
	spec, cfg := u.Driver.Spec(), u.Config()
	name := spec.Name + "/" + cfg.Variant
	ladder := sc.ladder()
	sat := results.Saturation{Driver: spec.Name, Variant: cfg.Variant, Options: cfg.Options, Trials: []results.SweepTrial{},
		Settings: results.SweepSettings{Ladder: ladder, StepSeconds: sc.Step.Seconds(), FullSeconds: sc.Full.Seconds(), MaxInFlight: sc.MaxInFlight, BudgetSeconds: sc.Budget.Seconds()}}
	base := cellPlans(p.Scenario, u)[0]
	var p50c1 float64
	flat, failed, ran := 0, false, 0
	for i, conc := range ladder {
		ran++
		c := base.cell
		load := base.load
		c.Mode, c.Rate, c.Concurrency = "closed", 0, conc
		load.Rate, load.Concurrency, load.Calls = 0, conc, 0
		load.Duration = sc.Step
		c.Key = cellKey(&c)
		load.Seed = seed(c.Key, 1)
		c.Broker, c.Unsettled = brokerName, !settled
		*index++
		p.Observer.CellStart(*index, total, &c, load)
		if _, err := runCell(ctx, u, addr, load, &c, p.Observer, ms, notes, nil, nil); err != nil {
			c.Error = err.Error()
			failed = true
		}
		if p.Target != "" {
			c.QueueDelay = nil // the responder's clock is another host's
		}
		run.Cells = append(run.Cells, c)
		p.Observer.CellDone(&c)
		if ctx.Err() != nil {
			return failed, ctx.Err()
		}
		if c.Error != "" || c.ErrorRate > 0.001 {
			break
		}
		if i == 0 {
			p50c1 = c.Latency.P50
		}
		if c.Throughput > sat.XSat*(1+plateauGain) {
			flat = 0
		} else {
			flat++
		}
		if c.Throughput > sat.XSat {
			sat.XSat, sat.XSatConcurrency = math.Round(c.Throughput), conc
		}
		if flat >= 2 && conc >= minPlateauConcurrency {
			break
		}
	}
	*index += len(ladder) - ran
	if sat.XSat == 0 {
		sat.Reason = "the closed-loop ladder measured no throughput: no search"
		run.Saturation = append(run.Saturation, sat)
		return failed, nil
	}
	slo, why := sc.SLO, "given"
	if slo == 0 {
		slo = min(10*time.Millisecond, max(time.Millisecond, time.Duration(10*p50c1*1e3)))
		why = fmt.Sprintf("min(10ms, max(1ms, 10 x p50 at concurrency 1 = %.1fµs))", p50c1)
	}
	crit := sweep.DefaultCriteria(slo)
	sat.Criteria = results.SweepCriteria{MinOKShare: crit.MinOKShare, MaxFailShare: crit.MaxFailShare, P99US: float64(slo) / 1e3, MaxP50Growth: crit.MaxP50Growth, GeneratorBoundUS: float64(crit.GenBound) / 1e3, P99Why: why}
	// the machine counts as busy only when every process of the unit is
	// metered: else the unmetered one's CPU would look like another's
	quiet := true
	for _, n := range notes {
		if strings.Contains(n, "not measured") {
			quiet = false
			p.Observer.Note(fmt.Sprintf("%s: %s, so trials are not checked for a busy machine", name, n))
		}
	}
	s := sweep.New(sweep.Config{Criteria: crit, Start: math.Round(sat.XSat / 2), Min: math.Max(1, sat.XSat/100), Max: 4 * sat.XSat})
	p.Observer.Note(fmt.Sprintf("%s: closed-loop plateau %.0f calls/s at %d callers; searching the highest sustainable rate (p99 objective %v)", name, sat.XSat, sat.XSatConcurrency, slo))
	for {
		tr, ok := s.Next()
		if !ok {
			break
		}
		load := base.load
		load.Rate, load.Concurrency, load.Calls = tr.Rate, sc.MaxInFlight, 0
		load.Duration = sc.Step
		if tr.Full {
			load.Duration = sc.Full
		}
		// a trial takes its warm-up and window, and about a second to
		// connect and drain
		if sc.Budget > 0 && time.Since(began)+load.Warmup+load.Duration+time.Second > sc.Budget {
			res := s.Result()
			s.Stop(fmt.Sprintf("the sweep's time budget (%v, --budget) ran out before a rate was confirmed, after %d trials (highest rate passed %.0f calls/s, lowest failed %.0f)", sc.Budget, len(res.Trials), res.Lo, res.Hi))
			continue
		}
		load.Seed = seed(fmt.Sprintf("%s rate=%g", base.cell.Key, tr.Rate), len(sat.Trials)+1)
		client, err := dial(ctx, u, addr)
		if err != nil {
			if ctx.Err() != nil {
				return failed, ctx.Err()
			}
			sat.Reason = "connect caller: " + err.Error()
			break
		}
		before, cpuErr := sampleCPU(ctx, ms)
		m, err := RunCell(ctx, client, load, nil)
		after, cpuErr2 := sampleCPU(ctx, ms)
		closeBounded(client, 5*time.Second)
		if ctx.Err() != nil {
			return failed, ctx.Err()
		}
		if err != nil {
			sat.Reason = "trial: " + err.Error()
			break
		}
		o := trialOutcome(m)
		var ml machineLoad
		if cpuErr == nil && cpuErr2 == nil && quiet {
			ml, _ = loadOf(before, after)
			o.Busy = ml.busy()
		}
		s.Record(o)
		rec := s.Result().Trials[len(s.Result().Trials)-1]
		rt := trialRecord(rec, m.Seconds)
		rt.OtherCPUCores, rt.StealCores = ml.other, ml.steal
		sat.Trials = append(sat.Trials, rt)
		p.Observer.Note(fmt.Sprintf("%s: %.0f calls/s offered%s: %s %s", name, tr.Rate, map[bool]string{true: " (full length)"}[tr.Full], rec.Verdict, rec.Why))
	}
	res := s.Result()
	sat.MaxSustainableRate = res.MaxSustainable
	if sat.Reason == "" {
		sat.Reason = res.Reason
	}
	sat.AtLeast = res.AtLeast
	sat.BracketLo, sat.BracketHi, sat.BracketHiGenerator, sat.FailingCriterion = res.Lo, res.Hi, res.HiGenerator, res.Failing
	run.Saturation = append(run.Saturation, sat)
	return failed, nil
}

// trialOutcome is what the search needs of a trial's measurement.
func trialOutcome(m *Measurement) sweep.Outcome {
	o := sweep.Outcome{GeneratorLimited: m.GeneratorLimited, GeneratorReason: m.GeneratorReason}
	if m.Lateness != nil && m.Lateness.TotalCount() > 0 {
		o.GenP99 = time.Duration(m.Lateness.ValueAtQuantile(99))
	}
	if m.Seconds > 0 {
		o.OKRate = float64(m.Counts.OK) / m.Seconds
	}
	if m.Counts.Started > 0 {
		o.FailShare = float64(m.Counts.Failed()+m.Counts.Overflow) / float64(m.Counts.Started)
	}
	if m.Corrected.TotalCount() > 0 {
		o.P50 = time.Duration(m.Corrected.ValueAtQuantile(50))
		o.P99 = time.Duration(m.Corrected.ValueAtQuantile(99))
		o.P999 = time.Duration(m.Corrected.ValueAtQuantile(99.9))
	}
	// first and last full seconds: a backlog growing within the trial
	if pts := m.Series; len(pts) >= 2 {
		o.P50First = time.Duration(pts[0].P50 * 1e3)
		o.P50Last = time.Duration(pts[len(pts)-1].P50 * 1e3)
	}
	return o
}

func trialRecord(r sweep.Record, secs float64) results.SweepTrial {
	us := func(d time.Duration) float64 { return math.Round(float64(d)/10) / 100 }
	return results.SweepTrial{
		Rate: r.Rate, Full: r.Full, Seconds: math.Round(secs*100) / 100,
		OKRate: math.Round(r.OKRate), FailShare: r.FailShare,
		P50: us(r.P50), P99: us(r.P99), P999: us(r.P999), P50First: us(r.P50First), P50Last: us(r.P50Last),
		GeneratorLimited: r.GeneratorLimited, GeneratorLatenessP99: us(r.GenP99), Verdict: r.Verdict, Why: r.Why,
	}
}
