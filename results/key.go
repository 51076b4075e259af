package results

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// CellKey names a cell's workload the same way in every run, repetition
// excluded: two cells have the same key exactly when they ran the same
// workload. It holds the driver, variant and options (the effective ones,
// defaults filled in, as the runner records them), the request and reply
// sizes, the load (concurrency; or rate and max_in_flight), the service
// time, the responder concurrency and, through a delay proxy, the hop
// delay, e.g.
//
//	tcp/mux connections=2 payload=64 response=64 concurrency=16 service=0 responder_concurrency=64
func CellKey(c *Cell) string {
	var b strings.Builder
	b.WriteString(c.Driver + "/" + c.Variant)
	for _, k := range slices.Sorted(maps.Keys(c.Options)) {
		b.WriteString(" " + k + "=" + c.Options[k])
	}
	b.WriteString(" payload=" + strconv.Itoa(c.Payload))
	b.WriteString(" response=" + strconv.Itoa(c.ResponseSize))
	if c.Mode == "open" {
		b.WriteString(" rate=" + strconv.FormatFloat(c.Rate, 'f', -1, 64))
		b.WriteString(" max_in_flight=" + strconv.Itoa(c.Concurrency))
		if c.Phases != "" {
			b.WriteString(" phases=" + c.Phases)
		}
	} else {
		b.WriteString(" concurrency=" + strconv.Itoa(c.Concurrency))
	}
	service := c.ServiceTime
	if service == "" {
		service = "0"
	}
	b.WriteString(" service=" + service)
	b.WriteString(" responder_concurrency=" + strconv.Itoa(c.ResponderConcurrency))
	if c.Chain != nil {
		b.WriteString(" chain=" + strconv.Itoa(c.Chain.Depth) + "/" + c.Chain.Mode)
	}
	if c.Hop != nil {
		b.WriteString(" one_way_delay=" + c.Hop.OneWayDelay)
		if c.Hop.Jitter != "" && c.Hop.Jitter != "0s" {
			b.WriteString(" jitter=" + c.Hop.Jitter)
		}
	}
	return b.String()
}
