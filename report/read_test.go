package report

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// TestReadRunTyped: ReadRun's errors are ErrBadInput and keep the
// results.ReadError they word.
func TestReadRunTyped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v2.json")
	os.WriteFile(p, []byte(`{"schema_version": 99}`), 0o644)
	_, err := ReadRun(p)
	var re *results.ReadError
	if !errors.Is(err, ErrBadInput) || !errors.As(err, &re) || !errors.Is(err, results.ErrVersion) || re.File != p {
		t.Fatalf("got %v (%T)", err, err)
	}
}
