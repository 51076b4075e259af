package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Rendering a Comparison: text, Markdown and JSON.

// Formats accepted by WriteComparison.
var CompareFormats = []string{"text", "markdown", "json"}

// WriteComparison writes c as text, markdown or json.
func WriteComparison(w io.Writer, c *Comparison, format string) error {
	switch format {
	case "", "text":
		return writeCompareText(w, c)
	case "markdown", "md":
		return writeCompareMarkdown(w, c)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonSafe(c))
	}
	return badInput("--format %q: want one of %s", format, strings.Join(CompareFormats, ", "))
}

// jsonSafe replaces NaN and infinite deltas, which JSON cannot carry.
func jsonSafe(c *Comparison) *Comparison {
	cp := *c
	cp.Cells = make([]CellDelta, len(c.Cells))
	for i, cd := range c.Cells {
		cd.Metrics = append([]MetricDelta(nil), cd.Metrics...)
		for j := range cd.Metrics {
			if d := cd.Metrics[j].DeltaPercent; math.IsNaN(d) || math.IsInf(d, 0) {
				cd.Metrics[j].DeltaPercent = 0
				cd.Metrics[j].Warnings = append(cd.Metrics[j].Warnings, "delta undefined")
			}
		}
		cp.Cells[i] = cd
	}
	return &cp
}

func formatValue(unit string, v float64) string {
	switch unit {
	case "calls/s":
		return formatRate(v)
	case "%":
		return fmt.Sprintf("%.2f%%", v)
	}
	return formatMicros(v)
}

// formatEstimate is "120 µs ± 3%" with an interval, "120 µs" without.
func formatEstimate(unit string, e Estimate) string {
	if e.N == 0 {
		return "–"
	}
	s := formatValue(unit, e.Center)
	if e.Lo != nil && e.Hi != nil && e.Center != 0 {
		pct := math.Max(*e.Hi/e.Center-1, 1-*e.Lo/e.Center) * 100
		s += fmt.Sprintf(" ± %s%%", trimZeros(strconv.FormatFloat(pct, 'f', 1, 64)))
	} else if e.N >= MinRepetitions {
		s += " ± ∞"
	}
	return s
}

func formatDelta(md MetricDelta) string {
	d := md.DeltaPercent
	switch {
	case math.IsNaN(d):
		return "?"
	case math.IsInf(d, 1):
		return "+∞"
	case md.Metric == "errors":
		return fmt.Sprintf("%+.2f pts", d)
	}
	return fmt.Sprintf("%+.1f%%", d)
}

func formatSignificance(md MetricDelta) string {
	n := fmt.Sprintf("n=%d+%d", md.Base.N, md.New.N)
	if md.Base.N == md.New.N {
		n = fmt.Sprintf("n=%d", md.Base.N)
	}
	p := ""
	if md.P != nil {
		p = fmt.Sprintf("p=%.3f", *md.P)
		if *md.P < 0.001 {
			p = "p<0.001"
		}
	}
	switch md.Significance {
	case "significant":
		return p + " " + n
	case "not significant":
		return "~ " + p + " " + n
	}
	return "significance unknown " + n
}

func verdict(md MetricDelta) string {
	var parts []string
	if md.Better != nil && (md.Significance == "significant" || md.Significance == "point estimate") {
		if *md.Better {
			parts = append(parts, "better")
		} else {
			parts = append(parts, "worse")
		}
	}
	for _, t := range md.Crossed {
		if md.Failing {
			parts = append(parts, "FAIL "+t)
		} else {
			parts = append(parts, "crossed "+t+" (not failing: "+md.Significance+")")
		}
	}
	return strings.Join(parts, ", ")
}

func (c *Comparison) testDescription() string {
	name, center := "Welch's t-test", "mean"
	if c.Test == "mann-whitney" {
		name, center = "Mann-Whitney U test", "median"
	}
	return fmt.Sprintf("%s on per-repetition values when both sides have ≥%d repetitions, alpha %g; %s ± %g%% confidence interval",
		name, MinRepetitions, c.Alpha, center, c.Confidence*100)
}

func sideName(r RunRef, fallback string) string {
	parts := []string{}
	if r.Name != "" {
		parts = append(parts, r.Name)
	}
	if r.ID != "" {
		parts = append(parts, r.ID)
	}
	if len(parts) == 0 {
		return fallback
	}
	if len(parts) == 2 {
		return parts[0] + " (" + parts[1] + ")"
	}
	return parts[0]
}

func (c *Comparison) summaryLine() string {
	failedCells := 0
	for _, cd := range c.Cells {
		if cd.Verdict == "fail" {
			failedCells++
		}
	}
	switch {
	case c.Failed():
		var why []string
		if failedCells > 0 {
			why = append(why, fmt.Sprintf("%d of %d cells failed", failedCells, len(c.Cells)))
		}
		for _, v := range c.Regressions {
			if v.Metric == "rstar" {
				why = append(why, fmt.Sprintf("%s: R* %+.1f%% crosses %s", strings.TrimSuffix(v.Cell, " saturation"), v.DeltaPercent, v.Threshold))
			}
		}
		why = append(why, c.Failures...)
		return "FAIL: " + strings.Join(why, "; ") + "."
	case len(c.Thresholds) == 0:
		return fmt.Sprintf("PASS: no --fail-on threshold given; every cell's error rate stayed within %.1f%%, every base cell is in the new run and the new run is complete.", 100*DefaultErrorRate)
	case len(c.Unconfirmed) > 0:
		return fmt.Sprintf("PASS: no threshold crossed that fails (%d crossing(s) a significance test did not confirm).", len(c.Unconfirmed))
	}
	return "PASS: no threshold crossed."
}

func writeCompareText(w io.Writer, c *Comparison) error {
	bw := &errWriter{w: w}
	bw.printf("base: %s\nnew:  %s\ntest: %s\n\n", sideName(c.Base, "base"), sideName(c.New, "new"), c.testDescription())
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "cell\tmetric\tbase\tnew\tdelta\tsignificance\t")
	for _, cd := range c.Cells {
		for i, md := range cd.Metrics {
			label := cd.Label
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", label, md.Metric, formatEstimate(md.Unit, md.Base), formatEstimate(md.Unit, md.New),
				formatDelta(md), formatSignificance(md), verdict(md))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		bw.printf("%s", strings.TrimRight(line, " \n"))
		if strings.HasSuffix(line, "\n") {
			bw.printf("\n")
		}
	}
	if len(c.OnlyBase) > 0 {
		bw.printf("\nonly in base: %s\n", strings.Join(c.OnlyBase, "; "))
	}
	if len(c.OnlyNew) > 0 {
		bw.printf("\nonly in new: %s\n", strings.Join(c.OnlyNew, "; "))
	}
	for _, n := range c.Notes {
		bw.printf("\nnote: %s", n)
	}
	if len(c.Notes) > 0 {
		bw.printf("\n")
	}
	bw.printf("\n%s\n", c.summaryLine())
	for _, cd := range c.Cells {
		bw.printf("  %s %s: %s\n", strings.ToUpper(cd.Verdict), cd.Label, strings.Join(cd.Why, "; "))
	}
	return bw.err
}

func writeCompareMarkdown(w io.Writer, c *Comparison) error {
	bw := &errWriter{w: w}
	bw.printf("## rpcbench compare\n\n**%s**\n\n", mdEscape(c.summaryLine()))
	bw.printf("Base: %s · new: %s  \n%s.\n\n", mdEscape(sideName(c.Base, "base")), mdEscape(sideName(c.New, "new")), mdEscape(capitalize(c.testDescription())))
	bw.printf("| cell | metric | base | new | delta | significance | |\n|---|---|--:|--:|--:|---|---|\n")
	for _, cd := range c.Cells {
		for i, md := range cd.Metrics {
			label := mdEscape(cd.Label)
			if i > 0 {
				label = ""
			}
			v := verdict(md)
			if strings.Contains(v, "FAIL") {
				v = "**" + mdEscape(v) + "**"
			} else {
				v = mdEscape(v)
			}
			bw.printf("| %s | %s | %s | %s | %s | %s | %s |\n", label, mdEscape(md.Metric), mdEscape(formatEstimate(md.Unit, md.Base)),
				mdEscape(formatEstimate(md.Unit, md.New)), mdEscape(formatDelta(md)), mdEscape(formatSignificance(md)), v)
		}
	}
	if len(c.OnlyBase) > 0 {
		bw.printf("\nOnly in base: %s\n", mdEscape(strings.Join(c.OnlyBase, "; ")))
	}
	if len(c.OnlyNew) > 0 {
		bw.printf("\nOnly in new: %s\n", mdEscape(strings.Join(c.OnlyNew, "; ")))
	}
	if len(c.Notes) > 0 {
		bw.printf("\n")
		for _, n := range c.Notes {
			bw.printf("- %s\n", mdEscape(n))
		}
	}
	bw.printf("\n**Verdicts**\n\n")
	for _, cd := range c.Cells {
		v := strings.ToUpper(cd.Verdict)
		if cd.Verdict == "fail" {
			v = "**FAIL**"
		}
		bw.printf("- %s %s: %s\n", v, mdEscape(cd.Label), mdEscape(strings.Join(cd.Why, "; ")))
	}
	return bw.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
