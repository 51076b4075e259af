package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/scenarios"
)

// overrideFlags are the run flags that override scenario values.
var overrideFlags = []string{"drivers", "duration", "warmup", "broker-warmup", "concurrency", "rate", "payload", "service-time", "repeat", "timeout", "calls", "responder-concurrency", "settle", "fault"}

// givenFlags names the override flags given on the command line, so that
// --repeat 0 or --duration "" is checked (and refused) rather than taken
// for "not given".
func givenFlags(cmd *cobra.Command) map[string]bool {
	set := map[string]bool{}
	for _, name := range overrideFlags {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			set[name] = true
		}
	}
	return set
}

// checkUnits refuses two units of the same driver, variant and effective
// options (each Transport's Config has every default filled in), naming
// the scenario lines: their cells would run twice and be taken for
// repetitions.
func checkUnits(sc *scenarios.Scenario, units []runner.Unit) error {
	origin := unitOrigins(sc, units)
	for i, u := range units {
		spec, cfg := u.Driver.Spec(), u.Config()
		for j := range i {
			p := units[j]
			if p.Driver.Spec().Name == spec.Name && p.Config().Variant == cfg.Variant && maps.Equal(p.Config().Options, cfg.Options) {
				where := sc.Source
				if d := origin[i]; d >= 0 {
					where = fmt.Sprintf("%s:%d: drivers[%d]", sc.Source, sc.Drivers[d].Line, d)
				}
				prev := "another entry"
				if d := origin[j]; d >= 0 {
					prev = fmt.Sprintf("line %d (drivers[%d])", sc.Drivers[d].Line, d)
				}
				return usageErr("%s: %s/%s with options %s is already listed at %s (the same options once defaults are filled in): its cells would run twice; list it once, or give different options",
					where, spec.Name, cfg.Variant, formatOptions(cfg.Options), prev)
			}
		}
	}
	return nil
}

// unitOrigins maps each unit to the index of the scenario's driver entry
// it comes from (runner.Resolve keeps their order), -1 when unknown.
func unitOrigins(sc *scenarios.Scenario, units []runner.Unit) []int {
	origin := make([]int, len(units))
	for i := range origin {
		origin[i] = -1
	}
	k := 0
	for d, ds := range sc.Drivers {
		if k >= len(units) || units[k].Driver.Spec().Name != ds.Name {
			break
		}
		n := len(ds.Variants)
		if n == 0 {
			n = len(units[k].Driver.Spec().Variants)
		}
		for ; n > 0 && k < len(units); n-- {
			origin[k] = d
			k++
		}
	}
	return origin
}

func formatOptions(o map[string]string) string {
	if len(o) == 0 {
		return "(none)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(o)) {
		parts = append(parts, k+"="+o[k])
	}
	return strings.Join(parts, ",")
}

// checkTarget checks --target before anything runs: the address `rpcbench
// serve` printed, which each driver parses itself (a direct driver's
// responder is at HOST:PORT; a broker driver's is its broker's URL and a
// queue or subject).
func checkTarget(target string, units []runner.Unit) error {
	if target == "" || len(units) == 0 {
		return nil
	}
	u := units[0]
	spec := u.Driver.Spec()
	if spec.Kind == drivers.Broker {
		url, _, _ := strings.Cut(target, "#")
		if err := broker.CheckURL(spec.Broker, url); err != nil {
			return usageErr("--target %s: %v", broker.Redact(target), err)
		}
	}
	if err := u.Transport.CheckTarget(target); err != nil {
		return usageErr("--target %s: %s: %v", broker.Redact(target), spec.Name, err)
	}
	return nil
}
