package main

import (
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/report"
)

func newCompareCmd() *cobra.Command {
	var (
		failOn []string
		format string
		opts   report.CompareOptions
	)
	cmd := &cobra.Command{
		Use:   "compare BASE.json NEW.json",
		Short: "Compare two runs cell by cell; fail on significant regressions",
		Long: `compare matches the cells of two results that ran the same workload (same
driver, variant and options with their defaults filled in, payload and
response size, load, max_in_flight, service time and responder concurrency)
and reports p50, p99, p99.9 and throughput deltas, and says for every cell
why it passed or failed.

It fails (exit 1) when:
  - a metric crosses a --fail-on threshold. With at least 3 repetitions a
    side (scenario repeat: 3) the change must also be statistically
    significant; with fewer, the threshold applies to the point estimates
    and the output says significance is unknown (--require-significance:
    fail only on significant changes, as a noisy single-repetition job may
    prefer);
  - a cell's error rate goes over 0.1% (from at most 0.1% in the base), or
    crosses --fail-on errors:+N% (N in percentage points) when given;
  - a cell of the base is missing from the new run (--allow-missing
    accepts that), the new run is incomplete, or a new cell is
    generator-limited, cut short or did not run.

Exit status: 1 on a failure above, 0 otherwise, 2 on bad input (missing
file, incompatible schema version, no common cells, malformed flag).`,
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
			return reportErr(compareFiles(cmd.OutOrStdout(), args[0], args[1], opts, format))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&failOn, "fail-on", nil, "fail (exit 1) when a change crosses METRIC:+N% or METRIC:-N%, e.g. p99:+10%, throughput:-5% or errors:+0.5% (points) (repeatable; metrics: p50, p90, p99, p99.9, p99.99, mean, throughput, errors)")
	f.BoolVar(&opts.RequireSignificance, "require-significance", false, "fail only on changes a significance test confirms (cells with fewer than 3 repetitions a side then never fail on a threshold)")
	f.BoolVar(&opts.AllowMissing, "allow-missing", false, "do not fail when cells of the base are missing from the new run")
	f.StringVar(&format, "format", "text", "output format: text, markdown or json")
	f.Float64Var(&opts.Alpha, "alpha", 0.05, "significance level")
	f.StringVar(&opts.Test, "test", "welch", "significance test: welch (Welch's t-test, mean) or mann-whitney (U test, median; needs 4+ repetitions a side)")
	return cmd
}

// compareFiles does the work of `rpcbench compare BASE NEW`: it reads both
// files, compares them and writes the comparison in format. Bad input is
// refused before anything is written; errRegression is returned after
// writing when the comparison fails.
func compareFiles(w io.Writer, basePath, newPath string, opts report.CompareOptions, format string) error {
	if !slices.Contains(report.CompareFormats, format) && format != "" && format != "md" {
		return usageErr("--format %q: want one of %s", format, strings.Join(report.CompareFormats, ", "))
	}
	base, err := readRun(basePath)
	if err != nil {
		return err
	}
	cur, err := readRun(newPath)
	if err != nil {
		return err
	}
	if opts.BaseName == "" {
		opts.BaseName = basePath
	}
	if opts.NewName == "" {
		opts.NewName = newPath
	}
	c, err := report.Compare(base, cur, opts)
	if err != nil {
		return err
	}
	if err := report.WriteComparison(w, c, format); err != nil {
		return err
	}
	if c.Failed() {
		return errRegression
	}
	return nil
}
