package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rpcbench/rpcbench/report"
	"github.com/rpcbench/rpcbench/results"
)

// readRun reads a result file for report, compare and export. Its errors
// are *results.ReadError: one line naming the file and what would fix it
// (reportErr makes them bad input). Broker credentials in it (results
// written before runs redacted them) are redacted: URL passwords and NATS
// tokens, and the same secrets wherever else they are quoted.
func readRun(path string) (*results.Run, error) {
	run, err := results.Read(path)
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, b := range run.Environment.Brokers {
		urls = append(urls, b.URL)
	}
	newRedactor(urls...).run(run)
	return run, nil
}

// reportErr maps the errors of report, compare and export to the
// command's: a result file that cannot be used and the report package's
// bad input exit 2 with their one-line message.
func reportErr(err error) error {
	if err == nil {
		return nil
	}
	var re *results.ReadError
	if errors.As(err, &re) {
		return usageErr("%s", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	if errors.Is(err, report.ErrBadInput) {
		return usageErr("%v", err)
	}
	return err
}

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
