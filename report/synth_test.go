package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/results"
)

// Synthetic runs whose truth is known: every cell's latencies are drawn
// from a log-normal distribution with a given median, so a test knows what
// a report or a comparison must say.

type spec struct {
	driver, kind, variant string
	payload               int
	mode                  string // closed (default) or open
	conc                  int
	rate                  float64
	service               string
	medianUs              float64 // median latency, µs
	sigma                 float64 // log-normal shape; 0 means 0.35
	tput                  float64 // calls/s; 0 means conc / median
	calls                 int     // recorded calls per repetition; 0 means 20000
	seconds               int     // length of the series; 0 means 10
	reps                  int     // 0 means 1
	failed                int64   // timeouts per repetition
	queueing              float64 // open loop: fraction of calls delayed by queueing (corrected > uncorrected)
	cellError             string
	options               map[string]string
}

func (s spec) key() string {
	load := fmt.Sprintf("c%d", s.conc)
	if s.mode == "open" {
		load = fmt.Sprintf("r%g", s.rate)
	}
	svc := s.service
	if svc == "" {
		svc = "0"
	}
	return fmt.Sprintf("%s/%s/%s/%d/%s/%s", s.driver, s.variant, results.OptionsString(s.options), s.payload, load, svc)
}

// synthCell draws one repetition of s from rng.
func synthCell(tb testing.TB, s spec, rep int, rng *rand.Rand) results.Cell {
	tb.Helper()
	if s.sigma == 0 {
		s.sigma = 0.35
	}
	if s.calls == 0 {
		s.calls = 20000
	}
	if s.seconds == 0 {
		s.seconds = 10
	}
	if s.mode == "" {
		s.mode = "closed"
	}
	if s.service == "" {
		s.service = "0"
	}
	if s.kind == "" {
		s.kind = "direct"
	}
	corr, uncor := results.NewHistogram(), results.NewHistogram()
	perSec := make([][]float64, s.seconds)
	for i := 0; i < s.calls; i++ {
		us := s.medianUs * math.Exp(s.sigma*rng.NormFloat64())
		ns := int64(us * 1e3)
		if ns < 1 {
			ns = 1
		}
		if err := uncor.RecordValue(ns); err != nil {
			tb.Fatal(err)
		}
		c := ns
		if s.queueing > 0 && rng.Float64() < s.queueing {
			c += int64(rng.ExpFloat64() * 8 * s.medianUs * 1e3)
		}
		if err := corr.RecordValue(c); err != nil {
			tb.Fatal(err)
		}
		sc := i * s.seconds / s.calls
		perSec[sc] = append(perSec[sc], float64(c)/1e3)
	}
	tput := s.tput
	if tput == 0 {
		conc := s.conc
		if conc == 0 {
			conc = 1
		}
		tput = float64(conc) / (s.medianUs / 1e6)
	}
	tput *= 1 + 0.01*rng.NormFloat64()
	var series []results.Point
	for i, vals := range perSec {
		sort.Float64s(vals)
		at := func(q float64) float64 {
			if len(vals) == 0 {
				return 0
			}
			return vals[min(len(vals)-1, int(q*float64(len(vals))))]
		}
		series = append(series, results.Point{Second: i, OK: int64(len(vals)), Throughput: tput * (1 + 0.03*rng.NormFloat64()),
			P50: at(0.5), P99: at(0.99)})
	}
	encC, err := results.EncodeHistogram(corr)
	if err != nil {
		tb.Fatal(err)
	}
	encU, err := results.EncodeHistogram(uncor)
	if err != nil {
		tb.Fatal(err)
	}
	ok := int64(s.calls)
	cell := results.Cell{
		Key: s.key(), Driver: s.driver, Kind: s.kind, Variant: s.variant, Options: s.options,
		Payload: s.payload, ResponseSize: s.payload, Mode: s.mode, Concurrency: s.conc, Rate: s.rate,
		ServiceTime: s.service, Repetition: rep,
		StartedAt:   time.Date(2026, 11, 20, 10, 0, rep, 0, time.UTC),
		Seconds:     float64(s.seconds),
		Counts:      results.Counts{Scheduled: ok + s.failed, Started: ok + s.failed, OK: ok, Timeout: s.failed},
		Throughput:  tput,
		Latency:     results.Summarize(corr),
		Uncorrected: results.Summarize(uncor),
		Histograms:  results.Histograms{Corrected: encC, Uncorrected: encU},
		Series:      series,
		Error:       s.cellError,
	}
	if s.kind == "broker" {
		cell.Broker = s.driver
	}
	return cell
}

// synthRun builds a complete run of specs, drawing from a generator seeded
// with seed so the run is the same every time.
func synthRun(tb testing.TB, seed uint64, specs ...spec) *results.Run {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	run := &results.Run{
		SchemaVersion: results.SchemaVersion,
		ID:            fmt.Sprintf("20261120T100000Z-synthetic-%d", seed),
		StartedAt:     time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
		FinishedAt:    time.Date(2026, 11, 20, 10, 5, 0, 0, time.UTC),
		Complete:      true,
		Environment: results.Environment{
			RpcbenchVersion: "v0.1.0", Commit: "0123456789abcdef0123456789abcdef01234567", GoVersion: "go1.26.8",
			OS: "linux", Arch: "amd64", Kernel: "6.1.0-test #1 SMP", CPUModel: "Synthetic CPU @ 3.0GHz", Cores: 2, GOMAXPROCS: 2,
			Libraries: map[string]string{"google.golang.org/grpc": "v1.85.0"},
			Brokers:   []results.Broker{{Kind: "nats", Source: "container", Image: "nats:2.10", Version: "2.10.0", URL: "nats://127.0.0.1:4222"}},
		},
		Scenario: results.Scenario{
			Name: "synthetic", Source: "embedded:synthetic", Drivers: []results.ScenarioDriver{{Name: "tcp"}, {Name: "grpc", Variants: []string{"unary"}}, {Name: "nats"}},
			Payloads: []int{64}, ResponseSize: 64, Concurrency: []int{8}, MaxInFlight: 256,
			ServiceTimes: []string{"0"}, Duration: "10s", Warmup: "1s", BrokerWarmup: "0s", Settle: "0s",
			Timeout: "5s", Repeat: 1, ResponderConcurrency: 64,
		},
		Skipped: []results.Skip{{Driver: "rocketmq", Reason: "no rocketmq broker: docker is not available and --broker rocketmq=URL was not given"}},
	}
	for _, s := range specs {
		reps := s.reps
		if reps == 0 {
			reps = 1
		}
		for rep := 1; rep <= reps; rep++ {
			run.Cells = append(run.Cells, synthCell(tb, s, rep, rng))
		}
	}
	return run
}

// threeDrivers is a small realistic matrix: two direct-RPC drivers and a
// broker at two concurrency levels.
func threeDrivers() []spec {
	var out []spec
	for _, conc := range []int{1, 8} {
		f := float64(conc)
		out = append(out,
			spec{driver: "tcp", variant: "default", payload: 64, conc: conc, medianUs: 40 * (1 + f/16)},
			spec{driver: "grpc", variant: "unary", payload: 64, conc: conc, medianUs: 90 * (1 + f/12)},
			spec{driver: "nats", kind: "broker", variant: "default", payload: 64, conc: conc, medianUs: 180 * (1 + f/10), failed: int64(conc) * 3},
		)
	}
	return out
}

// hundredCells is the benchmark matrix: 5 drivers × 4 payloads × 5 loads.
func hundredCells() []spec {
	var out []spec
	drivers := []struct {
		name, kind, variant string
		base                float64
	}{
		{"tcp", "direct", "default", 35}, {"grpc", "direct", "unary", 80}, {"grpc", "direct", "stream", 60},
		{"nats", "broker", "default", 150}, {"rabbitmq", "broker", "default", 400},
	}
	for _, payload := range []int{64, 1024, 16384, 1 << 20} {
		for _, conc := range []int{1, 4, 16, 64, 256} {
			for _, d := range drivers {
				out = append(out, spec{driver: d.name, kind: d.kind, variant: d.variant, payload: payload, conc: conc,
					medianUs: d.base * (1 + float64(payload)/65536) * (1 + float64(conc)/32), calls: 20000, seconds: 30})
			}
		}
	}
	return out
}

var (
	hundredOnce sync.Once
	hundred     *results.Run
)

// hundredRun is synthRun of hundredCells, drawn once per test binary; do
// not modify it.
func hundredRun(tb testing.TB) *results.Run {
	hundredOnce.Do(func() { hundred = synthRun(tb, 3, hundredCells()...) })
	return hundred
}
