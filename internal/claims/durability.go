package claims

import (
	"fmt"
	"strings"
)

// C3: each MQ driver's durable variants against its light one.

// durablePairs are the light and durable variants compared, per driver.
// RabbitMQ's are matched on the reply pattern (the part before "/").
var durablePairs = []struct{ driver, light, heavy string }{
	{"nats", "core", "jetstream"},
	{"rabbitmq", "reply-queue/transient", "reply-queue/persistent"},
	{"rabbitmq", "reply-queue/transient", "reply-queue/quorum"},
	{"rabbitmq", "direct-reply-to/transient", "direct-reply-to/persistent"},
	{"rabbitmq", "direct-reply-to/transient", "direct-reply-to/quorum"},
	{"rocketmq", "async-flush", "sync-flush"},
	{"kafka", "acks-leader", "acks-all"},
	{"kafka", "acks-leader", "sync-flush"},
}

func judgeC3(d *data) finding {
	var f finding
	drivers := map[string]bool{}
	for _, p := range durablePairs {
		if !d.has(p.driver, p.light) || !d.has(p.driver, p.heavy) {
			continue
		}
		drivers[p.driver] = true
		for _, pt := range d.points(func(g *group) bool { return g.driver == p.driver && g.variant == p.heavy && steady(g) }) {
			at := func(v string) *group {
				gs := d.find(func(g *group) bool { return g.driver == p.driver && g.variant == v && g.point == pt && steady(g) })
				if len(gs) == 0 {
					return nil
				}
				return gs[0]
			}
			light, heavy := at(p.light), at(p.heavy)
			if light == nil || heavy == nil {
				continue
			}
			f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("p99 %s ÷ %s", heavy.label(), light.variant), p99, heavy, light, 1, true))
			if c := light.first(); c.Mode == "closed" && c.Concurrency > 1 {
				f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("throughput %s ÷ %s", light.label(), heavy.variant), throughput, light, heavy, 1, true))
			}
		}
		for _, sl := range d.saturations(p.driver, p.light) {
			for _, sh := range d.saturations(p.driver, p.heavy) {
				l, h := sl.s.MaxSustainableRate, sh.s.MaxSustainableRate
				if l == nil || h == nil {
					f.notes = append(f.notes, fmt.Sprintf("R* of %s/%s or %s: not found (%s)", p.driver, p.light, p.heavy, joinNonEmpty("; ", sl.s.Reason, sh.s.Reason)))
					continue
				}
				f.comparisons = append(f.comparisons, single(fmt.Sprintf("R* %s/%s ÷ %s", p.driver, p.light, p.heavy), "max_sustainable_rate ratio", *l, *h, 1, 0.1))
			}
		}
	}
	for _, drv := range brokerDrivers {
		if drivers[drv] {
			continue
		}
		var want []string
		for _, p := range durablePairs {
			if p.driver == drv {
				for _, v := range []string{p.light, p.heavy} {
					if !d.has(drv, v) && !strings.Contains(strings.Join(want, "|"), v) {
						want = append(want, v)
					}
				}
			}
		}
		if d.has(drv, "") || d.skipped[drv] != "" || d.skippedAnyVariant(drv) {
			f.missing = append(f.missing, fmt.Sprintf("%s: no light and durable variant measured at the same load (%s)", drv, d.missing(drv, strings.Join(want, " or "))))
		}
	}
	if len(drivers) == 0 && len(f.missing) == 0 {
		f.missing = append(f.missing, "no MQ driver with both a light and a durable variant in the data")
	}
	return f
}
