package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// createRunDir creates a new directory for a run under out, named id, or
// id-2, id-3... when that exists (two runs started in the same second):
// it is created with os.Mkdir, so no two runs ever share a directory and
// nothing is overwritten.
func createRunDir(out, id string) (string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("create results directory: %w", err)
	}
	for n := 1; n <= 1000; n++ {
		name := id
		if n > 1 {
			name = fmt.Sprintf("%s-%d", id, n)
		}
		dir := filepath.Join(out, name)
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create results directory: %w", err)
		}
	}
	return "", fmt.Errorf("create results directory: %s and 999 more like it exist in %s", id, out)
}
