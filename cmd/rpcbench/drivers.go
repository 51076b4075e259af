package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newDriversCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "drivers",
		Short: "List drivers, their variants and options",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listDrivers(cmd.OutOrStdout())
		},
	}
}

func listDrivers(w io.Writer) error {
	reg := registry()
	for i, name := range reg.Names() {
		d, _ := reg.Get(name)
		s := d.Spec()
		if i > 0 {
			fmt.Fprintln(w)
		}
		kind := string(s.Kind)
		if s.Broker != "" {
			kind += ": " + s.Broker
		}
		fmt.Fprintf(w, "%s (%s): %s\n", s.Name, kind, s.Description)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, v := range s.Variants {
			fmt.Fprintf(tw, "  variant\t%s\t%s\n", v.Name, v.Description)
		}
		for _, o := range s.Options {
			fmt.Fprintf(tw, "  option\t%s=%s\t%s\n", o.Name, o.Default, o.Description)
		}
		tw.Flush()
		if len(s.Libraries) > 0 {
			fmt.Fprintf(w, "  libraries: %s\n", strings.Join(s.Libraries, ", "))
		}
	}
	return nil
}
