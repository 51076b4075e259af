package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/report"
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
			if err := report.ReportFiles(out, args); err != nil {
				return reportErr(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "rpcbench: wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "report.html", "file to write: HTML, or the Markdown summary when it ends in .md")
	return cmd
}
