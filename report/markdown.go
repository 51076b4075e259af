package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// Markdown writes a summary for CI job summaries and pull-request comments:
// the headline, the summary table, skipped drivers and a link-free
// environment line per run.
func Markdown(w io.Writer, runs []*results.Run) error {
	m, err := build(runs)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	title := "rpcbench"
	if len(runs) == 1 && runs[0].Scenario.Name != "" {
		title += ": " + runs[0].Scenario.Name
	}
	fmt.Fprintf(bw, "## %s\n\n", mdEscape(title))
	fmt.Fprintf(bw, "**%s**\n", mdEscape(m.headline()))
	if s := m.directVsBroker(); s != "" {
		fmt.Fprintf(bw, "%s\n", mdEscape(s))
	}
	if s := m.mqCosts(); s != "" {
		fmt.Fprintf(bw, "%s\n", mdEscape(s))
	}
	if s := m.leftOut(); s != "" {
		fmt.Fprintf(bw, "\n> %s\n", mdEscape(s))
	}
	bw.WriteString("\n")
	for i, run := range runs {
		if !run.Complete {
			why := run.Incomplete
			if why == "" {
				why = "no reason recorded"
			}
			fmt.Fprintf(bw, "> **Incomplete run** %s: %s\n\n", mdEscape(m.labels[i]), mdEscape(why))
		}
	}

	showService := m.variesService()
	reps, uniform := m.reps()
	head := []string{"driver", "variant"}
	align := []string{"---", "---"}
	if m.multiRun() {
		head, align = append(head, "run"), append(align, "---")
	}
	head, align = append(head, "payload", "load"), append(align, "--:", "--:")
	if showService {
		head, align = append(head, "service"), append(align, "--:")
	}
	head = append(head, "p50", "p99", "p99.9", "calls/s", "errors", "vs fastest direct")
	align = append(align, "--:", "--:", "--:", "--:", "--:", "--:")
	if !uniform {
		head, align = append(head, "reps"), append(align, "--:")
	}
	fmt.Fprintf(bw, "| %s |\n|%s|\n", strings.Join(head, " | "), strings.Join(align, "|"))
	for _, r := range m.rows {
		drv := r.driver + " (" + r.kind + ")"
		switch {
		case len(r.cellErrors) > 0:
			drv += " ⚠ error"
		case r.incomplete:
			drv += " ⚠ cut short"
		case r.genLimited != "":
			drv += " ⚠ generator-limited"
		case r.unsettled:
			drv += " ⚠ unsettled"
		case r.busy:
			drv += " ⚠ busy machine"
		}
		variant := r.variant
		if r.shownOpts != "" {
			variant += " [" + r.shownOpts + "]"
		}
		cells := []string{drv, variant}
		if m.multiRun() {
			cells = append(cells, r.runLabel)
		}
		cells = append(cells, formatBytes(r.payload), formatLoad(r.mode, r.concurrency, r.rate))
		if showService {
			cells = append(cells, r.service)
		}
		lat := func(us float64) string {
			if !r.ok() {
				return "–"
			}
			return formatMicros(us)
		}
		cells = append(cells, lat(r.lat.P50), lat(r.lat.P99), lat(r.lat.P999), formatRate(r.throughput),
			errorsCell(r), formatRatio(r.ratio))
		if !uniform {
			cells = append(cells, fmt.Sprint(len(r.reps)))
		}
		for i := range cells {
			cells[i] = mdEscape(cells[i])
		}
		fmt.Fprintf(bw, "| %s |\n", strings.Join(cells, " | "))
	}
	bw.WriteString("\n")
	var notes []string
	if reps > 1 {
		if uniform {
			notes = append(notes, fmt.Sprintf("%d repetitions per cell, latency from their merged histograms", reps))
		} else {
			notes = append(notes, "latency from the merged histograms of each cell's repetitions")
		}
	}
	notes = append(notes, "latency corrected for coordinated omission", "vs fastest direct = p99 over the fastest direct-RPC p99 at the same payload and load")
	fmt.Fprintf(bw, "<sub>%s.</sub>\n\n", mdEscape(capitalize(strings.Join(notes, "; "))))

	var failed []string
	for _, r := range m.rows {
		for _, e := range r.cellErrors {
			failed = append(failed, fmt.Sprintf("- %s: %s", mdEscape(cellLabel(r, showService)), mdEscape(e)))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(bw, "**Cells that failed**\n\n%s\n\n", strings.Join(failed, "\n"))
	}
	var msgs []string
	for _, r := range m.rows {
		for _, e := range r.errorMsgs {
			msgs = append(msgs, fmt.Sprintf("- %s: %d× %s", mdEscape(cellLabel(r, showService)), e.Count, mdEscape(e.Message)))
		}
		if r.genLimited != "" {
			msgs = append(msgs, fmt.Sprintf("- %s: generator-limited: %s", mdEscape(cellLabel(r, showService)), mdEscape(r.genLimited)))
		}
		for _, w := range r.warnings {
			if strings.HasPrefix(w, "generator-limited") {
				continue
			}
			msgs = append(msgs, fmt.Sprintf("- %s: %s", mdEscape(cellLabel(r, showService)), mdEscape(w)))
		}
	}
	if len(msgs) > 0 {
		fmt.Fprintf(bw, "**Errors and warnings**\n\n%s\n\n", strings.Join(msgs, "\n"))
	}
	if gl := m.generatorLines(); len(gl) > 0 {
		for i := range gl {
			gl[i] = "- " + mdEscape(gl[i])
		}
		fmt.Fprintf(bw, "**Open-loop generator** (its own lateness, never charged to a transport)\n\n%s\n\n", strings.Join(gl, "\n"))
	}
	bw.WriteString(m.faultsMarkdown())
	if hs := m.hops(); len(hs) > 0 {
		bw.WriteString("**Hop delay** (a delay proxy on every hop: callers to responder, or callers to broker and responder to broker; the slope of p50 against the one-way delay is the one-way traversals on a call's critical path: about 2 for direct RPC, 4 through a broker)\n\n| cell | p50 by one-way delay | slope |\n|---|---|--:|\n")
		for _, h := range hs {
			fmt.Fprintf(bw, "| %s | %s | %s |\n", mdEscape(h.Label), mdEscape(h.Points), h.Slope)
		}
		bw.WriteString("\n")
	}
	bw.WriteString(m.queuesMarkdown())
	if cv := m.costs(); cv != nil {
		bw.WriteString(cv.markdown())
	}
	if sat := m.saturation(); len(sat) > 0 {
		bw.WriteString("**Saturation** (rpcbench sweep: X_sat is the closed-loop plateau, R* the highest open-loop rate confirmed under the objective)\n\n")
		bw.WriteString("| driver | X_sat, calls/s | at callers | R* | bracket | failing criterion | objective | trials |\n|---|--:|--:|---|---|---|---|--:|\n")
		for _, r := range sat {
			name := r.Label
			if m.multiRun() {
				name += " (" + r.Run + ")"
			}
			rstar := mdEscape(r.RStar)
			if r.Found {
				rstar = "**" + rstar + "**"
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", mdEscape(name), r.XSat, r.AtConc, rstar, mdEscape(r.Bracket), mdEscape(r.Failing), mdEscape(r.Objective), r.Trials)
		}
		bw.WriteString("\n")
	}
	if sk := m.skipped(); len(sk) > 0 {
		bw.WriteString("**Skipped drivers**\n\n")
		for _, s := range sk {
			name := driverLabel(s.Driver, s.Variant)
			if m.multiRun() {
				name += " (" + s.Run + ")"
			}
			fmt.Fprintf(bw, "- %s: %s\n", mdEscape(name), mdEscape(s.Reason))
		}
		bw.WriteString("\n")
	}
	for i, run := range runs {
		label := "Environment"
		if m.multiRun() {
			label += " of " + m.labels[i] + " (" + run.ID + ")"
		}
		// A code span: nothing in it becomes a link, a mention or an issue
		// reference, whatever the kernel string or commit look like.
		fmt.Fprintf(bw, "%s: `%s`\n", mdEscape(label), strings.ReplaceAll(environmentLine(run), "`", "'"))
		if i < len(runs)-1 {
			bw.WriteString("\n")
		}
	}
	return bw.Flush()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// mdEscape makes s safe inside a Markdown table cell or paragraph.
var mdReplacer = strings.NewReplacer(
	"\\", "\\\\", "|", "\\|", "*", "\\*", "_", "\\_", "`", "\\`", "<", "&lt;", ">", "&gt;",
	"[", "\\[", "]", "\\]", "\r\n", " ", "\n", " ", "\r", " ",
)

func mdEscape(s string) string { return mdReplacer.Replace(s) }

// errorsCell is a row's failed calls with their share: "0", "12 (0.50%)".
func errorsCell(r *row) string {
	if r.errors == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.2f%%)", r.errors, 100*r.errorRate)
}
