package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// rowOptions are a cell's options as the report shows them: the hop delay
// the cell ran through a delay proxy with is one of them (hop=250µs), so
// each delay is a line of its own.
func rowOptions(c *results.Cell) map[string]string {
	if c.Hop == nil && c.Chain == nil {
		return c.Options
	}
	o := maps.Clone(c.Options)
	if o == nil {
		o = map[string]string{}
	}
	if c.Hop != nil {
		o["hop"] = c.Hop.OneWayDelay
		if c.Hop.Jitter != "" && c.Hop.Jitter != "0s" {
			o["hop"] += "±" + c.Hop.Jitter
		}
	}
	if c.Chain != nil {
		o["chain"] = fmt.Sprintf("%d/%s", c.Chain.Depth, c.Chain.Mode)
	}
	return o
}

// costRoles are the roles a cell's CPU is charged to, in display order.
var costRoles = []string{"caller", "caller+responder", "responder", "broker"}

// costView is the cost table: CPU per call by role, per cell.
type costView struct {
	Roles []string
	Rows  []costRow
	Notes []string
	// SegRoles are the roles whose connections' segments were counted;
	// Segments the rows that have them.
	SegRoles []string
	Segments []segRow
}

type costRow struct {
	Label string
	Run   string
	CPU   []string // by Roles; "" when not measured
	Total string
}

// segRow is one cell's data segments per call, "sent / received" by
// SegRoles, with the total sent (the transfers per call) and the payload
// bytes all roles sent per call.
type segRow struct {
	Label string
	Segs  []string
	Total string
	Bytes string
}

// costs is the cost table of the rows whose cells recorded their cost
// (averaged over repetitions); nil when none did.
func (m *model) costs() *costView {
	v := &costView{}
	used := map[string]bool{}
	type acc struct {
		sum     map[string]float64
		n       map[string]int
		cells   int
		partial bool // some process's CPU was not measured
		seg     map[string]results.Flow
		segN    map[string]int
		bytes   float64
		bytesN  int
	}
	segUsed := map[string]bool{}
	per := map[*row]acc{}
	var notes []string
	for _, r := range m.rows {
		a := acc{sum: map[string]float64{}, n: map[string]int{}, seg: map[string]results.Flow{}, segN: map[string]int{}}
		for _, c := range r.reps {
			if c.Cost == nil {
				continue
			}
			a.cells++
			for role, f := range c.Cost.SegmentsPerCall {
				t := a.seg[role]
				a.seg[role] = results.Flow{Sent: t.Sent + f.Sent, Received: t.Received + f.Received}
				a.segN[role]++
				segUsed[role] = true
			}
			if len(c.Cost.BytesPerCall) > 0 {
				for _, f := range c.Cost.BytesPerCall {
					a.bytes += f.Sent
				}
				a.bytesN++
			}
			for role, us := range c.Cost.CPUUsPerCall {
				a.sum[role] += us
				a.n[role]++
				used[role] = true
			}
			for _, n := range c.Cost.Notes {
				if strings.Contains(n, "not measured") {
					a.partial = true
				}
				if !slices.Contains(notes, n) {
					notes = append(notes, n)
				}
			}
		}
		if a.cells > 0 {
			per[r] = a
		}
	}
	if len(per) == 0 {
		return nil
	}
	for _, role := range costRoles {
		if used[role] {
			v.Roles = append(v.Roles, role)
		}
	}
	show := m.variesService()
	for _, r := range m.rows {
		a, ok := per[r]
		if !ok {
			continue
		}
		cr := costRow{Label: cellLabel(r, show), Run: r.runLabel}
		total := 0.0
		for _, role := range v.Roles {
			us, ok := a.sum[role]
			if !ok {
				cr.CPU = append(cr.CPU, "")
				continue
			}
			us /= float64(a.n[role])
			total += us
			cr.CPU = append(cr.CPU, formatMicros(us))
		}
		cr.Total = formatMicros(total)
		if a.partial {
			cr.Total = "≥ " + cr.Total
		}
		v.Rows = append(v.Rows, cr)
		if len(a.segN) == 0 {
			continue
		}
		sr := segRow{Label: cr.Label}
		sent := 0.0
		for _, role := range costRoles {
			if !segUsed[role] {
				continue
			}
			f, ok := a.seg[role]
			if !ok {
				sr.Segs = append(sr.Segs, "")
				continue
			}
			n := float64(a.segN[role])
			sent += f.Sent / n
			sr.Segs = append(sr.Segs, sig3(f.Sent/n)+" / "+sig3(f.Received/n))
		}
		sr.Total = sig3(sent)
		if a.partial {
			sr.Total = "≥ " + sr.Total
		}
		if a.bytesN > 0 {
			sr.Bytes = sig3(a.bytes / float64(a.bytesN))
		}
		v.Segments = append(v.Segments, sr)
	}
	for _, role := range costRoles {
		if segUsed[role] {
			v.SegRoles = append(v.SegRoles, role)
		}
	}
	v.Notes = notes
	return v
}

func (v *costView) markdown() string {
	rows := make([][]string, len(v.Rows))
	for i, r := range v.Rows {
		rows[i] = append(append([]string{}, r.CPU...), r.Total)
	}
	labels := func(i int) string { return v.Rows[i].Label }
	s := "**CPU per call** (user + system time of each process over the measured window, divided by the calls completed)\n\n" +
		mdRoleTable(v.Roles, []string{"total"}, labels, rows)
	for _, n := range v.Notes {
		s += fmt.Sprintf("\n- %s", mdEscape(n))
	}
	s += "\n\n"
	if len(v.Segments) == 0 {
		return s
	}
	rows = make([][]string, len(v.Segments))
	for i, r := range v.Segments {
		rows[i] = append(append([]string{}, r.Segs...), r.Total, r.Bytes)
	}
	labels = func(i int) string { return v.Segments[i].Label }
	return s + "**TCP data segments per call** (sent / received on each role's connections, from the kernel's per-socket counters; on one host every segment sent is received once, so the sent column's total is the network transfers per call)\n\n" +
		mdRoleTable(v.SegRoles, []string{"transfers", "bytes sent"}, labels, rows) + "\n"
}

// mdRoleTable is a table of one row per cell: its label, a column per
// role ("–" where empty), then the extra columns.
func mdRoleTable(roles, extra []string, label func(int) string, rows [][]string) string {
	s, align := "| cell |", "|---|"
	for _, r := range append(append([]string{}, roles...), extra...) {
		s += " " + r + " |"
		align += "--:|"
	}
	s += "\n" + align + "\n"
	for i, cells := range rows {
		s += "| " + mdEscape(label(i)) + " |"
		for _, c := range cells {
			if c == "" {
				c = "–"
			}
			s += " " + c + " |"
		}
		s += "\n"
	}
	return s
}
