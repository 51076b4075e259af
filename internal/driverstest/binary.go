package driverstest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the rpcbench binary for end-to-end tests: $RPCBENCH_BIN
// (make test sets it) or one built once for this test process.
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("RPCBENCH_BIN"); b != "" {
		return b
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rpcbench-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "rpcbench")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/rpcbench/rpcbench/cmd/rpcbench").CombinedOutput()
		if err != nil {
			binErr = errors.New(err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build rpcbench: %v", binErr)
	}
	return binPath
}
