package report

import (
	"fmt"
	"html/template"
	"strconv"

	"github.com/rpcbench/rpcbench/results"
)

// satRow is one driver variant's saturation, for the reports.
type satRow struct {
	Run, Label     string
	XSat, AtConc   string
	RStar, Bracket string
	Failing        string
	Objective      string
	Trials         string
	Found          bool
	// Chart is latency against throughput with the knee and R* marked.
	Chart template.HTML
}

// saturation lists what the runs' sweeps found.
func (m *model) saturation() []satRow {
	var out []satRow
	for i, run := range m.runs {
		for si := range run.Saturation {
			s := &run.Saturation[si]
			r := satRow{
				Run:       m.labels[i],
				Label:     driverLabel(s.Driver, s.Variant) + optionsSuffix(s.Options),
				XSat:      formatRate(s.XSat),
				AtConc:    strconv.Itoa(s.XSatConcurrency),
				Failing:   s.FailingCriterion,
				Objective: fmt.Sprintf("p99 ≤ %s (%s)", formatMicros(s.Criteria.P99US), s.Criteria.P99Why),
			}
			pass := 0
			for _, t := range s.Trials {
				if t.Verdict == "pass" {
					pass++
				}
			}
			r.Trials = fmt.Sprintf("%d (%d passed)", len(s.Trials), pass)
			if s.MaxSustainableRate != nil {
				r.Found = true
				r.RStar = formatRate(*s.MaxSustainableRate) + " calls/s"
			} else if s.AtLeast > 0 {
				r.RStar = "at least " + formatRate(s.AtLeast) + " calls/s, not found above: " + s.Reason
			} else {
				r.RStar = "not found: " + s.Reason
			}
			hi := " failed"
			if s.BracketHiGenerator {
				hi = " beyond the generator"
			}
			switch {
			case s.BracketLo > 0 && s.BracketHi > 0:
				r.Bracket = formatRate(s.BracketLo) + " passed, " + formatRate(s.BracketHi) + hi
			case s.BracketLo > 0:
				r.Bracket = formatRate(s.BracketLo) + " passed, none failed"
			case s.BracketHi > 0:
				r.Bracket = "none passed, " + formatRate(s.BracketHi) + hi
			default:
				r.Bracket = "no trial passed or failed"
			}
			r.Chart, _ = saturationChart(run, s)
			out = append(out, r)
		}
	}
	return out
}

func optionsSuffix(o map[string]string) string {
	if s := results.OptionsString(o); s != "" {
		return " " + s
	}
	return ""
}
