package main

import (
	"encoding/json"
	"testing"

	"github.com/rpcbench/rpcbench/scenarios"
)

// TestScenarioRecord: the results' record of a scenario carries every
// field the parser resolves, written as the parser writes it. A field
// added to scenarios.Scenario fails here until the result format (the
// record, results/schema.json and SchemaVersion) is decided for it.
func TestScenarioRecord(t *testing.T) {
	sc, err := scenarios.Load(scenarios.Default)
	if err != nil {
		t.Fatal(err)
	}
	open := *sc
	open.Concurrency, open.Rates, open.Calls = nil, []float64{200, 2000}, 5000
	open.ServiceTimes = []scenarios.ServiceTime{{}, {Exponential: true, Mean: 100e3}}
	open.Network = &scenarios.Network{OneWayDelay: []scenarios.Duration{0, 250e3}, Jitter: 10e3}
	open.Drivers = []scenarios.DriverSpec{{Name: "tcp", Options: map[string]string{"connections": "4"}}, {Name: "grpc", Variants: []string{"stream"}}}
	for _, s := range []*scenarios.Scenario{sc, &open} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(scenarioRecord(s))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("record differs from the parser's scenario:\n got %s\nwant %s", got, want)
		}
	}
}
