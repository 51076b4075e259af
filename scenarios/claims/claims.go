// Package claims holds the claims suite's scenarios (one per claim whose
// evidence rpcbench can measure; README.md states every claim), embedded
// in the binary for `rpcbench claims`.
package claims

import (
	"embed"
	"slices"
	"strings"

	"github.com/rpcbench/rpcbench/scenarios"
)

//go:embed *.yaml
var files embed.FS

// Has reports whether claim id has a scenario.
func Has(id string) bool {
	if id == Hop || id == HopChain {
		return false
	}
	_, err := files.ReadFile(id + ".yaml")
	return err == nil
}

// Load parses claim id's scenario (Source "embedded:claims/ID").
func Load(id string) (*scenarios.Scenario, error) {
	data, err := files.ReadFile(id + ".yaml")
	if err != nil {
		return nil, &scenarios.Error{File: "embedded:claims/" + id, Msg: "no scenario for this claim"}
	}
	return scenarios.Parse("embedded:claims/"+id, data)
}

// IDs lists the claims that have a scenario.
func IDs() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		if id := strings.TrimSuffix(e.Name(), ".yaml"); id != Hop && id != HopChain {
			out = append(out, id)
		}
	}
	return out
}

// Hop is the scenario that measures the latency claims again at an
// injected one-way delay per hop (hop.yaml).
const Hop = "hop"

// HopChain is the scenario that measures C10's chains again at an
// injected one-way delay per hop (hopchain.yaml).
const HopChain = "hopchain"

// LoadHopChain parses hopchain.yaml (Source "embedded:claims/hopchain")
// when ids holds C10; nil otherwise.
func LoadHopChain(ids []string) (*scenarios.Scenario, error) {
	if !slices.ContainsFunc(ids, func(id string) bool { return strings.EqualFold(id, "C10") }) {
		return nil, nil
	}
	data, err := files.ReadFile(HopChain + ".yaml")
	if err != nil {
		return nil, err
	}
	return scenarios.Parse("embedded:claims/"+HopChain, data)
}

// HopClaims are the claims hop.yaml's cells are judged for, each with the
// drivers of hop.yaml it needs: "driver" (every variant hop.yaml lists)
// or "driver:variant".
var HopClaims = map[string][]string{
	"C1":  {"tcp", "nats", "rabbitmq:direct-reply-to/transient", "rabbitmq:direct-reply-to/persistent", "rocketmq:async-flush", "kafka"},
	"C2":  {"nats:core", "rabbitmq:direct-reply-to/transient", "rocketmq:async-flush", "kafka"},
	"C3":  {"nats", "rabbitmq:direct-reply-to/transient", "rabbitmq:direct-reply-to/persistent", "rocketmq"},
	"C8":  {"tcp", "grpc", "nats", "rabbitmq:direct-reply-to/transient", "rabbitmq:direct-reply-to/persistent", "rocketmq:async-flush", "kafka"},
	"C9":  {"http", "grpc"},
	"C11": {"rabbitmq:direct-reply-to/transient", "rabbitmq:reply-queue/persistent", "rocketmq"},
}

// LoadHop parses hop.yaml (Source "embedded:claims/hop") with the drivers
// that the claims ids need (HopClaims); nil when none of ids is judged at
// a delay.
func LoadHop(ids []string) (*scenarios.Scenario, error) {
	// need[driver] is the variants needed, nil for every one
	need := map[string]map[string]bool{}
	for _, id := range ids {
		for _, d := range HopClaims[id] {
			name, variant, one := strings.Cut(d, ":")
			vs, seen := need[name]
			switch {
			case !one:
				need[name] = nil
			case !seen:
				need[name] = map[string]bool{variant: true}
			case vs != nil:
				vs[variant] = true
			}
		}
	}
	if len(need) == 0 {
		return nil, nil
	}
	data, err := files.ReadFile(Hop + ".yaml")
	if err != nil {
		return nil, err
	}
	sc, err := scenarios.Parse("embedded:claims/"+Hop, data)
	if err != nil {
		return nil, err
	}
	var keep []scenarios.DriverSpec
	for _, d := range sc.Drivers {
		vs, ok := need[d.Name]
		if !ok {
			continue
		}
		if vs != nil {
			d.Variants = slices.DeleteFunc(slices.Clone(d.Variants), func(v string) bool { return !vs[v] })
		}
		keep = append(keep, d)
	}
	sc.Drivers = keep
	return sc, nil
}
