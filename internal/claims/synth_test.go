package claims

import (
	"time"

	"github.com/rpcbench/rpcbench/results"
)

// Synthetic results for the judges' tests.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func env() results.Environment {
	return results.Environment{RpcbenchVersion: "test", Commit: "c0ffee", GoVersion: "go1.26", OS: "linux", Arch: "amd64",
		Kernel: "6.1", CPUModel: "Test CPU", Cores: 2, GOMAXPROCS: 2, Libraries: map[string]string{}, Brokers: []results.Broker{}}
}

func run(id string, cells ...results.Cell) *results.Run {
	return &results.Run{SchemaVersion: results.SchemaVersion, ID: id, StartedAt: t0, FinishedAt: t0, Complete: true,
		Environment: env(), Scenario: results.Scenario{Name: id, Repeat: 3, Timeout: "3s"}, Cells: cells, Skipped: []results.Skip{}}
}

func kindOf(driver string) string {
	switch driver {
	case "nats", "rabbitmq", "rocketmq", "kafka":
		return "broker"
	}
	return "direct"
}

// cell is one closed-loop repetition with the given p50, p99 and
// throughput.
func cell(driver, variant string, conc, rep int, p50v, p99v, thr float64) results.Cell {
	c := results.Cell{Driver: driver, Kind: kindOf(driver), Variant: variant, Payload: 64, ResponseSize: 64,
		Mode: "closed", Concurrency: conc, ServiceTime: "0", Repetition: rep, ResponderConcurrency: 64, StartedAt: t0, Seconds: 1,
		Counts:     results.Counts{Scheduled: 1000, Started: 1000, OK: 1000},
		Throughput: thr,
		Latency:    results.Latency{Count: 1000, P50: p50v, P99: p99v},
	}
	c.Key = results.CellKey(&c)
	return c
}

// spread are the multipliers of three repetitions: ±1% (tight) or ±40%
// (noisy).
var (
	tight = []float64{0.99, 1.0, 1.01}
	noisy = []float64{0.6, 1.0, 1.4}
)

// reps is three repetitions of a cell whose p50 is p50v (p99 = 3×p50) and
// throughput conc/p50, spread by m.
func reps(driver, variant string, conc int, p50v float64, m []float64) []results.Cell {
	var out []results.Cell
	for i, f := range m {
		out = append(out, cell(driver, variant, conc, i+1, p50v*f, 3*p50v*f, float64(conc)*1e6/(p50v*f)))
	}
	return out
}

func cat(css ...[]results.Cell) []results.Cell {
	var out []results.Cell
	for _, cs := range css {
		out = append(out, cs...)
	}
	return out
}
