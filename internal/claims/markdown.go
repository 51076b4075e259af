package claims

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Markdown writes claims.md: one table of verdicts with their reason,
// then each claim's assertion, tolerance, comparisons and notes.
func Markdown(w io.Writer, doc Document) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("## rpcbench claims\n\n")
	fmt.Fprintf(bw, "Measured on: %s\n\n", mdEscape(strings.ReplaceAll(doc.Machine, "\n", "; ")))
	bw.WriteString(Section(doc))
	for _, c := range doc.Claims {
		fmt.Fprintf(bw, "\n### %s: %s\n\n", c.ID, c.Verdict)
		fmt.Fprintf(bw, "%s (source %s)\n\n", mdEscape(c.Claim), c.Source)
		fmt.Fprintf(bw, "- **Assertion**: %s\n- **Tolerance**: %s\n- **Reason**: %s\n", mdEscape(c.Assertion), mdEscape(c.Tolerance), mdEscape(c.Reason))
		for _, m := range c.Evidence.Missing {
			fmt.Fprintf(bw, "- **Not in the data**: %s\n", mdEscape(m))
		}
		for _, n := range c.Evidence.Notes {
			fmt.Fprintf(bw, "- %s\n", mdEscape(n))
		}
		for _, a := range c.AtDelay {
			moved := "the same as on loopback"
			if a.Moved {
				moved = "moved from " + string(c.Verdict)
			}
			fmt.Fprintf(bw, "- **With %s one-way delay per hop**: %s (%s): %s\n", a.OneWayDelay, a.Verdict, moved, mdEscape(a.Reason))
			for _, n := range a.Notes {
				fmt.Fprintf(bw, "  - %s\n", mdEscape(n))
			}
		}
		comparisonTable(bw, c.Evidence.Comparisons)
		for _, a := range c.AtDelay {
			fmt.Fprintf(bw, "\nAt %s one-way delay per hop:\n", a.OneWayDelay)
			comparisonTable(bw, a.Comparisons)
		}
	}
	return bw.Flush()
}

// comparisonTable writes the comparisons as a table (nothing for none).
func comparisonTable(bw *bufio.Writer, cs []Comparison) {
	if len(cs) == 0 {
		return
	}
	bw.WriteString("\n| comparison | value | 95% interval | threshold | outcome | repetitions |\n|---|--:|--:|--:|---|--:|\n")
	for _, cmp := range cs {
		val, ci := "-", "-"
		if cmp.Value != nil {
			val = fmtNum(*cmp.Value)
		}
		if cmp.Low != nil && cmp.High != nil {
			ci = fmtNum(*cmp.Low) + " – " + fmtNum(*cmp.High)
		}
		var reps []string
		for _, r := range cmp.Cells {
			s := fmt.Sprint(len(r.Values))
			if r.Mean != 0 && len(r.Values) > 1 {
				s += fmt.Sprintf(" (sd %.1f%%)", 100*r.SD/abs(r.Mean))
			}
			reps = append(reps, s)
		}
		out := string(cmp.Outcome)
		if cmp.Why != "" {
			out += ": " + cmp.Why
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s |\n", mdEscape(cmp.What), val, ci, fmtNum(cmp.Threshold), mdEscape(out), strings.Join(reps, ", "))
	}
}

// Section is the verdict table alone (a claims section for a summary).
func Section(doc Document) string {
	var b strings.Builder
	b.WriteString("| claim | source | verdict | with hop delay | reason |\n|---|---|---|---|---|\n")
	for _, c := range doc.Claims {
		fmt.Fprintf(&b, "| %s | %s | **%s** | %s | %s |\n", c.ID, c.Source, c.Verdict, delayCell(c), mdEscape(shorten(c.Reason, 300)))
	}
	return b.String()
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

// delayCell is the verdicts at injected hop delays, for the verdict table:
// "250µs: supported (moved)", or "–" when none was measured.
func delayCell(c Judgement) string {
	if len(c.AtDelay) == 0 {
		return "–"
	}
	var parts []string
	for _, a := range c.AtDelay {
		p := a.OneWayDelay + ": " + string(a.Verdict)
		if a.Moved {
			p += " (moved)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}
