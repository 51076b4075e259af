package runner

import (
	"context"

	"fmt"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
	"github.com/rpcbench/rpcbench/scenarios"
)

// MemoryBudget is the most memory the core lets one cell's load take (its
// callers' buffers and stacks and its histograms; a driver's own memory
// comes on top). A scenario beyond it is refused before anything runs.
const MemoryBudget = 8 << 30

// workerStack is what one worker goroutine is counted for besides its
// buffers: its stack and its driver caller, roughly.
const workerStack = 16 << 10

// MemoryEstimate is what the core allocates for one cell of load, in bytes.
func MemoryEstimate(load Load) int64 {
	reply := load.Payload
	if load.ResponseSize > 0 {
		reply = load.ResponseSize
	}
	perWorker := int64(wire.MaxRequestLen(load.Payload)+wire.MaxReplyLen(reply)) + workerStack
	hist := hdrhistogram.New(results.HistMin, HistMax(load.Timeout), results.HistDigits).ByteSize()
	sec := hdrhistogram.New(results.HistMin, HistMax(load.Timeout), secondHistDigits).ByteSize()
	perShard := int64(6*hist + sec)
	shards := int64(min(load.Concurrency, MaxShards)) + 1
	return int64(load.Concurrency)*perWorker + shards*perShard + int64(load.Payload+reply)
}

// Check refuses, before anything starts, the cells a run cannot measure
// honestly: messages beyond a driver's declared limits, or a load beyond
// the memory budget. Errors name the driver, the cell and what would fix
// it.
func Check(ctx context.Context, sc *scenarios.Scenario, units []Unit) error {
	for _, u := range units {
		if err := checkLimits(ctx, sc, u, ""); err != nil {
			return err
		}
	}
	for _, u := range units[:min(len(units), 1)] {
		for _, cp := range cellPlans(sc, u) {
			if m := MemoryEstimate(cp.load); m > MemoryBudget {
				return fmt.Errorf("%s: a cell with %d callers of %d-byte calls needs about %.1f GiB for its callers' buffers and histograms, over the %d GiB budget: lower concurrency, max_in_flight or the payload", sc.Source, cp.load.Concurrency, cp.load.Payload, float64(m)/(1<<30), MemoryBudget>>30)
			}
		}
	}
	return nil
}

// checkLimits compares the scenario's largest messages with the unit's
// limits (at the broker at brokerURL when it is known).
func checkLimits(ctx context.Context, sc *scenarios.Scenario, u Unit, brokerURL string) error {
	lim := u.Transport.Limits(ctx, brokerURL)
	name := u.Driver.Spec().Name + "/" + u.Config().Variant
	for _, p := range sc.Payloads {
		reply := p
		if sc.ResponseSize > 0 {
			reply = sc.ResponseSize
		}
		if lim.MaxRequest > 0 && wire.MaxRequestLen(p) > lim.MaxRequest {
			return fmt.Errorf("%s: %s carries requests of at most %s; payload %s does not fit (lower payloads or --payload)", sc.Source, name, size(lim.MaxRequest-(wire.MaxRequestLen(0))), size(p))
		}
		if lim.MaxReply > 0 && wire.MaxReplyLen(reply) > lim.MaxReply {
			return fmt.Errorf("%s: %s carries replies of at most %s; response size %s does not fit (lower response_size, payloads or --payload)", sc.Source, name, size(lim.MaxReply-(wire.MaxReplyLen(0))), size(reply))
		}
	}
	return nil
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.4g MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.4g KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
