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
