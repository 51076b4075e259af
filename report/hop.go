package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rpcbench/rpcbench/results"
)

// hopRow is one cell configuration measured at several one-way delays:
// the slope of its p50 against the delay is the number of one-way
// traversals on one call's critical path (about 2 for direct RPC, 4
// through a broker).
type hopRow struct {
	Label  string
	Points string // "0s: 31.2 µs, 250µs: 551 µs, ..."
	Slope  string
}

// hops lists, per configuration run at two or more delays, p50 against
// the one-way delay and its least-squares slope.
func (m *model) hops() []hopRow {
	type group struct {
		label string
		xs    []float64 // delay, µs
		ys    []float64 // p50, µs
		names []string
	}
	groups := map[string]*group{}
	var order []string
	for _, r := range m.rows {
		d, ok := r.options["hop"]
		if !ok || !r.ok() {
			continue
		}
		rest := maps.Clone(r.options)
		delete(rest, "hop")
		delay, err := time.ParseDuration(strings.SplitN(d, "±", 2)[0])
		if err != nil {
			continue
		}
		key := fmt.Sprintf("%d|%s|%s|%s|%d|%s|%s", r.run, r.driver, r.variant, results.OptionsString(rest), r.payload, formatLoad(r.mode, r.concurrency, r.rate), r.service)
		g := groups[key]
		if g == nil {
			lbl := driverLabel(r.driver, r.variant) + optionsSuffix(rest) + " · " + formatBytes(r.payload) + " · " + formatLoad(r.mode, r.concurrency, r.rate)
			if r.service != "" && r.service != "0" {
				lbl += " · service " + r.service
			}
			g = &group{label: lbl}
			groups[key] = g
			order = append(order, key)
		}
		g.xs = append(g.xs, float64(delay)/1e3)
		g.ys = append(g.ys, r.lat.P50)
		g.names = append(g.names, d)
	}
	var out []hopRow
	for _, k := range order {
		g := groups[k]
		if len(g.xs) < 2 {
			continue
		}
		idx := make([]int, len(g.xs))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return int(g.xs[a] - g.xs[b]) })
		var pts []string
		for _, i := range idx {
			pts = append(pts, g.names[i]+": "+formatMicros(g.ys[i]))
		}
		hr := hopRow{Label: g.label, Points: strings.Join(pts, ", ")}
		if s, ok := slope(g.xs, g.ys); ok {
			hr.Slope = fmt.Sprintf("%.2f", s)
		} else {
			hr.Slope = "–"
		}
		out = append(out, hr)
	}
	return out
}

// slope is the least-squares slope of ys against xs; false when the xs
// do not vary.
func slope(xs, ys []float64) (float64, bool) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
		sxx, sxy = sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, false
	}
	return (n*sxy - sx*sy) / den, true
}
