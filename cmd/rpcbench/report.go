package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/report"
	"github.com/rpcbench/rpcbench/results"
)

func newReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report RESULT.json... [-o FILE]",
		Short: "Rebuild the HTML report (or Markdown summary) from one or more results",
		Long: `report reads one or more result.json files written by rpcbench run and writes
one self-contained HTML report (no network requests; opens offline). Several
results are merged into one comparison, each cell labelled with its run.
With -o ending in .md it writes the Markdown summary instead.`,
		Example: `  rpcbench report results/20261121T100000Z-default/result.json -o report.html
  rpcbench report before/result.json after/result.json -o both.html
  rpcbench report result.json -o summary.md`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := reportFiles(out, args); err != nil {
				return reportErr(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "rpcbench: wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "report.html", "file to write: HTML, or the Markdown summary when it ends in .md")
	return cmd
}

// reportFiles does the work of `rpcbench report FILE... -o OUT`: it reads
// every result, merges them into one comparison and writes OUT atomically,
// as Markdown when OUT ends in .md and as HTML otherwise. Nothing is
// written when a file cannot be used.
func reportFiles(out string, paths []string) error {
	if len(paths) == 0 {
		return usageErr("give at least one result.json to report on")
	}
	if out == "" {
		return usageErr("-o: give the file to write, e.g. -o report.html")
	}
	var runs []*results.Run
	for _, p := range paths {
		run, err := readRun(p)
		if err != nil {
			return err
		}
		runs = append(runs, run)
	}
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(strings.ToLower(out), ".md") {
		err = report.Markdown(&buf, runs)
	} else {
		err = report.HTML(&buf, runs)
	}
	if err != nil {
		return err
	}
	return results.WriteFileAtomic(out, buf.Bytes())
}
