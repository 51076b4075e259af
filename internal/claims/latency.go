package claims

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// The latency and throughput claims: C1 (MQ p50 vs tcp at one caller),
// C8 (direct wins every request-reply cell), C9 (HTTP encodings and
// connections, gRPC), C11 (RabbitMQ vs RocketMQ).

// brokerDrivers are the MQ-RPC drivers.
var brokerDrivers = []string{"nats", "rabbitmq", "rocketmq", "kafka"}

// steady reports whether g is a plain request-reply cell: no faults, no
// burst phases.
func steady(g *group) bool {
	c := g.first()
	return c.Faults == nil && c.Phases == ""
}

func (g *group) isBroker() bool { return g.kind == "broker" }
func (g *group) isDirect() bool { return g.kind == "direct" }

// points lists the load points of the groups kept, in data order.
func (d *data) points(keep func(g *group) bool) []string {
	var out []string
	for _, g := range d.groups {
		if keep(g) && !slices.Contains(out, g.point) {
			out = append(out, g.point)
		}
	}
	return out
}

// best is the group of gs with the best mean of m (lowest when low) among
// those that can be used; when none can, the first (its comparison says
// why it cannot be used).
func best(gs []*group, m metricFn, low bool) *group {
	var pick *group
	var pickMean float64
	for _, g := range gs {
		r, vals, why := g.ref(m)
		if why != "" || len(vals) == 0 {
			continue
		}
		if pick == nil || (low && r.Mean < pickMean) || (!low && r.Mean > pickMean) {
			pick, pickMean = g, r.Mean
		}
	}
	if pick == nil && len(gs) > 0 {
		return gs[0]
	}
	return pick
}

// missingBrokers lists the MQ drivers the runs skipped, or all of them
// when none is in the data.
func (d *data) missingBrokers(f *finding, wanted ...string) {
	if len(wanted) == 0 {
		wanted = brokerDrivers
	}
	anyIn := false
	for _, drv := range wanted {
		if d.has(drv, "") {
			anyIn = true
			continue
		}
		if _, skipped := d.skipped[drv]; skipped || d.skippedAnyVariant(drv) {
			f.missing = append(f.missing, d.missing(drv, ""))
		}
	}
	if !anyIn {
		f.missing = append(f.missing, "no MQ driver ("+strings.Join(wanted, ", ")+") in the data")
	}
}

func (d *data) skippedAnyVariant(driver string) bool {
	for k := range d.skipped {
		if strings.HasPrefix(k, driver+"/") {
			return true
		}
	}
	return false
}

func judgeC1(d *data) finding {
	var f finding
	bases := d.find(func(g *group) bool {
		return g.driver == "tcp" && steady(g) && g.closed() && g.first().Concurrency == 1
	})
	if len(bases) == 0 {
		f.missing = append(f.missing, d.missing("tcp", "")+" at concurrency 1")
	}
	noSegs := 0
	for _, base := range bases {
		for _, g := range d.find(func(g *group) bool { return g.isBroker() && steady(g) && g.point == base.point }) {
			f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("p50 %s ÷ %s", g.label(), base.name()), p50, g, base, 2, true))
			if hasSegments(g) && hasSegments(base) {
				f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("TCP data segments per call %s ÷ %s", g.label(), base.name()), segments, g, base, 2, true))
			} else {
				noSegs++
			}
		}
	}
	d.missingBrokers(&f)
	if noSegs > 0 {
		f.notes = append(f.notes, fmt.Sprintf("network transfers per call: %d pairs of cells carry no TCP segment counts (results from before they were recorded): only their latency is judged", noSegs))
	}
	f.notes = append(f.notes, d.hopNotes...)
	if !d.anyHop {
		f.notes = append(f.notes, "loopback on one host flatters brokers (no network time per hop); no cells with injected hop delay in the data")
	}
	return f
}

// segments is the TCP data segments one call sent, summed over the roles
// (on one host a segment one role sends another receives): the network
// transfers per call.
var segments = metricFn{"tcp_segments_per_call", func(c *results.Cell) float64 {
	if c.Cost == nil {
		return 0
	}
	var n float64
	for _, f := range c.Cost.SegmentsPerCall {
		n += f.Sent
	}
	return n
}}

func hasSegments(g *group) bool {
	for _, c := range g.cells {
		if c.Cost == nil || len(c.Cost.SegmentsPerCall) == 0 {
			return false
		}
	}
	return true
}

func (d *data) hasHop() bool {
	return slices.ContainsFunc(d.groups, func(g *group) bool { return g.first().Hop != nil })
}

// hopSlopes are the p50 slopes against the one-way delay of the cell
// configurations measured at two delays or more: the one-way traversals
// on a call's critical path (about 2 for direct RPC).
func (d *data) hopSlopes() []string {
	type pt struct{ x, y float64 }
	lines := map[string][]pt{}
	var order []string
	for _, g := range d.groups {
		h := g.first().Hop
		if h == nil {
			continue
		}
		delay, err := parseDur(h.OneWayDelay)
		if err != nil {
			continue
		}
		r, vals, why := g.ref(p50)
		if why != "" || len(vals) == 0 {
			continue
		}
		base := strings.Replace(g.key, " one_way_delay="+h.OneWayDelay, "", 1)
		if _, ok := lines[base]; !ok {
			order = append(order, base)
		}
		lines[base] = append(lines[base], pt{delay.Seconds() * 1e6, r.Mean})
	}
	var out []string
	for _, k := range order {
		ps := lines[k]
		if len(ps) < 2 {
			continue
		}
		var mx, my float64
		for _, p := range ps {
			mx += p.x
			my += p.y
		}
		mx /= float64(len(ps))
		my /= float64(len(ps))
		var sxy, sxx float64
		for _, p := range ps {
			sxy += (p.x - mx) * (p.y - my)
			sxx += (p.x - mx) * (p.x - mx)
		}
		if sxx == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("hop delay slope %s: p50 grows %s µs per µs of one-way delay (one-way traversals on the critical path)", k, fmtNum(sxy/sxx)))
	}
	return out
}

func judgeC8(d *data) finding {
	var f finding
	for _, pt := range d.points(func(g *group) bool { return g.isBroker() && steady(g) }) {
		at := func(keep func(g *group) bool) []*group {
			return d.find(func(g *group) bool { return g.point == pt && steady(g) && keep(g) })
		}
		directs := at((*group).isDirect)
		if len(directs) == 0 {
			continue
		}
		dl := best(directs, p50, true)
		for _, g := range at((*group).isBroker) {
			f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("p50 %s ÷ %s", g.label(), dl.name()), p50, g, dl, 1, true))
		}
		if !directs[0].closed() {
			continue // in open loop throughput is the offered rate
		}
		dt := best(directs, throughput, false)
		for _, g := range at((*group).isBroker) {
			f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("throughput %s ÷ %s", dt.label(), g.name()), throughput, dt, g, 1, true))
		}
	}
	if !slices.ContainsFunc(d.groups, func(g *group) bool { return g.isDirect() && steady(g) }) {
		f.missing = append(f.missing, "no direct driver in the data")
	}
	d.missingBrokers(&f)
	if len(f.comparisons) == 0 && len(f.missing) == 0 {
		f.missing = append(f.missing, "no load point with both a direct and an MQ driver")
	}
	return f
}

func judgeC9(d *data) finding {
	var f finding
	pairs := []struct {
		what             string
		fastDrv, fastVar string
		slowDrv, slowVar string
	}{
		{"binary body vs JSON over HTTP/1.1 keep-alive", "http", "binary", "http", "json"},
		{"keep-alive JSON vs a new connection per call", "http", "json", "http", "json-new-conn"},
		{"gRPC (protobuf, HTTP/2) vs HTTP/1.1 JSON", "grpc", "unary", "http", "json"},
	}
	for _, p := range pairs {
		found := false
		for _, pt := range d.points(func(g *group) bool { return g.driver == p.slowDrv && g.variant == p.slowVar && steady(g) }) {
			at := func(drv, v string) *group {
				gs := d.find(func(g *group) bool { return g.point == pt && g.driver == drv && g.variant == v && steady(g) })
				if len(gs) == 0 {
					return nil
				}
				return gs[0]
			}
			fast, slow := at(p.fastDrv, p.fastVar), at(p.slowDrv, p.slowVar)
			if fast == nil || slow == nil {
				continue
			}
			found = true
			f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("%s: p50 %s ÷ %s", p.what, slow.label(), fast.name()), p50, slow, fast, 1, true))
			if fast.closed() {
				f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("%s: throughput %s ÷ %s", p.what, fast.label(), slow.name()), throughput, fast, slow, 1, true))
			}
		}
		if !found {
			for _, nv := range [][2]string{{p.fastDrv, p.fastVar}, {p.slowDrv, p.slowVar}} {
				if !d.has(nv[0], nv[1]) {
					if m := d.missing(nv[0], nv[1]); !slices.Contains(f.missing, m) {
						f.missing = append(f.missing, m)
					}
				}
			}
		}
	}
	f.notes = append(f.notes, "each ratio is how much faster the binary, long-lived or gRPC side is (1.5 = 50% faster)")
	return f
}

// durable classes the variants of the MQ drivers: "light" (nothing stored
// before the reply, or written without fsync), "durable" (stored and
// acknowledged or flushed), "" (neither, e.g. nats core+stream-copy).
func durability(driver, variant string) string {
	switch driver {
	case "nats":
		switch variant {
		case "core":
			return "light"
		case "jetstream":
			return "durable"
		}
	case "rabbitmq":
		switch {
		case strings.HasSuffix(variant, "/transient"):
			return "light"
		case strings.HasSuffix(variant, "/persistent"), strings.HasSuffix(variant, "/quorum"):
			return "durable"
		}
	case "rocketmq":
		switch variant {
		case "async-flush":
			return "light"
		case "sync-flush":
			return "durable"
		}
	case "kafka":
		switch variant {
		case "acks-leader":
			return "light"
		case "acks-all", "sync-flush":
			return "durable"
		}
	}
	return ""
}

func judgeC11(d *data) finding {
	var f finding
	for _, drv := range []string{"rabbitmq", "rocketmq"} {
		if !d.has(drv, "") {
			f.missing = append(f.missing, d.missing(drv, ""))
		}
	}
	if len(f.missing) > 0 {
		return f
	}
	for _, class := range []string{"light", "durable"} {
		of := func(drv, pt string) []*group {
			return d.find(func(g *group) bool {
				return g.driver == drv && g.point == pt && steady(g) && durability(g.driver, g.variant) == class
			})
		}
		// the closed-loop point with the highest concurrency above one
		// that both have (one caller's throughput is its latency's
		// inverse: no evidence of its own)
		var topConc string
		top, compared := 1, false
		for _, pt := range d.points(func(g *group) bool { return g.driver == "rabbitmq" && steady(g) }) {
			rab, roc := of("rabbitmq", pt), of("rocketmq", pt)
			if len(rab) == 0 || len(roc) == 0 {
				continue
			}
			a, b := best(rab, p50, true), best(roc, p50, true)
			f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("%s: p50 %s ÷ %s", class, b.label(), a.name()), p50, b, a, 1, true))
			compared = true
			if c := rab[0].first(); c.Mode == "closed" && c.Concurrency > top {
				top, topConc = c.Concurrency, pt
			}
		}
		if topConc != "" {
			a, b := best(of("rabbitmq", topConc), throughput, false), best(of("rocketmq", topConc), throughput, false)
			f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("%s: throughput %s ÷ %s", class, b.label(), a.name()), throughput, b, a, 1, true))
		} else if d.delayed && compared {
			f.delayNotes = append(f.delayNotes, class+": throughput not judged at this delay: its cells run one caller, whose throughput is its latency's inverse")
		}
	}
	rstar := func(drv string) (float64, string) {
		bestR, name := 0.0, ""
		for _, s := range d.saturations(drv, "") {
			if s.s.MaxSustainableRate != nil && *s.s.MaxSustainableRate > bestR {
				bestR, name = *s.s.MaxSustainableRate, drv+"/"+s.s.Variant
			}
		}
		return bestR, name
	}
	if ra, na := rstar("rabbitmq"); ra > 0 {
		if rb, nb := rstar("rocketmq"); rb > 0 {
			f.comparisons = append(f.comparisons, single(fmt.Sprintf("R* %s ÷ %s", nb, na), "max_sustainable_rate ratio", rb, ra, 1, 0.1))
		}
	}
	return f
}
