package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/claims"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/report"
	"github.com/rpcbench/rpcbench/results"
	"github.com/rpcbench/rpcbench/scenarios"
	claimscen "github.com/rpcbench/rpcbench/scenarios/claims"
)

type claimsFlags struct {
	from      []string
	out       string
	only      string
	quick     bool
	settle    string
	brokers   []string
	responder string
	quiet     bool
}

func newClaimsCmd() *cobra.Command {
	var f claimsFlags
	c := &cobra.Command{
		Use:   "claims",
		Short: "Judge the articles' claims (C1-C11) from measurements: run the claims suite, or re-judge stored results",
		Long: `The claims rpcbench was started to test (scenarios/claims/README.md states
each: claim, source, assertion, tolerance, evidence). Without --from it runs
the suite's scenario of every claim (--only some), exactly as rpcbench run
would, then computes a verdict per claim: supported, refuted, mixed (which
drivers and loads go each way) or inconclusive (why). With --from it judges
stored results (result.json files, run directories, or a directory of them)
without running anything. Writes claims.json (schema:
internal/claims/schema.json) and claims.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runClaims(cmd.Context(), f, cmd.Flags().Changed("settle"), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := c.Flags()
	fl.StringSliceVar(&f.from, "from", nil, "judge stored results instead of running: result.json files or directories holding them, comma-separated or repeated")
	fl.StringVarP(&f.out, "out", "o", "", "where claims.json and claims.md go (default: with --from beside the first results given; else a new results/<stamp>-claims directory, with the runs in it)")
	fl.StringVar(&f.only, "only", "", "claims to judge, comma-separated (e.g. C1,C6; default all: "+strings.Join(claims.IDs(), ",")+")")
	fl.BoolVar(&f.quick, "quick", false, "shorter cells (0.5 s measured, 100 ms warm-up; still 3 repetitions, the scenarios' settling and broker warm-up; fault and burst cells keep their schedules, a fault cell ending 2 s after its last fault's calls have timed out)")
	fl.StringVar(&f.settle, "settle", "", "cap on each driver variant's settling before its first cell (e.g. 6s; 0s: none, steadiness is then not checked)")
	fl.StringArrayVar(&f.brokers, "broker", nil, "use a running broker: KIND=URL; repeatable (broker faults, C5, need brokers rpcbench starts)")
	fl.StringVar(&f.responder, "responder", responderProcess, "where each driver's responder runs: process or in-process (fault claims, C5 and C6, need process)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
	return c
}

// parseOnly checks --only: the claims' ids, in suite order.
func parseOnly(only string) ([]string, error) {
	if strings.TrimSpace(only) == "" {
		return claims.IDs(), nil
	}
	var ids []string
	for _, part := range strings.Split(only, ",") {
		c, ok := claims.Lookup(strings.TrimSpace(part))
		if !ok {
			return nil, usageErr("--only %q: unknown claim %q: want ids from %s, comma-separated", only, strings.TrimSpace(part), strings.Join(claims.IDs(), ","))
		}
		if !slices.Contains(ids, c.ID) {
			ids = append(ids, c.ID)
		}
	}
	var ordered []string
	for _, id := range claims.IDs() {
		if slices.Contains(ids, id) {
			ordered = append(ordered, id)
		}
	}
	return ordered, nil
}

func runClaims(ctx context.Context, f claimsFlags, settleGiven bool, stdout, stderr io.Writer) error {
	ids, err := parseOnly(f.only)
	if err != nil {
		return err
	}
	if len(f.from) > 0 {
		if f.quick || settleGiven || len(f.brokers) > 0 {
			return usageErr("--from judges stored results: --quick, --settle and --broker apply only when the suite runs; leave them out")
		}
		return claimsFrom(f, ids, stdout)
	}
	return claimsRun(ctx, f, ids, settleGiven, stdout, stderr)
}

// resultFiles expands --from: files as given, directories to every
// result.json in them or below (at most three levels).
func resultFiles(from []string) ([]string, error) {
	var files []string
	for _, p := range from {
		p = strings.TrimSpace(p)
		st, err := os.Stat(p)
		if err != nil {
			return nil, usageErr("--from %s: no such file or directory: give result.json files or run directories", p)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		root := filepath.Clean(p)
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && strings.Count(strings.TrimPrefix(path, root), string(filepath.Separator)) > 3 {
				return filepath.SkipDir
			}
			if !d.IsDir() && d.Name() == "result.json" {
				found = append(found, path)
			}
			return nil
		})
		if len(found) == 0 {
			return nil, usageErr("--from %s: no result.json in it or below: give result.json files or run directories", p)
		}
		files = append(files, found...)
	}
	return files, nil
}

func claimsFrom(f claimsFlags, ids []string, stdout io.Writer) error {
	files, err := resultFiles(f.from)
	if err != nil {
		return err
	}
	var runs []*results.Run
	for _, p := range files {
		run, err := readRun(p)
		if err != nil {
			return reportErr(err)
		}
		runs = append(runs, run)
	}
	out := f.out
	if out == "" {
		out = strings.TrimSpace(f.from[0])
		if st, err := os.Stat(out); err == nil && !st.IsDir() {
			out = filepath.Dir(out)
		}
	}
	// no summary.md: beside stored results it would replace the run's own
	return writeClaims(out, claims.Judge(runs, ids), nil, stdout)
}

// quickOverrides are --quick's: shorter cells through the run's own
// overrides (fault and burst scenarios keep their schedules; a fault cell
// ends sooner after its last fault).
func quickOverrides(sc *scenarios.Scenario, quick bool, settle string, settleGiven bool) scenarios.Overrides {
	o := scenarios.Overrides{Set: map[string]bool{}}
	if quick {
		// the broker warm-up stays: a cold JVM broker is several times
		// slower, and its cells would not settle
		if len(sc.Faults) > 0 && len(sc.Phases) == 0 {
			// a fault cell still runs until its last fault is undone and
			// the calls sent before that have timed out, and 2 s more to
			// see the recovery: what its claim is judged on
			var end time.Duration
			for _, f := range sc.Faults {
				end = max(end, time.Duration(f.At)+time.Duration(f.RestoreAfter))
			}
			if d := end + time.Duration(sc.Timeout) + 2*time.Second; sc.Calls == 0 && d < time.Duration(sc.Duration) {
				o.Duration, o.Set["duration"] = d.String(), true
			}
		}
		if len(sc.Faults) == 0 && len(sc.Phases) == 0 {
			o.Duration, o.Set["duration"] = "500ms", true
			o.Warmup, o.Set["warmup"] = "100ms", true
			// settle keeps the scenario's cap: settling takes three
			// windows that agree (0.5 s ones, as long as the cells), and
			// a unit that did not settle makes its cells unusable
		}
	}
	if settleGiven {
		o.Settle, o.Set["settle"] = settle, true
	}
	return o
}

// dedupe drops each claim's scenario whose every cell (cells[i], from
// runner.PlannedCells; empty for fault and burst scenarios, which are never
// dropped) another kept scenario measures the same way: the verdicts pool
// cells by workload key across all the runs, so the claim is judged from
// that scenario's cells, and measuring them twice only costs time. It
// returns the kept plans and claim ids, and a line per dropped one.
func dedupe(plans []runFlags, ids []string, cells [][]string) ([]runFlags, []string, []string) {
	dropped := make([]bool, len(plans))
	var notes []string
	for i := range plans {
		if len(cells[i]) == 0 {
			continue
		}
		for j := range plans {
			if j == i || dropped[j] || len(cells[j]) == 0 {
				continue
			}
			if all(cells[i], cells[j]) {
				dropped[i] = true
				notes = append(notes, fmt.Sprintf("%s: not run on its own: claim %s's scenario measures each of its cells the same way, and %s is judged from those", ids[i], ids[j], ids[i]))
				break
			}
		}
	}
	var keptPlans []runFlags
	var keptIDs []string
	for i := range plans {
		if !dropped[i] {
			keptPlans, keptIDs = append(keptPlans, plans[i]), append(keptIDs, ids[i])
		}
	}
	return keptPlans, keptIDs, notes
}

// all reports whether every string of sub is in set.
func all(sub, set []string) bool {
	have := make(map[string]bool, len(set))
	for _, s := range set {
		have[s] = true
	}
	for _, s := range sub {
		if !have[s] {
			return false
		}
	}
	return true
}

// brokerFaults reports whether a run's scenario stops, kills or pauses
// its brokers.
func brokerFaults(rf runFlags) bool {
	sc, err := rf.load()
	return err == nil && slices.ContainsFunc(sc.Faults, func(f scenarios.Fault) bool { return scenarios.BrokerFault(f.Action) })
}

// brokerFaultsLast moves the runs with broker faults (and their names in
// planned) after the others, keeping each group's order.
func brokerFaultsLast(plans []runFlags, planned []string) ([]runFlags, []string) {
	var p1, p2 []runFlags
	var n1, n2 []string
	for i, rf := range plans {
		if brokerFaults(rf) {
			p2, n2 = append(p2, rf), append(n2, planned[i])
		} else {
			p1, n1 = append(p1, rf), append(n1, planned[i])
		}
	}
	return append(p1, p2...), append(n1, n2...)
}

// runOf is the run of one of the suite's scenarios (sc, loaded by load)
// with the suite's flags.
func (f claimsFlags) runOf(sc *scenarios.Scenario, load func() (*scenarios.Scenario, error), settleGiven bool) runFlags {
	return runFlags{
		load:      load,
		over:      quickOverrides(sc, f.quick, f.settle, settleGiven),
		brokers:   f.brokers,
		responder: f.responder,
		quiet:     f.quiet,
	}
}

// claimsPlan prepares the scenario of each claim in ids that has one (a
// bad one is a usage error), less those dedupe drops: the runs to make,
// their claims, and a line per claim judged from another's scenario.
func claimsPlan(f claimsFlags, ids []string, settleGiven bool) ([]runFlags, []string, []string, error) {
	var plans []runFlags
	var planned []string
	var plannedCells [][]string
	for _, id := range ids {
		if !claimscen.Has(id) {
			continue // its measurement is not implemented: judged inconclusive
		}
		sc, err := claimscen.Load(id)
		if err != nil {
			return nil, nil, nil, usageErr("%s: %v", id, err)
		}
		rf := f.runOf(sc, func() (*scenarios.Scenario, error) { return claimscen.Load(id) }, settleGiven)
		psc, units, _, err := prepare(rf)
		if err != nil {
			if errors.Is(err, errUsage) {
				return nil, nil, nil, usageErr("claim %s (%s): %s", id, sc.Source, trimUsage(err))
			}
			return nil, nil, nil, err
		}
		plans = append(plans, rf)
		planned = append(planned, id)
		var cells []string
		if len(psc.Faults) == 0 && len(psc.Phases) == 0 {
			cells = runner.PlannedCells(psc, units)
		}
		plannedCells = append(plannedCells, cells)
	}
	plans, planned, covered := dedupe(plans, planned, plannedCells)
	// the latency claims again at an injected delay per hop
	if sc, err := claimscen.LoadHop(ids); err != nil {
		return nil, nil, nil, usageErr("hop delay scenario: %v", err)
	} else if sc != nil {
		var judged []string
		for _, id := range ids {
			if claimscen.HopClaims[id] != nil {
				judged = append(judged, id)
			}
		}
		rf := f.runOf(sc, func() (*scenarios.Scenario, error) { return claimscen.LoadHop(ids) }, settleGiven)
		if _, _, _, err := prepare(rf); err != nil {
			if errors.Is(err, errUsage) {
				return nil, nil, nil, usageErr("hop delay scenario (%s): %s", sc.Source, trimUsage(err))
			}
			return nil, nil, nil, err
		}
		plans = append(plans, rf)
		planned = append(planned, "hop-delay("+strings.Join(judged, ",")+")")
	}
	// C10's chains at an injected delay per hop
	if sc, err := claimscen.LoadHopChain(ids); err != nil {
		return nil, nil, nil, usageErr("hop delay chain scenario: %v", err)
	} else if sc != nil {
		rf := f.runOf(sc, func() (*scenarios.Scenario, error) { return claimscen.LoadHopChain(ids) }, settleGiven)
		if _, _, _, err := prepare(rf); err != nil {
			if errors.Is(err, errUsage) {
				return nil, nil, nil, usageErr("hop delay chain scenario (%s): %s", sc.Source, trimUsage(err))
			}
			return nil, nil, nil, err
		}
		plans = append(plans, rf)
		planned = append(planned, "hop-delay(C10)")
	}
	// the runs share their brokers; one whose faults stop or pause them
	// runs after every other, so that none meets a broker it restarted
	// (the suite had given it brokers of its own: 40-55 s more of a
	// quick suite's 15 minutes)
	plans, planned = brokerFaultsLast(plans, planned)
	return plans, planned, covered, nil
}

func claimsRun(ctx context.Context, f claimsFlags, ids []string, settleGiven bool, stdout, stderr io.Writer) error {
	out := f.out
	if out == "" {
		out = "results"
	}
	// every scenario is checked before anything runs or is written
	plans, planned, covered, err := claimsPlan(f, ids, settleGiven)
	if err != nil {
		return err
	}
	base, err := createRunDir(out, time.Now().UTC().Format("20060102T150405Z")+"-claims")
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rpcbench claims: %s: running %s, writing %s\n", strings.Join(ids, ","), strings.Join(planned, ","), base)
	for _, c := range covered {
		fmt.Fprintf(stderr, "rpcbench claims: %s\n", c)
	}
	// the runs share their brokers, started and warmed up once (a run
	// whose faults restart them runs last: claimsPlan)
	ext, err := broker.ParseExternal(f.brokers, brokerKinds())
	if err != nil {
		return usageErr("%v", err)
	}
	shared := broker.NewManager(ext, brokerStarters())
	shared.Keep()
	setForceCleanup(func(ctx context.Context) { shared.Close(ctx) })
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := shared.Close(cctx); err != nil {
			fmt.Fprintln(stderr, "rpcbench claims: stopping brokers:", err)
		}
		setForceCleanup(nil)
	}()
	var interrupted bool
	for i, rf := range plans {
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		rf.out, rf.shared = base, shared
		fmt.Fprintf(stderr, "\n== claim %s (%d of %d)\n", planned[i], i+1, len(plans))
		// each run's summary goes to stderr: stdout is the verdicts
		err := runRun(ctx, rf, stderr, stderr)
		if brokerFaults(rf) {
			shared.Cool() // restarted: a later run warms them again
		}
		if err != nil {
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			if errors.Is(err, errUsage) {
				return err
			}
			fmt.Fprintf(stderr, "rpcbench claims: %s: %v (judged from what was measured)\n", planned[i], err)
		}
	}
	var runs []*results.Run
	if files, err := resultFiles([]string{base}); err == nil {
		for _, p := range files {
			run, err := readRun(p)
			if err != nil {
				return fmt.Errorf("read back %s: %w", p, err)
			}
			runs = append(runs, run)
		}
	}
	if err := writeClaims(base, claims.Judge(runs, ids), runs, stdout); err != nil {
		return err
	}
	if interrupted {
		return fmt.Errorf("interrupted: verdicts from the partial results written to %s", base)
	}
	return nil
}

// writeClaims writes claims.json and claims.md to dir and, given the
// runs, summary.md (the verdicts at the top, then the runs' summary); it
// prints the verdicts.
func writeClaims(dir string, doc claims.Document, runs []*results.Run, stdout io.Writer) error {
	data, err := claims.Encode(doc)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	if err := claims.Markdown(&md, doc); err != nil {
		return err
	}
	summary := bytes.NewBuffer(slices.Clone(md.Bytes()))
	if len(runs) > 0 {
		summary.WriteString("\n")
		if err := report.Markdown(summary, runs); err != nil {
			return fmt.Errorf("render summary.md: %w", err)
		}
	}
	files := []struct {
		name string
		data []byte
	}{{"claims.json", data}, {"claims.md", md.Bytes()}}
	if len(runs) > 0 {
		var page bytes.Buffer
		if err := report.HTMLWithClaims(&page, runs, reportClaims(doc)); err != nil {
			return fmt.Errorf("render report.html: %w", err)
		}
		files = append(files, struct {
			name string
			data []byte
		}{"summary.md", summary.Bytes()}, struct {
			name string
			data []byte
		}{"report.html", page.Bytes()})
	}
	for _, f := range files {
		if err := results.WriteFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, c := range doc.Claims {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Verdict, oneLineShort(c.Reason, 160))
		for _, a := range c.AtDelay {
			moved := ""
			if a.Moved {
				moved = " (moved)"
			}
			fmt.Fprintf(tw, "\t%s\t%s\n", "at "+a.OneWayDelay+": "+string(a.Verdict)+moved, oneLineShort(a.Reason, 140))
		}
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\nclaims: %s\n", filepath.Join(dir, "claims.json"))
	return nil
}

func oneLineShort(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// reportClaims is what the report shows of each verdict: one line of
// evidence (the first decided comparison, or the reason when none was),
// every comparison for its chart, and the cells used.
func reportClaims(doc claims.Document) []report.Claim {
	var out []report.Claim
	for _, j := range doc.Claims {
		c := report.Claim{ID: j.ID, Verdict: string(j.Verdict), Claim: j.Claim, Reason: j.Reason, Evidence: oneLineShort(j.Reason, 200)}
		for _, a := range j.AtDelay {
			how := "as on loopback"
			if a.Moved {
				how = "moved from " + string(j.Verdict) + " on loopback"
			}
			c.AtDelay = append(c.AtDelay, fmt.Sprintf("%s one-way per hop: %s, %s (%s)", a.OneWayDelay, a.Verdict, how, oneLineShort(a.Reason, 160)))
		}
		seen := map[string]bool{}
		decided := false
		for _, cmp := range j.Evidence.Comparisons {
			pt := report.ClaimPoint{Label: cmp.What, Threshold: cmp.Threshold, Outcome: string(cmp.Outcome)}
			if cmp.Value != nil {
				pt.Value, pt.HasValue = *cmp.Value, true
			}
			if cmp.Low != nil && cmp.High != nil {
				pt.Low, pt.High, pt.HasCI = *cmp.Low, *cmp.High, true
			}
			c.Points = append(c.Points, pt)
			if !decided && cmp.Outcome != claims.Undecided && cmp.Value != nil {
				decided = true
				c.Evidence = oneLineShort(fmt.Sprintf("%s: %.3g against %.3g (%s)", cmp.What, *cmp.Value, cmp.Threshold, cmp.Outcome), 200)
			}
			for _, cell := range cmp.Cells {
				if !seen[cell.Key] {
					seen[cell.Key] = true
					c.Cells = append(c.Cells, cell.Key)
				}
			}
		}
		out = append(out, c)
	}
	return out
}
