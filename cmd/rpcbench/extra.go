package main

import "github.com/spf13/cobra"

// errRegression is returned by compare when a significant change crosses a
// threshold (exit 1, nothing more printed).
var errRegression = errorString("regression")

type errorString string

func (e errorString) Error() string { return string(e) }

// addExtraCommands adds the commands that live in their own files.
func addExtraCommands(root *cobra.Command) {
	root.AddCommand(newReportCmd(), newCompareCmd(), newExportCmd())
}
