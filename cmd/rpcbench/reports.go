package main

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/rpcbench/rpcbench/report"
	"github.com/rpcbench/rpcbench/results"
)

// writeReports writes report.html and summary.md beside result.json.
func writeReports(dir string, run *results.Run) error {
	runs := []*results.Run{run}
	for _, out := range []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"report.html", func(b *bytes.Buffer) error { return report.HTML(b, runs) }},
		{"summary.md", func(b *bytes.Buffer) error { return report.Markdown(b, runs) }},
	} {
		var b bytes.Buffer
		if err := out.render(&b); err != nil {
			return fmt.Errorf("render %s: %w", out.name, err)
		}
		if err := results.WriteFileAtomic(filepath.Join(dir, out.name), b.Bytes()); err != nil {
			return fmt.Errorf("write %s: %w", out.name, err)
		}
	}
	return nil
}
