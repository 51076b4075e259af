package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/env"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/results"
	"github.com/rpcbench/rpcbench/scenarios"
)

type runFlags struct {
	scenario       string
	over           scenarios.Overrides
	out            string
	target         string
	brokers        []string
	requireBrokers bool
	responder      string
	quiet          bool
	// sweep makes the run a saturation sweep (rpcbench sweep).
	sweep *runner.SweepConfig
	// load, when set, loads the scenario instead of scenario (rpcbench
	// claims: the suite's embedded scenarios).
	load func() (*scenarios.Scenario, error)
	// shared, when set, is the broker manager of a suite of runs (rpcbench
	// claims): the run takes its brokers from it and leaves them running.
	shared *broker.Manager
}

func newRunCmd() *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run",
		Short: "Run a scenario and write result.json, report.html and summary.md",
		Long: `Run a scenario (the embedded default when none is given) on every driver it
names that can run here, then write results/<UTC stamp>-<scenario>/result.json
with the reports beside it, and print a summary table.

Broker drivers get their broker from --broker KIND=URL when given, else start
one (NATS in a child rpcbench process; RabbitMQ and RocketMQ in containers when a
Docker engine answers). Drivers whose broker cannot be had are skipped with
the reason; --require-brokers makes that an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.over.Set = givenFlags(cmd)
			return runRun(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addRunFlags(c, &f)
	return c
}

// addRunFlags registers the flags run and sweep share.
func addRunFlags(c *cobra.Command, f *runFlags) {
	fl := c.Flags()
	fl.StringVarP(&f.scenario, "scenario", "s", scenarios.Default, "scenario file, or the name of an embedded scenario ("+strings.Join(scenarios.Embedded(), ", ")+")")
	fl.StringVar(&f.over.Drivers, "drivers", "", "drivers to run, overriding the scenario: NAME or NAME:VARIANT, comma-separated (e.g. tcp,grpc:unary)")
	fl.StringVar(&f.over.Duration, "duration", "", "measured time per cell (e.g. 10s)")
	fl.StringVar(&f.over.Warmup, "warmup", "", "unmeasured warm-up per cell (e.g. 1s)")
	fl.StringVar(&f.over.BrokerWarmup, "broker-warmup", "", "unmeasured load before the first cell on each JVM broker (RocketMQ), so that its JIT is warm (e.g. 10s; 0s: none)")
	fl.StringVar(&f.over.Concurrency, "concurrency", "", "closed loop: concurrent callers, comma-separated (e.g. 1,16,64)")
	fl.StringVar(&f.over.Rate, "rate", "", "open loop: calls per second, comma-separated (e.g. 1000,5000)")
	fl.StringVar(&f.over.Payload, "payload", "", "request payload sizes, comma-separated (e.g. 64,1KiB)")
	fl.StringVar(&f.over.ServiceTime, "service-time", "", "responder service time: 0, 250us (fixed) or exp:250us (exponential mean), comma-separated")
	fl.IntVar(&f.over.Repeat, "repeat", 0, "independent repetitions of every cell")
	fl.StringVar(&f.over.Timeout, "timeout", "", "per-call timeout (e.g. 5s)")
	fl.Int64Var(&f.over.Calls, "calls", 0, "end each cell after this many measured calls instead of after --duration")
	fl.IntVar(&f.over.ResponderConcurrency, "responder-concurrency", 0, "requests every driver's responder handles at once (default 64)")
	fl.StringVar(&f.over.Settle, "settle", "", "cap on each driver variant's unmeasured settling before its first cell, until three windows (as long as a cell, 0.5-1 s) agree within 10% (e.g. 15s; 0s: none)")
	fl.StringArrayVar(&f.over.Faults, "fault", nil, "make every cell a fault cell: ACTION@AT+RESTORE, repeatable (e.g. kill-responder@3s+1s; actions: "+strings.Join(scenarios.FaultActions, ", ")+"); needs --rate")
	fl.StringVarP(&f.out, "out", "o", "results", "directory the run's directory is created in")
	fl.StringVar(&f.target, "target", "", "address of a responder started with `rpcbench serve` (needs exactly one driver)")
	fl.StringArrayVar(&f.brokers, "broker", nil, "use a running broker: KIND=URL (e.g. rabbitmq=amqp://guest:guest@127.0.0.1:5672/); repeatable")
	fl.StringVar(&f.responder, "responder", responderProcess, "where each driver's responder runs: process (its own process, `rpcbench serve` as a child) or in-process (this process: quicker, shares its scheduler and GC)")
	fl.BoolVar(&f.requireBrokers, "require-brokers", false, "fail (exit 1) instead of skipping drivers whose broker cannot be had")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
}

// prepare loads and checks everything a run needs before anything is
// started or written: every error here is bad input.
func prepare(f runFlags) (*scenarios.Scenario, []runner.Unit, map[string]string, error) {
	if f.responder != responderProcess && f.responder != responderInProcess {
		return nil, nil, nil, usageErr("--responder %q: want %s or %s", f.responder, responderProcess, responderInProcess)
	}
	load := f.load
	if load == nil {
		load = func() (*scenarios.Scenario, error) { return scenarios.Load(f.scenario) }
	}
	sc, err := load()
	if err != nil {
		return nil, nil, nil, usageErr("%v", err)
	}
	if err := sc.Apply(f.over); err != nil {
		return nil, nil, nil, usageErr("%v", err)
	}
	units, err := runner.Resolve(registry(), sc)
	if err != nil {
		if f.over.Drivers != "" {
			var se *scenarios.Error
			if errors.As(err, &se) {
				return nil, nil, nil, usageErr("--drivers: %s", se.Msg)
			}
		}
		return nil, nil, nil, usageErr("%v", err)
	}
	if len(units) == 0 {
		return nil, nil, nil, usageErr("%s: no drivers to run", sc.Source)
	}
	if err := checkUnits(sc, units); err != nil {
		return nil, nil, nil, err
	}
	if f.target != "" {
		names := map[string]bool{}
		for _, u := range units {
			names[u.Driver.Spec().Name] = true
		}
		if len(names) != 1 {
			return nil, nil, nil, usageErr("--target: a remote responder serves one driver; add --drivers NAME (the driver `rpcbench serve` runs)")
		}
		if err := checkTarget(f.target, units); err != nil {
			return nil, nil, nil, err
		}
	}
	ext, err := broker.ParseExternal(f.brokers, brokerKinds())
	if err != nil {
		return nil, nil, nil, usageErr("%v", err)
	}
	if f.sweep != nil && sc.Network != nil {
		return nil, nil, nil, usageErr("%s: network: a sweep runs without the delay proxy; remove the network key (or sweep without it)", sc.Source)
	}
	if f.sweep != nil && sc.Chain != nil {
		return nil, nil, nil, usageErr("%s: chain: a sweep measures single calls; remove the chain key (or sweep without it)", sc.Source)
	}
	if err := runner.Check(context.Background(), sc, units); err != nil {
		return nil, nil, nil, usageErr("%v", err)
	}
	if err := checkFaults(f, sc, units, ext); err != nil {
		return nil, nil, nil, err
	}
	return sc, units, ext, nil
}

func runRun(ctx context.Context, f runFlags, stdout, stderr io.Writer) (err error) {
	// no broker credential in anything the run writes or prints
	red := newRedactor(f.brokers...)
	stdout, stderr = red.writer(stdout), red.writer(stderr)
	defer func() { err = red.err(err) }()
	sc, units, ext, err := prepare(f)
	if err != nil {
		return err
	}
	// Brokers left running by `rpcbench brokers up` serve this run too,
	// unless --broker names another.
	if up, err := upBrokerURLs(ctx, f.out); err == nil {
		for kind, url := range up {
			if _, given := ext[kind]; !given {
				ext[kind] = url
			}
		}
	}
	red.add(slices.Collect(maps.Values(ext))...)
	started := time.Now()
	dir, err := createRunDir(f.out, sc.RunID(started))
	if err != nil {
		return err
	}

	var libs []string
	for _, u := range units {
		libs = append(libs, u.Driver.Spec().Libraries...)
	}
	slices.Sort(libs)
	run := &results.Run{
		SchemaVersion: results.SchemaVersion,
		ID:            filepath.Base(dir),
		StartedAt:     started.UTC(),
		Environment:   env.Collect(slices.Compact(libs)),
		Scenario:      scenarioRecord(sc),
		Cells:         []results.Cell{},
		Skipped:       []results.Skip{},
		Responder:     responderWhere(f),
	}

	mgr := f.shared
	if mgr == nil {
		mgr = broker.NewManager(ext, brokerStarters())
		pop := pushForceCleanup(func(ctx context.Context) { mgr.Close(ctx) })
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := mgr.Close(cctx); err != nil {
				fmt.Fprintln(stderr, "rpcbench: stopping brokers:", err)
			}
			pop()
		}()
	}

	obs := newProgress(stderr, f.quiet)
	obs.optioned = runner.Optioned(units)
	fmt.Fprintf(stderr, "rpcbench %s: scenario %s, %d cells, writing %s\n", env.Version, sc.Name, cellCount(sc, units, f.sweep), dir)
	out, runErr := runner.Run(ctx, runner.Plan{
		Scenario:       sc,
		Units:          units,
		Brokers:        mgr,
		Target:         f.target,
		Dir:            dir,
		RequireBrokers: f.requireBrokers,
		Serve:          serveFunc(f),
		Sweep:          f.sweep,
		Observer:       obs,
	})
	obs.finish()
	assemble(run, out)

	run.FinishedAt = time.Now().UTC()
	run.Complete = runErr == nil || errors.Is(runErr, runner.ErrCellsFailed)
	if ctx.Err() != nil {
		run.Complete = false
		run.Incomplete = "interrupted"
	} else if !run.Complete {
		run.Incomplete = runErr.Error()
	}
	red.run(run)
	if err := writeOutputs(dir, run); err != nil {
		return err
	}
	printSummary(stdout, run)
	printSaturation(stdout, run)
	fmt.Fprintf(stdout, "\nresults: %s\n", filepath.Join(dir, "result.json"))
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: partial results written to %s", dir)
	case runErr != nil:
		return runErr
	}
	if dead := allFailed(run); len(dead) > 0 {
		return fmt.Errorf("every call failed in %d cell(s): %s (results in %s)", len(dead), strings.Join(dead, "; "), dir)
	}
	return nil
}

// allFailed names the cells that ran and in which no call succeeded.
func allFailed(run *results.Run) []string {
	var out []string
	for _, c := range run.Cells {
		if c.Error == "" && c.Counts.Scheduled > 0 && c.Counts.OK == 0 {
			why := ""
			if len(c.Errors) > 0 {
				why = ": " + c.Errors[0].Message
			}
			out = append(out, fmt.Sprintf("%s/%s %s%s", c.Driver, c.Variant, loadLabel(c), why))
		}
	}
	return out
}

func cellCount(sc *scenarios.Scenario, units []runner.Unit, sw *runner.SweepConfig) int {
	if sw != nil {
		return len(units) * len(sw.Ladder)
	}
	loads := len(sc.Concurrency)
	if sc.OpenLoop() {
		loads = len(sc.Rates)
	}
	return len(units) * len(sc.ServiceTimes) * len(sc.Payloads) * loads * sc.Repeat
}

// writeOutputs writes result.json and the reports beside it.
func writeOutputs(dir string, run *results.Run) error {
	if err := results.Write(filepath.Join(dir, "result.json"), run); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return writeReports(dir, run)
}

// printSummary prints one line per cell.
func printSummary(w io.Writer, run *results.Run) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "driver\tvariant\tpayload\tload\tp50\tp99\tp99.9\tcalls/s\terrors\t")
	// options are shown where one driver and variant ran with several
	ids := make([]results.UnitID, len(run.Cells))
	for i, c := range run.Cells {
		ids[i] = results.UnitID{Driver: c.Driver, Variant: c.Variant, Options: c.Options}
	}
	optioned := results.Optioned(ids)
	var notes []string
	for i, c := range run.Cells {
		variant := ids[i].VariantLabel(optioned)
		errs := fmt.Sprint(c.Counts.Failed() + c.Counts.Overflow)
		if n := c.Counts.Failed() + c.Counts.Overflow; n > 0 {
			errs = fmt.Sprintf("%d (%.2f%%)", n, 100*c.ErrorRate)
		}
		if c.Error != "" {
			errs = "failed: " + c.Error
		}
		if c.GeneratorLimited() {
			errs += " gen-limited"
		}
		if c.Unsettled {
			errs += " unsettled"
		}
		label := fmt.Sprintf("%s/%s %s", c.Driver, variant, loadLabel(c))
		for _, e := range c.Errors {
			notes = append(notes, fmt.Sprintf("%s: %d× %s", label, e.Count, e.Message))
		}
		for _, w := range c.Warnings {
			notes = append(notes, label+": "+w)
		}
		fmt.Fprintf(tw, "%s\t%s\t%dB\t%s\t%s\t%s\t%s\t%.0f\t%s\t\n", c.Driver, variant, c.Payload, loadLabel(c),
			fmtUS(c.Latency.P50), fmtUS(c.Latency.P99), fmtUS(c.Latency.P999), c.Throughput, errs)
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	for _, s := range run.Skipped {
		v := s.Driver
		if s.Variant != "" {
			v += "/" + s.Variant
		}
		fmt.Fprintf(w, "%s: %s\n", v, skipReason(s.Reason))
	}
}

func loadLabel(c results.Cell) string {
	l := fmt.Sprintf("c=%d", c.Concurrency)
	if c.Mode == "open" {
		l = fmt.Sprintf("%g/s", c.Rate)
	}
	if c.ServiceTime != "0" && c.ServiceTime != "" {
		l += " st=" + c.ServiceTime
	}
	if c.Hop != nil {
		l += " hop=" + c.Hop.OneWayDelay
	}
	if c.Chain != nil {
		l += fmt.Sprintf(" chain=%d/%s", c.Chain.Depth, c.Chain.Mode)
	}
	if c.Repetition > 1 {
		l += fmt.Sprintf(" #%d", c.Repetition)
	}
	return l
}

// fmtUS formats microseconds for people.
func fmtUS(us float64) string {
	switch {
	case us == 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%.1fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

func versionString() string { return env.Version + " (" + env.Commit + ")" }

// driverNames lists the registered drivers, for messages.
func driverNames() []string { return registry().Names() }

// skipReason words a skip reason so that it says "skipped" once.
func skipReason(r string) string {
	if strings.HasPrefix(r, "skipped") {
		return r
	}
	return "skipped: " + r
}

// checkFaults refuses faults the run cannot do: broker faults on an
// external broker, responder faults on an in-process or remote responder,
// faults in a sweep or through the delay proxy.
func checkFaults(f runFlags, sc *scenarios.Scenario, units []runner.Unit, ext map[string]string) error {
	if len(sc.Faults) == 0 {
		return nil
	}
	if f.sweep != nil {
		return usageErr("%s: faults: a sweep runs without faults; remove the faults key (or --fault)", sc.Source)
	}
	if sc.Network != nil {
		return usageErr("%s: faults: fault cells run without the delay proxy; remove the network key", sc.Source)
	}
	for _, flt := range sc.Faults {
		if !scenarios.BrokerFault(flt.Action) {
			continue
		}
		for _, u := range units {
			if spec := u.Driver.Spec(); spec.Kind == drivers.Broker && ext[spec.Broker] != "" {
				return usageErr("%s: fault %s: the %s broker is external (--broker): only responder faults apply to it (kill-responder, stop-responder)", sc.Source, flt, spec.Broker)
			}
		}
	}
	plan := runner.Plan{Scenario: sc, Units: units, Target: f.target, Serve: serveFunc(f)}
	if err := runner.CheckFaults(plan); err != nil {
		return usageErr("%s: %v", sc.Source, err)
	}
	return nil
}
