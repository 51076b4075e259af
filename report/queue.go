package report

import (
	"fmt"
	"strings"
)

// queueRow is one cell's queue delay: the time from the caller's send to
// the responder's handler start, as the responder measured it (mean over
// repetitions of each percentile), beside the whole call's p50.
type queueRow struct {
	Label, Kind    string
	P50, P99, Call string
	Share          string // queue p50 / call p50
}

// queues lists the rows whose cells carried a queue delay.
func (m *model) queues() []queueRow {
	var out []queueRow
	show := m.variesService()
	for _, r := range m.rows {
		var p50, p99 float64
		n := 0
		for _, c := range r.reps {
			if c.QueueDelay == nil || c.QueueDelay.Count == 0 {
				continue
			}
			p50 += c.QueueDelay.P50
			p99 += c.QueueDelay.P99
			n++
		}
		if n == 0 {
			continue
		}
		p50, p99 = p50/float64(n), p99/float64(n)
		q := queueRow{Label: cellLabel(r, show), Kind: r.kind, P50: formatMicros(p50), P99: formatMicros(p99), Call: formatMicros(r.lat.P50), Share: "–"}
		if m.multiRun() {
			q.Label += " (" + r.runLabel + ")"
		}
		if r.lat.P50 > 0 {
			q.Share = fmt.Sprintf("%.0f%%", 100*p50/r.lat.P50)
		}
		out = append(out, q)
	}
	return out
}

// queuesMarkdown is the summary's queue-delay table ("" without one).
func (m *model) queuesMarkdown() string {
	qs := m.queues()
	if len(qs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("**Queue delay** (from the caller's send to the responder's handler start, as the responder measured it on this host's clock: the network, a broker's queues, a consumer's polling)\n\n| cell | kind | queue p50 | queue p99 | call p50 | share of the call |\n|---|---|--:|--:|--:|--:|\n")
	for _, q := range qs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdEscape(q.Label), q.Kind, q.P50, q.P99, q.Call, q.Share)
	}
	b.WriteString("\n")
	return b.String()
}
