package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/scenarios"
)

// overrideFlags are the run flags that override scenario values.
var overrideFlags = []string{"drivers", "duration", "warmup", "broker-warmup", "concurrency", "rate", "payload", "service-time", "repeat", "timeout", "calls", "responder-concurrency", "settle"}

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

// effectiveUnits fills every driver option's default into each unit's
// options (numbers and booleans in their canonical form), so that results
// record the options a cell ran with and cells that ran the same workload
// have the same key however their options were written. Two units of the
// same driver, variant and effective options are an error naming the
// scenario lines: their cells would run twice and be taken for
// repetitions.
func effectiveUnits(sc *scenarios.Scenario, units []runner.Unit) ([]runner.Unit, error) {
	origin := unitOrigins(sc, units)
	out := make([]runner.Unit, len(units))
	for i, u := range units {
		spec := u.Driver.Spec()
		opts := map[string]string{}
		for _, o := range spec.Options {
			opts[o.Name] = canonicalOption(drivers.OptionValue(spec, u.Config, o.Name))
		}
		for k, v := range u.Config.Options { // unknown ones: Validate refused them already
			if _, ok := opts[k]; !ok {
				opts[k] = v
			}
		}
		cfg := u.Config
		cfg.Options = opts
		if len(opts) == 0 {
			cfg.Options = nil
		}
		if err := u.Driver.Validate(cfg); err != nil {
			cfg = u.Config // the canonical form is refused: keep the options as given
		}
		u.Config = cfg
		out[i] = u
		for j := range i {
			p := out[j]
			if p.Driver.Spec().Name == spec.Name && p.Config.Variant == cfg.Variant && maps.Equal(p.Config.Options, cfg.Options) {
				where := sc.Source
				if d := origin[i]; d >= 0 {
					where = fmt.Sprintf("%s:%d: drivers[%d]", sc.Source, sc.Drivers[d].Line, d)
				}
				prev := "another entry"
				if d := origin[j]; d >= 0 {
					prev = fmt.Sprintf("line %d (drivers[%d])", sc.Drivers[d].Line, d)
				}
				return nil, usageErr("%s: %s/%s with options %s is already listed at %s (the same options once defaults are filled in): its cells would run twice; list it once, or give different options",
					where, spec.Name, cfg.Variant, formatOptions(cfg.Options), prev)
			}
		}
	}
	return out, nil
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

// canonicalOption writes whole numbers and booleans one way (02 -> 2,
// TRUE -> true); other values are kept as given, trimmed.
func canonicalOption(v string) string {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil {
		return strconv.Itoa(n)
	}
	if b, err := strconv.ParseBool(v); err == nil && !strings.ContainsAny(v, "0123456789") {
		return strconv.FormatBool(b)
	}
	return v
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

// checkTarget checks --target before anything runs: a direct driver's
// responder is at HOST:PORT; a broker driver's target is its broker's URL.
func checkTarget(target string, units []runner.Unit) error {
	if target == "" || len(units) == 0 {
		return nil
	}
	spec := units[0].Driver.Spec()
	if spec.Kind == drivers.Broker {
		if err := broker.CheckURL(spec.Broker, target); err != nil {
			return usageErr("--target %s: %v", broker.Redact(target), err)
		}
		return nil
	}
	if err := broker.CheckHostPort(target, true); err != nil {
		return usageErr("--target %q: %v: give the address `rpcbench serve` printed (serving %s/... at HOST:PORT)", target, err, spec.Name)
	}
	return nil
}
