package driverstest

import (
	"path/filepath"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// ResultsFile returns the result.json the rpcbench binary (Binary) wrote
// below out, its --out directory: out/<run id>/result.json. It fails t
// unless there is exactly one.
func ResultsFile(t testing.TB, out string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(out, "*", "result.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("want one result.json below %s, found %v", out, files)
	}
	return files[0]
}

// ReadResults reads the one result the rpcbench binary wrote below out
// (see ResultsFile) with results.Read, which validates it against the
// schema and checks its histograms, and fails t if it does not read.
func ReadResults(t testing.TB, out string) *results.Run {
	t.Helper()
	run, err := results.Read(ResultsFile(t, out))
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// CheckWarmups fails t unless run records one settling (results.Warmup)
// for each of its units (driver variants with cells), each bounded by
// capSeconds and with at least one window, and every cell of a unit that
// did not settle is marked so.
func CheckWarmups(t testing.TB, run *results.Run, capSeconds float64) {
	t.Helper()
	units := map[string]bool{}
	for _, c := range run.Cells {
		units[c.Driver+"/"+c.Variant] = true
	}
	settled := map[string]bool{}
	for _, w := range run.Warmups {
		u := w.Driver + "/" + w.Variant
		if !units[u] {
			t.Errorf("warm-up of %s, which has no cell", u)
		}
		if _, dup := settled[u]; dup {
			t.Errorf("two warm-ups of %s", u)
		}
		settled[u] = w.Settled
		if w.CapSeconds != capSeconds || len(w.Windows) == 0 || w.Seconds <= 0 || w.Seconds > capSeconds+2 {
			t.Errorf("warm-up of %s: cap %.1f s, %d windows in %.1f s; want cap %.1f s and a window or more within it",
				u, w.CapSeconds, len(w.Windows), w.Seconds, capSeconds)
		}
		if !w.Settled && w.Note == "" {
			t.Errorf("warm-up of %s did not settle and says nothing", u)
		}
	}
	for u := range units {
		if _, ok := settled[u]; !ok {
			t.Errorf("%s: no warm-up recorded", u)
		}
	}
	for _, c := range run.Cells {
		if s, ok := settled[c.Driver+"/"+c.Variant]; ok && !s && !c.Unsettled {
			t.Errorf("cell %s: its unit did not settle, and the cell is not marked so", c.Key)
		}
	}
}
