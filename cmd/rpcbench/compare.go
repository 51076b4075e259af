package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/report"
)

// errRegression (exit 1, nothing more printed) is declared in extra.go.

// reportErr maps the report package's errors to the command's: bad input
// exits 2 with its one-line message, a regression exits 1.
func reportErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, report.ErrRegression):
		return errRegression
	case errors.Is(err, report.ErrBadInput):
		return usageErr("%v", err)
	}
	return err
}

func newCompareCmd() *cobra.Command {
	var (
		failOn []string
		format string
		opts   report.CompareOptions
	)
	cmd := &cobra.Command{
		Use:   "compare BASE.json NEW.json",
		Short: "Compare two runs cell by cell; fail on significant regressions",
		Long: `compare matches the cells of two results (same driver, variant, options,
payload, load and service time) and reports p50, p99, p99.9 and throughput
deltas. When both sides have at least 3 repetitions (scenario repeat: 3) it
tests significance and gives confidence intervals; otherwise it says that
significance is unknown.

Exit status: 1 when a statistically significant change crosses a --fail-on
threshold, 0 otherwise, 2 on bad input (missing file, incompatible schema
version, no common cells, malformed flag).`,
		Example: `  rpcbench compare base/result.json new/result.json
  rpcbench compare base.json new.json --fail-on p99:+10% --fail-on throughput:-5%
  rpcbench compare base.json new.json --format markdown >> "$GITHUB_STEP_SUMMARY"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, f := range failOn {
				t, err := report.ParseThreshold(f)
				if err != nil {
					return reportErr(err)
				}
				opts.Thresholds = append(opts.Thresholds, t)
			}
			return reportErr(report.CompareFiles(cmd.OutOrStdout(), args[0], args[1], opts, format))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&failOn, "fail-on", nil, "fail (exit 1) when a significant change crosses METRIC:+N% or METRIC:-N%, e.g. p99:+10% or throughput:-5% (repeatable; metrics: p50, p90, p99, p99.9, p99.99, mean, throughput)")
	f.StringVar(&format, "format", "text", "output format: text, markdown or json")
	f.Float64Var(&opts.Alpha, "alpha", 0.05, "significance level")
	f.StringVar(&opts.Test, "test", "welch", "significance test: welch (Welch's t-test, mean) or mann-whitney (U test, median; needs 4+ repetitions a side)")
	return cmd
}
