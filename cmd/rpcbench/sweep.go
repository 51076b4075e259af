package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/results"
)

type sweepFlags struct {
	ladder string
	step   string
	full   string
	slo    string
	mif    int
	budget string
}

func newSweepCmd() *cobra.Command {
	var f runFlags
	var sf sweepFlags
	c := &cobra.Command{
		Use:   "sweep",
		Short: "Find where each driver saturates: a closed-loop ladder, then the highest sustainable open-loop rate",
		Long: `For every driver variant of the scenario: a closed-loop concurrency ladder
(1, 2, 4 ... 256 callers, ending once throughput stops growing, from 16 on) gives the
throughput plateau X_sat; then open-loop trials search for R*, the highest
rate sustained under stated criteria: ok calls at least 98% of the offered
rate, at most 0.1% failures, p99 within the objective (--slo; by default
min(10ms, max(1ms, 10 x the p50 at one caller))), and no backlog growing
within the trial (p50 of the last second at most 1.5 x the first). Trials
start at X_sat/2, go up in x1.25 steps until one fails, are bisected to 5%,
and the candidate must pass 2 of 3 full-length trials (a candidate that
fails is replaced by one 5% lower, confirmed directly). The generator's
lateness p99 decides how a trial counts: within max(200µs, objective/10)
it is judged either way; beyond that, a pass within the objective still
passes (a burstier load than asked), a p99 over the objective by more
than the lateness still fails, and anything else says nothing
(generator-limited). A rate the generator cannot keep to caps the search:
if every rate below it passes, R* is reported as not found, with the
confirmed rate as a lower bound ("at least"), never invented.

The scenario's first payload, service time, timeout and responder
concurrency apply; its concurrency and rate lists do not. Every trial is
kept in result.json (saturation), the ladder's cells are the run's cells.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.over.Set = givenFlags(cmd)
			for _, name := range []string{"concurrency", "rate", "duration", "calls", "repeat", "target"} {
				if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
					return usageErr("sweep: --%s does not apply: the ladder (--ladder), the trials' rates and lengths (--step, --full) are the sweep's own", name)
				}
			}
			sw, err := sf.config()
			if err != nil {
				return err
			}
			f.sweep = sw
			return runRun(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addRunFlags(c, &f)
	fl := c.Flags()
	fl.StringVar(&sf.ladder, "ladder", "1,2,4,8,16,32,64,128,256", "closed-loop concurrencies, comma-separated, ascending")
	fl.StringVar(&sf.step, "step", "2s", "measured time of each ladder cell and each short trial")
	fl.StringVar(&sf.full, "full", "5s", "measured time of each confirmation trial")
	fl.StringVar(&sf.slo, "slo", "0s", "p99 objective of the trials (0s: derived from the p50 at one caller)")
	fl.IntVar(&sf.mif, "max-in-flight", 1024, "cap on calls in flight during the open-loop trials")
	fl.StringVar(&sf.budget, "budget", "2m45s", "time bound on each driver variant's ladder and trials: no trial starts that would end past it, and R* is then not found (0s: none)")
	return c
}

func (sf sweepFlags) config() (*runner.SweepConfig, error) {
	sw := &runner.SweepConfig{MaxInFlight: sf.mif}
	prev := 0
	for _, part := range strings.Split(sf.ladder, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 4096 || n <= prev {
			return nil, usageErr("--ladder %q: want ascending whole numbers from 1 to 4096, comma-separated", sf.ladder)
		}
		sw.Ladder = append(sw.Ladder, n)
		prev = n
	}
	for _, d := range []struct {
		name, v string
		to      *time.Duration
		min     time.Duration
	}{{"--step", sf.step, &sw.Step, 500 * time.Millisecond}, {"--full", sf.full, &sw.Full, 500 * time.Millisecond}, {"--slo", sf.slo, &sw.SLO, 0}, {"--budget", sf.budget, &sw.Budget, 0}} {
		v, err := time.ParseDuration(d.v)
		if err != nil || v < d.min || v > time.Hour {
			return nil, usageErr("%s %q: want a duration from %v to 1h (e.g. 2s)", d.name, d.v, d.min)
		}
		*d.to = v
	}
	if sf.mif < 1 || sf.mif > 100_000 {
		return nil, usageErr("--max-in-flight %d: want 1 to 100000", sf.mif)
	}
	return sw, nil
}

// printSaturation prints what a sweep found.
func printSaturation(w io.Writer, run *results.Run) {
	for _, s := range run.Saturation {
		rstar := "not found: " + s.Reason
		if s.AtLeast > 0 {
			rstar = fmt.Sprintf("at least %.0f calls/s, not found above: %s", s.AtLeast, s.Reason)
		}
		if s.MaxSustainableRate != nil {
			rstar = fmt.Sprintf("%.0f calls/s (next failing %.0f: %s)", *s.MaxSustainableRate, s.BracketHi, s.FailingCriterion)
			if s.BracketHi == 0 {
				rstar = fmt.Sprintf("%.0f calls/s", *s.MaxSustainableRate)
			}
		}
		fmt.Fprintf(w, "%s/%s: X_sat %.0f calls/s at %d callers; R* %s; %d trials, p99 objective %.0fµs\n",
			s.Driver, s.Variant, s.XSat, s.XSatConcurrency, rstar, len(s.Trials), s.Criteria.P99US)
	}
}
