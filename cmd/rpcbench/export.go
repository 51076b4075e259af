package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/report"
	"github.com/rpcbench/rpcbench/results"
)

func newExportCmd() *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "export --format benchfmt RESULT.json",
		Short: "Write a result in Go benchmark format, for benchstat",
		Long: `export writes a result.json in the Go benchmark format: one line per cell and
repetition, named BenchmarkRPC/driver=.../variant=.../payload=.../load=.../service=...,
with p50-ns, p90-ns, p99-ns, p99.9-ns, p99.99-ns, calls/s and errors. benchstat
reads it like the output of go test -bench.`,
		Example: `  rpcbench export --format benchfmt base/result.json > base.txt
  rpcbench export --format benchfmt new/result.json > new.txt
  benchstat base.txt new.txt
  benchstat -col /driver base.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return reportErr(exportFile(cmd.OutOrStdout(), args[0], format))
			}
			var buf bytes.Buffer
			if err := exportFile(&buf, args[0], format); err != nil {
				return reportErr(err)
			}
			if err := results.WriteFileAtomic(out, buf.Bytes()); err != nil {
				return fmt.Errorf("-o %s: %w", out, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "benchfmt", "output format: benchfmt")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	return cmd
}

// exportFile does the work of `rpcbench export --format benchfmt FILE`.
func exportFile(w io.Writer, path, format string) error {
	if format != "benchfmt" {
		return usageErr("--format %q: want benchfmt", format)
	}
	run, err := readRun(path)
	if err != nil {
		return err
	}
	return report.Benchfmt(w, run)
}
