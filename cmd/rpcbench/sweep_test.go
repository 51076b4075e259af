package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// TestSweep: a sweep of tcp writes the ladder's cells and a saturation
// record whose every trial is kept, with either a confirmed R* inside its
// bracket or the reason it was not found.
func TestSweep(t *testing.T) {
	out := t.TempDir()
	r := runBin(t, "sweep", "--drivers", "tcp", "--ladder", "1,2", "--step", "500ms", "--full", "500ms", "--settle", "0s", "--warmup", "100ms", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	if len(run.Cells) != 2 || run.Cells[0].Concurrency != 1 || run.Cells[1].Concurrency != 2 {
		t.Fatalf("ladder cells: %+v", run.Cells)
	}
	if len(run.Saturation) != 1 {
		t.Fatalf("saturation: %+v", run.Saturation)
	}
	s := run.Saturation[0]
	if s.XSat <= 0 || s.XSatConcurrency < 1 || len(s.Trials) == 0 || s.Criteria.P99US <= 0 {
		t.Fatalf("saturation %+v", s)
	}
	if s.Trials[0].Rate != float64(int(s.XSat/2+0.5)) {
		t.Errorf("first trial at %v, want X_sat/2 = %v", s.Trials[0].Rate, s.XSat/2)
	}
	if s.MaxSustainableRate == nil {
		if s.Reason == "" {
			t.Fatal("no R* and no reason")
		}
	} else if *s.MaxSustainableRate != s.BracketLo || (s.BracketHi != 0 && s.BracketHi <= s.BracketLo) {
		t.Fatalf("R* %v outside bracket %v..%v", *s.MaxSustainableRate, s.BracketLo, s.BracketHi)
	}
	for _, tr := range s.Trials {
		if tr.Verdict == "" || (tr.Verdict != "pass" && tr.Why == "") {
			t.Fatalf("trial without verdict or reason: %+v", tr)
		}
	}
}

// TestSweepBudget: a budget the ladder alone uses up (two cells of 500 ms
// and their warm-ups) leaves no time for a trial: none starts, and R* is
// not found, with the budget as the reason.
func TestSweepBudget(t *testing.T) {
	out := t.TempDir()
	r := runBin(t, "sweep", "--drivers", "tcp", "--ladder", "1,2", "--step", "500ms", "--full", "500ms", "--settle", "0s", "--warmup", "100ms", "--budget", "1s", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	run := driverstest.ReadResults(t, out)
	if len(run.Saturation) != 1 {
		t.Fatalf("saturation: %+v", run.Saturation)
	}
	s := run.Saturation[0]
	if s.MaxSustainableRate != nil || len(s.Trials) != 0 || !strings.Contains(s.Reason, "time budget (1s, --budget)") || s.Settings.BudgetSeconds != 1 {
		t.Fatalf("R* %v after %d trials, reason %q, settings %+v", s.MaxSustainableRate, len(s.Trials), s.Reason, s.Settings)
	}
}

func TestSweepBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ladder", "4,2"}, `--ladder "4,2": want ascending whole numbers`},
		{[]string{"--step", "10ms"}, `--step "10ms": want a duration from 500ms to 1h`},
		{[]string{"--max-in-flight", "0"}, "--max-in-flight 0: want 1 to 100000"},
		{[]string{"--budget", "-1s"}, `--budget "-1s": want a duration from 0s to 1h`},
		{[]string{"--concurrency", "4"}, "sweep: --concurrency does not apply"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		r := runBin(t, append([]string{"sweep", "--drivers", "tcp", "--out", out}, tc.args...)...)
		wantBadInput(t, r, tc.want, out)
	}
}
