package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// The prose of the reports: the headline, the direct-against-broker and
// cost sentences, the generator notes, what was left out and the
// environment line.

// headline says in one sentence what was compared and what won.
func (m *model) headline() string {
	var ok []*row
	anyOK := false
	for _, r := range m.rows {
		if r.rankable() {
			ok = append(ok, r)
		}
		anyOK = anyOK || r.ok()
	}
	if len(ok) == 0 {
		switch {
		case len(m.rows) == 0:
			return "No cells were measured."
		case anyOK:
			return fmt.Sprintf("None of the %d cells can be ranked: each failed more than %.1f%% of its calls, was cut short or was generator-limited.", len(m.rows), 100*results.MaxErrorRate)
		}
		return fmt.Sprintf("None of the %d cells measured a successful call.", len(m.rows))
	}
	names := m.driverNames(ok)
	if m.multiRun() {
		names[len(names)-1] += fmt.Sprintf(" from %d runs", len(m.runs))
	}
	if len(ok) == 1 {
		r := ok[0]
		return fmt.Sprintf("Measured %s at %s: p50 %s, p99 %s, %s calls/s.", r.label, r.point(), formatMicros(r.lat.P50), formatMicros(r.lat.P99), formatRate(r.throughput))
	}
	var pts []point
	for _, p := range m.points {
		if len(okAt(ok, p)) > 0 {
			pts = append(pts, p)
		}
	}
	if len(pts) == 1 {
		rs := okAt(ok, pts[0])
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].lat.P99 < rs[j].lat.P99 })
		if len(rs) == 1 {
			return fmt.Sprintf("Measured %s at %s: p99 %s.", rs[0].label, pts[0], formatMicros(rs[0].lat.P99))
		}
		return fmt.Sprintf("Compared %s at %s: %s won with the lowest p99 latency, %s against %s for %s, the next best.",
			joinAnd(names), pts[0], rs[0].label, formatMicros(rs[0].lat.P99), formatMicros(rs[1].lat.P99), rs[1].label)
	}
	wins := map[string]int{}
	compared := 0
	for _, p := range pts {
		rs := okAt(ok, p)
		if len(rs) < 2 {
			continue
		}
		compared++
		best := rs[0]
		for _, r := range rs[1:] {
			if r.lat.P99 < best.lat.P99 {
				best = r
			}
		}
		wins[best.config]++
	}
	if compared == 0 {
		return fmt.Sprintf("Measured %s over %d load points (%s); no load point has two drivers to compare.", joinAnd(names), len(pts), m.dimensions())
	}
	type w struct {
		cfg string
		n   int
	}
	var ws []w
	for c, n := range wins {
		ws = append(ws, w{c, n})
	}
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].n != ws[j].n {
			return ws[i].n > ws[j].n
		}
		return m.cfgIdx[ws[i].cfg] < m.cfgIdx[ws[j].cfg]
	})
	var parts []string
	for i, x := range ws {
		switch {
		case i == 0 && x.n == compared && compared == len(pts):
			parts = append(parts, fmt.Sprintf("%s had the lowest p99 latency at every one", m.cfgName[x.cfg]))
		case i == 0:
			parts = append(parts, fmt.Sprintf("%s had the lowest p99 latency at %d of %d", m.cfgName[x.cfg], x.n, compared))
		default:
			parts = append(parts, fmt.Sprintf("%s at %d", m.cfgName[x.cfg], x.n))
		}
	}
	if len(parts) > 3 {
		parts = append(parts[:3], "others at the rest")
	}
	return fmt.Sprintf("Compared %s over %d load points (%s): %s.", joinAnd(names), len(pts), m.dimensions(), joinAnd(parts))
}

// directVsBroker is a second sentence when both kinds ran: how far the
// fastest broker driver is from the fastest direct RPC at the median point.
func (m *model) directVsBroker() string {
	var ratios []float64
	for _, p := range m.points {
		var bestD, bestB float64
		for _, r := range m.rowsAt(p) {
			if !r.rankable() {
				continue
			}
			switch r.kind {
			case "direct":
				if bestD == 0 || r.lat.P99 < bestD {
					bestD = r.lat.P99
				}
			case "broker":
				if bestB == 0 || r.lat.P99 < bestB {
					bestB = r.lat.P99
				}
			}
		}
		if bestD > 0 && bestB > 0 {
			ratios = append(ratios, bestB/bestD)
		}
	}
	if len(ratios) == 0 {
		return ""
	}
	sort.Float64s(ratios)
	med := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		med = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
	}
	if len(ratios) == 1 {
		return fmt.Sprintf("The fastest message-queue driver's p99 was %s that of the fastest direct RPC.", formatRatio(med))
	}
	return fmt.Sprintf("At the median load point the fastest message-queue driver's p99 was %s that of the fastest direct RPC (range %s to %s over %d points).",
		formatRatio(med), formatRatio(ratios[0]), formatRatio(ratios[len(ratios)-1]), len(ratios))
}

// mqCosts says, for each message-queue driver configuration, what carrying
// RPC over it cost here: its p50 and throughput relative to the fastest
// direct driver at the same load point, with the broker's version and
// source ("" when no point has both).
func (m *model) mqCosts() string {
	type point2 struct {
		p         point
		p50, tput float64
	}
	var order []string
	per := map[string][]string{}
	for _, p := range m.points {
		var bestP50, bestTput float64
		for _, r := range m.rowsAt(p) {
			if r.kind != "direct" || !r.rankable() {
				continue
			}
			if bestP50 == 0 || r.lat.P50 < bestP50 {
				bestP50 = r.lat.P50
			}
			bestTput = max(bestTput, r.throughput)
		}
		if bestP50 <= 0 || bestTput <= 0 {
			continue
		}
		for _, r := range m.rowsAt(p) {
			if r.kind != "broker" || !r.rankable() {
				continue
			}
			if _, ok := per[r.config]; !ok {
				order = append(order, r.config)
			}
			per[r.config] = append(per[r.config], fmt.Sprintf("%s p50 %s, throughput %s", formatLoad(r.mode, r.concurrency, r.rate),
				formatRatio(r.lat.P50/bestP50), formatRatio(r.throughput/bestTput)))
		}
	}
	if len(order) == 0 {
		return ""
	}
	var parts []string
	for _, cfg := range order {
		label := m.cfgName[cfg]
		if b := m.brokerOf(cfg); b != "" {
			label += " (" + b + ")"
		}
		parts = append(parts, label+": "+strings.Join(per[cfg], "; "))
	}
	return "What RPC over a message queue cost here, against the fastest direct RPC at the same load: " + strings.Join(parts, ". ") + "."
}

// brokerOf names the broker, version and source a configuration's cells
// ran on.
func (m *model) brokerOf(cfg string) string {
	for _, r := range m.rows {
		if r.config != cfg || len(r.reps) == 0 {
			continue
		}
		c := r.reps[0]
		for _, b := range m.runs[r.run].Environment.Brokers {
			if b.Kind == c.Driver || strings.HasPrefix(c.Broker, b.Kind+" ") {
				s := b.Kind
				if b.Version != "" {
					s += " " + b.Version
				}
				if b.Source != "" {
					s += ", " + b.Source
				}
				return s
			}
		}
		return c.Broker
	}
	return ""
}

// generatorLines describes the open-loop generator's own lateness for
// every open-loop row: never part of the latency, shown so a reader can
// judge the load that was offered.
func (m *model) generatorLines() []string {
	var out []string
	for _, r := range m.rows {
		if r.mode != "open" {
			continue
		}
		for _, c := range r.reps {
			g := c.Generator
			if g == nil {
				continue
			}
			line := fmt.Sprintf("%s at %s: generator lateness p50 %s, p99 %s, %d of %d calls over 1 ms late (bounds: p99 %s, 1%%)",
				r.label, r.point(), formatMicros(g.Lateness.P50), formatMicros(g.Lateness.P99), c.Counts.Late, c.Counts.Started, formatMicros(g.BoundP99US))
			if g.Limited {
				line += ": generator-limited"
			}
			if len(r.reps) > 1 {
				line += fmt.Sprintf(" (repetition %d)", c.Repetition)
			}
			out = append(out, line)
		}
	}
	return out
}

// leftOut names the cells kept out of the headline, rankings and ratios,
// and why ("" when none was).
func (m *model) leftOut() string {
	var parts []string
	for _, r := range m.rows {
		if !r.ok() {
			continue
		}
		if why := r.leftOutWhy(); why != "" {
			parts = append(parts, fmt.Sprintf("%s at %s (%s)", r.label, r.point(), why))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	if len(parts) > 6 {
		parts = append(parts[:6], fmt.Sprintf("%d more", len(parts)-6))
	}
	return fmt.Sprintf("Left out of the headline, rankings and ratios (more than %.1f%% of calls failed, generator-limited or cut short): %s.", 100*results.MaxErrorRate, strings.Join(parts, "; "))
}

func okAt(rows []*row, p point) []*row {
	var out []*row
	for _, r := range rows {
		if r.point() == p {
			out = append(out, r)
		}
	}
	return out
}

// driverNames lists the driver configurations among rows, each once
// whatever run it came from.
func (m *model) driverNames(rows []*row) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range m.configs {
		for _, r := range rows {
			if r.config != c {
				continue
			}
			n := driverLabel(r.driver, r.variant)
			if o := results.OptionsString(r.options); o != "" && strings.Contains(r.label, "[") {
				n += " [" + o + "]"
			}
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	if len(out) > 6 {
		out = append(out[:5], fmt.Sprintf("%d more", len(out)-5))
	}
	return out
}

// dimensions describes what varies across the points: "payloads 64 B and
// 1 KiB; concurrency 1, 8 and 64".
func (m *model) dimensions() string {
	var pl []int
	var conc []int
	var rates []float64
	var sv []string
	seenP, seenC, seenR, seenS := map[int]bool{}, map[int]bool{}, map[float64]bool{}, map[string]bool{}
	for _, p := range m.points {
		if !seenP[p.payload] {
			seenP[p.payload] = true
			pl = append(pl, p.payload)
		}
		if p.mode == "open" {
			if !seenR[p.rate] {
				seenR[p.rate] = true
				rates = append(rates, p.rate)
			}
		} else if !seenC[p.concurrency] {
			seenC[p.concurrency] = true
			conc = append(conc, p.concurrency)
		}
		if !seenS[p.service] {
			seenS[p.service] = true
			sv = append(sv, p.service)
		}
	}
	sort.Ints(pl)
	sort.Ints(conc)
	sort.Float64s(rates)
	var parts []string
	if len(pl) > 1 {
		var s []string
		for _, n := range pl {
			s = append(s, formatBytes(n))
		}
		parts = append(parts, "payloads "+joinAnd(s))
	}
	if len(conc) > 1 || (len(conc) == 1 && len(rates) > 0) {
		var s []string
		for _, c := range conc {
			s = append(s, strconv.Itoa(c))
		}
		parts = append(parts, "concurrency "+joinAnd(s))
	}
	if len(rates) > 1 || (len(rates) == 1 && len(conc) > 0) {
		var s []string
		for _, r := range rates {
			s = append(s, strconv.FormatFloat(r, 'f', -1, 64))
		}
		parts = append(parts, "rates "+joinAnd(s)+" calls/s")
	}
	if len(sv) > 1 {
		parts = append(parts, "service times "+joinAnd(sv))
	}
	if len(parts) == 0 {
		return m.points[0].String()
	}
	return strings.Join(parts, "; ")
}

// environmentLine is a one-line, link-free description of a run's machine.
func environmentLine(run *results.Run) string {
	e := run.Environment
	var parts []string
	v := e.RpcbenchVersion
	if v == "" {
		v = "unknown version"
	}
	if e.Commit != "" && e.Commit != "unknown" {
		c := e.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		v += " (" + c + ")"
	}
	parts = append(parts, "rpcbench "+v)
	if e.GoVersion != "" {
		parts = append(parts, e.GoVersion)
	}
	if e.OS != "" || e.Arch != "" {
		parts = append(parts, e.OS+"/"+e.Arch)
	}
	if e.Kernel != "" {
		parts = append(parts, "kernel "+e.Kernel)
	}
	cpu := e.CPUModel
	if e.Cores > 0 {
		if cpu != "" {
			cpu += ", "
		}
		cpu += strconv.Itoa(e.Cores) + " cores"
	}
	if e.GOMAXPROCS > 0 {
		cpu += ", GOMAXPROCS " + strconv.Itoa(e.GOMAXPROCS)
	}
	if cpu != "" {
		parts = append(parts, strings.TrimPrefix(cpu, ", "))
	}
	for _, b := range e.Brokers {
		s := b.Kind
		if b.Version != "" {
			s += " " + b.Version
		}
		if b.Source != "" {
			s += " (" + b.Source + ")"
		}
		parts = append(parts, "broker "+s)
	}
	return strings.Join(parts, " · ")
}
