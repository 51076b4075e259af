package claims

import (
	"fmt"

	"github.com/rpcbench/rpcbench/results"
)

// C2: pulling consumers cost time.

// queueDelay is the responder-measured time from the caller's send to the
// handler's start (0 when the cell has none: excluded by ref's caller).
var queueDelay = metricFn{"queue_delay_p50_us", func(c *results.Cell) float64 {
	if c.QueueDelay == nil {
		return 0
	}
	return c.QueueDelay.P50
}}

// pullDrivers consume by polling the broker; the others have it push.
var pullDrivers = map[string]bool{"rocketmq": true, "kafka": true}

func judgeC2(d *data) finding {
	var f finding
	recorded := func(g *group) bool {
		for _, c := range g.cells {
			if c.QueueDelay == nil || c.QueueDelay.Count == 0 {
				return false
			}
		}
		return true
	}
	noDelay := 0
	for _, pt := range d.points(func(g *group) bool { return g.isBroker() && steady(g) && pullDrivers[g.driver] }) {
		at := func(keep func(g *group) bool) []*group {
			return d.find(func(g *group) bool { return g.point == pt && steady(g) && g.isBroker() && keep(g) })
		}
		for _, pull := range at(func(g *group) bool { return pullDrivers[g.driver] }) {
			for _, push := range at(func(g *group) bool { return !pullDrivers[g.driver] && durability(g.driver, g.variant) == "light" }) {
				if !recorded(pull) || !recorded(push) {
					noDelay++
					continue
				}
				f.comparisons = append(f.comparisons, ratio(fmt.Sprintf("queue delay p50 %s ÷ %s", pull.label(), push.name()), queueDelay, pull, push, 1, true))
			}
		}
	}
	if noDelay > 0 {
		f.notes = append(f.notes, fmt.Sprintf("%d pairs of cells without a queue delay (results from before it was recorded, or a remote responder)", noDelay))
	}
	if len(f.comparisons) == 0 {
		f.missing = append(f.missing, "no pull-based (rocketmq, kafka) and push-based light (nats core, rabbitmq transient) cells with a queue delay at the same load")
	}
	f.notes = append(f.notes, "queue delay: from the caller's send to the handler's start, measured by the responder on the same host's clock (network, broker queues, consumer polling)")
	return f
}
