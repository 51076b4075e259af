package main

import (
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/results"
	"github.com/rpcbench/rpcbench/scenarios"
)

// scenarioRecord is the results' record of the scenario a run resolved.
func scenarioRecord(sc *scenarios.Scenario) results.Scenario {
	r := results.Scenario{
		Name:                 sc.Name,
		Description:          sc.Description,
		Source:               sc.Source,
		Drivers:              make([]results.ScenarioDriver, len(sc.Drivers)),
		Payloads:             sc.Payloads,
		ResponseSize:         sc.ResponseSize,
		Concurrency:          sc.Concurrency,
		Rates:                sc.Rates,
		MaxInFlight:          sc.MaxInFlight,
		ServiceTimes:         make([]string, len(sc.ServiceTimes)),
		Duration:             sc.Duration.String(),
		Calls:                sc.Calls,
		Warmup:               sc.Warmup.String(),
		BrokerWarmup:         sc.BrokerWarmup.String(),
		Timeout:              sc.Timeout.String(),
		Repeat:               sc.Repeat,
		ResponderConcurrency: sc.ResponderConcurrency,
		Settle:               sc.Settle.String(),
	}
	for i, d := range sc.Drivers {
		r.Drivers[i] = results.ScenarioDriver{Name: d.Name, Variants: d.Variants, Options: d.Options}
		if d.Duration > 0 {
			r.Drivers[i].Duration = d.Duration.String()
		}
	}
	for i, st := range sc.ServiceTimes {
		r.ServiceTimes[i] = st.String()
	}
	if len(sc.Phases) > 0 {
		r.Phases = scenarios.PhasesString(sc.Phases)
	}
	for _, f := range sc.Faults {
		r.Faults = append(r.Faults, f.String())
	}
	if ch := sc.Chain; ch != nil {
		r.Chain = &results.ScenarioChain{Depth: ch.Depths, Mode: ch.Modes}
	}
	if nw := sc.Network; nw != nil {
		r.Network = &results.ScenarioNetwork{Jitter: nw.Jitter.String()}
		for _, d := range nw.OneWayDelay {
			r.Network.OneWayDelay = append(r.Network.OneWayDelay, d.String())
		}
	}
	return r
}

// assemble builds the results document of a run from what the runner
// measured.
func assemble(run *results.Run, out *runner.Outcome) {
	if out == nil {
		return
	}
	run.Cells = append(run.Cells, out.Cells...)
	run.Skipped = append(run.Skipped, out.Skipped...)
	run.Warmups = append(run.Warmups, out.Warmups...)
	run.Environment.Brokers = append(run.Environment.Brokers, out.Brokers...)
	run.Saturation = append(run.Saturation, out.Saturation...)
}
