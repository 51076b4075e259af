package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/claims"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/scenarios"
	claimscen "github.com/rpcbench/rpcbench/scenarios/claims"
)

// readClaims reads a claims.json, fails t unless it validates against the
// shipped schema, and decodes it.
func readClaims(t *testing.T, path string) claims.Document {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := claims.Validate(data); err != nil {
		t.Fatalf("%s does not validate: %v", path, err)
	}
	var doc claims.Document
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestClaimsQuick runs the suite's C9 (direct drivers only) with short
// cells and checks what it writes.
func TestClaimsQuick(t *testing.T) {
	out := t.TempDir()
	r := runBin(t, "claims", "--quick", "--only", "C9", "--settle", "0s", "--responder", "in-process", "--out", out, "-q")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*-claims", "claims.json"))
	if len(files) != 1 {
		t.Fatalf("claims.json: %v", files)
	}
	doc := readClaims(t, files[0])
	// C9's scenario, and its drivers again at 250 µs per hop
	if len(doc.Claims) != 1 || doc.Claims[0].ID != "C9" || len(doc.Runs) != 2 || !doc.Runs[0].Complete || !doc.Runs[1].Complete {
		t.Fatalf("claims %+v runs %+v", doc.Claims, doc.Runs)
	}
	if a := doc.Claims[0].AtDelay; len(a) != 1 || a[0].OneWayDelay != "250µs" || len(a[0].Comparisons) != 6 {
		t.Fatalf("C9 at_delay %+v: want the three pairs' p50 and throughput at 250µs", a)
	}
	for _, cmp := range doc.Claims[0].AtDelay[0].Comparisons {
		for _, ref := range cmp.Cells {
			if !strings.Contains(ref.Key, "one_way_delay=250µs") {
				t.Fatalf("a 250µs comparison used %s", ref.Key)
			}
		}
	}
	c := doc.Claims[0]
	// three pairs at two loads, p50 and throughput each
	if len(c.Evidence.Comparisons) != 12 || c.Reason == "" || !strings.Contains(c.Evidence.Machine, "cores") {
		t.Fatalf("C9: %s: %s; %d comparisons", c.Verdict, c.Reason, len(c.Evidence.Comparisons))
	}
	for _, cmp := range c.Evidence.Comparisons {
		if len(cmp.Cells) != 2 || cmp.Cells[0].Repetitions != 3 {
			t.Fatalf("comparison %+v", cmp)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(files[0]), "claims.md")); err != nil {
		t.Fatal(err)
	}
	// the report leads with the verdict
	page, err := os.ReadFile(filepath.Join(filepath.Dir(files[0]), "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `id="claim-C9"`) || !strings.Contains(string(page), "<strong>"+string(c.Verdict)+"</strong>") {
		t.Fatal("report.html has no claims section with C9's verdict")
	}
	if !strings.Contains(r.stdout, "C9") || !strings.Contains(r.stdout, string(c.Verdict)) {
		t.Fatalf("stdout: %s", r.stdout)
	}
	// re-judging the stored results gives the same verdict
	r = runBin(t, "claims", "--from", filepath.Dir(files[0]), "--only", "C9", "--out", filepath.Join(out, "again"))
	if r.code != 0 {
		t.Fatalf("--from: exit %d: %s", r.code, r.stderr)
	}
	again := readClaims(t, filepath.Join(out, "again", "claims.json"))
	if again.Claims[0].Verdict != c.Verdict || again.Claims[0].Reason != c.Reason {
		t.Fatalf("re-judged %s (%s), ran %s (%s)", again.Claims[0].Verdict, again.Claims[0].Reason, c.Verdict, c.Reason)
	}
}

// TestClaimsFrom judges a stored result: one repetition per cell is too
// few for a latency claim, and it has no pull-based consumer for C2.
func TestClaimsFrom(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	os.MkdirAll(dir, 0o755)
	data, err := os.ReadFile("../../report/testdata/result-tcp-grpc-nats.json")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "result.json"), data, 0o644)
	r := runBin(t, "claims", "--from", filepath.Join(dir, "result.json"), "--only", "c8,C2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	doc := readClaims(t, filepath.Join(dir, "claims.json"))
	if len(doc.Claims) != 2 || doc.Claims[0].ID != "C2" || doc.Claims[1].ID != "C8" {
		t.Fatalf("claims %+v", doc.Claims)
	}
	if c := doc.Claims[0]; c.Verdict != claims.Inconclusive || !strings.Contains(c.Reason, "no pull-based") {
		t.Fatalf("C2: %s: %s", c.Verdict, c.Reason)
	}
	if c := doc.Claims[1]; c.Verdict != claims.Inconclusive || !strings.Contains(c.Reason, "too few repetitions") || len(c.Evidence.Comparisons) != 4 {
		t.Fatalf("C8: %s: %s (%d comparisons)", c.Verdict, c.Reason, len(c.Evidence.Comparisons))
	}
	if _, err := os.Stat(filepath.Join(dir, "claims.md")); err != nil {
		t.Fatal(err)
	}
}

func TestClaimsBadInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	notResult := filepath.Join(dir, "x.json")
	os.WriteFile(notResult, []byte(`{"cells": []}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--only", "C1,C99"}, `--only "C1,C99": unknown claim "C99"`},
		{[]string{"--from", filepath.Join(dir, "missing")}, "missing: no such file or directory"},
		{[]string{"--from", dir}, "no result.json in it or below"},
		{[]string{"--from", notResult}, "x.json: no schema_version"},
		{[]string{"--from", notResult, "--quick"}, "--quick, --settle and --broker apply only when the suite runs"},
		{[]string{"--only", "C9", "--settle", "soon"}, `--settle: "soon"`},
		{[]string{"--only", "C6", "--responder", "in-process"}, "claim C6"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			wantBadInput(t, runBin(t, append([]string{"claims", "--out", out}, tc.args...)...), tc.want, out)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "claims.json")); !os.IsNotExist(err) {
		t.Fatal("bad input wrote claims.json")
	}
}

// TestClaimsScenariosPrepare: every suite scenario resolves against the
// registered drivers, as rpcbench run would check it.
func TestClaimsScenariosPrepare(t *testing.T) {
	all := claimscen.IDs()
	hop, err := claimscen.LoadHop(all)
	if err != nil || hop == nil || len(hop.Drivers) != 7 {
		t.Fatalf("hop.yaml for every claim: %v, %v", hop, err)
	}
	if _, _, _, err := prepare(runFlags{load: func() (*scenarios.Scenario, error) { return claimscen.LoadHop(all) }, responder: responderProcess}); err != nil {
		t.Errorf("hop: %v", err)
	}
	if c9, _ := claimscen.LoadHop([]string{"C9"}); len(c9.Drivers) != 2 || c9.Drivers[0].Name != "grpc" || c9.Drivers[1].Name != "http" {
		t.Errorf("hop.yaml for C9: drivers %+v, want grpc and http", c9.Drivers)
	}
	if none, _ := claimscen.LoadHop([]string{"C5", "C10"}); none != nil {
		t.Errorf("hop.yaml for C5 and C10: %+v, want none", none)
	}
	// C10's chains at the delay: their own scenario, planned with C10
	if _, _, _, err := prepare(runFlags{load: func() (*scenarios.Scenario, error) { return claimscen.LoadHopChain([]string{"C10"}) }, responder: responderProcess}); err != nil {
		t.Errorf("hopchain: %v", err)
	}
	if _, planned, _, err := claimsPlan(claimsFlags{responder: responderProcess, quick: true}, []string{"C10"}, false); err != nil || !slices.Equal(planned, []string{"C10", "hop-delay(C10)"}) {
		t.Errorf("C10 planned %v, %v; want C10 and its chains at the delay", planned, err)
	}
	// C11: the variants it compares, not every one hop.yaml lists
	c11, _ := claimscen.LoadHop([]string{"C11"})
	if c11 == nil || len(c11.Drivers) != 2 || c11.Drivers[0].Name != "rabbitmq" || !slices.Equal(c11.Drivers[0].Variants, []string{"direct-reply-to/transient", "reply-queue/persistent"}) ||
		c11.Drivers[1].Name != "rocketmq" || len(c11.Drivers[1].Variants) != 2 {
		t.Errorf("hop.yaml for C11: drivers %+v, want rabbitmq's two variants and rocketmq's", c11)
	}
	for _, id := range claimscen.IDs() {
		rf := runFlags{load: func() (*scenarios.Scenario, error) { return claimscen.Load(id) }, responder: responderProcess}
		if _, _, _, err := prepare(rf); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		sc, _ := claimscen.Load(id)
		rf.over = quickOverrides(sc, true, "", false)
		if _, _, _, err := prepare(rf); err != nil {
			t.Errorf("%s --quick: %v", id, err)
		}
	}
}

// TestClaimsPlanDedupe: a claim's scenario whose cells another planned
// scenario measures the same way is not run again (C1 and C2 are in C8),
// and is run when that other one is not planned; fault scenarios are
// never dropped, and one with broker faults (C5) runs last, after the hop
// delay run: it restarts the brokers the runs share.
func TestClaimsPlanDedupe(t *testing.T) {
	for _, quick := range []bool{false, true} {
		f := claimsFlags{responder: responderProcess, quick: quick}
		_, planned, covered, err := claimsPlan(f, []string{"C1", "C2", "C5", "C8"}, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(planned, []string{"C8", "hop-delay(C1,C2,C8)", "C5"}) || len(covered) != 2 ||
			!strings.HasPrefix(covered[0], "C1: not run on its own: claim C8's scenario") || !strings.HasPrefix(covered[1], "C2: ") {
			t.Errorf("quick %v: planned %v, notes %q; want C8, the hop delay run and C5, C1 and C2 judged from C8's cells", quick, planned, covered)
		}
		_, planned, covered, err = claimsPlan(f, []string{"C1", "C2"}, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(planned, []string{"C1", "C2", "hop-delay(C1,C2)"}) || len(covered) != 0 {
			t.Errorf("quick %v: without C8 planned %v, notes %q; want C1 and C2 run", quick, planned, covered)
		}
	}
	// measured differently (a settling cap given on C1 alone is not
	// possible, but another duration is): not the same cells
	f := claimsFlags{responder: responderProcess}
	plans, _, _, err := claimsPlan(f, []string{"C1", "C8"}, false)
	if err != nil {
		t.Fatal(err)
	}
	c8, _, _, _ := prepare(plans[0])
	c8.Duration = scenarios.Duration(2 * time.Second)
	c1sc, _ := claimscen.Load("C1")
	_, units1, _, _ := prepare(runFlags{load: func() (*scenarios.Scenario, error) { return claimscen.Load("C1") }, responder: responderProcess})
	_, units8, _, _ := prepare(plans[0])
	if all(runner.PlannedCells(c1sc, units1), runner.PlannedCells(c8, units8)) {
		t.Errorf("C1's cells counted as C8's though C8's cells ran 2 s and C1's %v", c1sc.Duration)
	}
}

// TestClaimsQuickFaultDuration: --quick ends a fault cell 2 s after the
// calls sent before its last fault was undone have timed out.
func TestClaimsQuickFaultDuration(t *testing.T) {
	sc, err := claimscen.Load("C5") // stop-broker at 5 s for 3 s, timeout 3 s, 30 s
	if err != nil {
		t.Fatal(err)
	}
	if o := quickOverrides(sc, true, "", false); o.Duration != "13s" || !o.Set["duration"] {
		t.Errorf("C5 --quick duration %q (set %v), want 13s", o.Duration, o.Set["duration"])
	}
	sc, _ = claimscen.Load("C6") // kill-responder at 3 s, restored after 1 s, timeout 5 s, 15 s
	if o := quickOverrides(sc, true, "", false); o.Duration != "11s" || !o.Set["duration"] {
		t.Errorf("C6 --quick duration %q (set %v), want 11s", o.Duration, o.Set["duration"])
	}
	sc.Timeout = scenarios.Duration(10 * time.Second)
	if o := quickOverrides(sc, true, "", false); o.Set["duration"] {
		t.Errorf("C6 with a 10 s timeout: --quick duration %q: 3 s + 1 s + 10 s + 2 s is past its 15 s, want it kept", o.Duration)
	}
}
