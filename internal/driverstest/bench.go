package driverstest

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/results"
)

// PlainLoop runs calls calls from c goroutines, each calling the function
// mk returns for it (a minimal loop written directly with the driver's
// library), and returns their p50 (ns) and calls/s.
func PlainLoop(b *testing.B, c, calls int, mk func() func(id uint64) error) (p50, rate float64) {
	b.Helper()
	hs := make([]*hdrhistogram.Histogram, c)
	fns := make([]func(uint64) error, c)
	for i := range fns {
		fns[i] = mk()
		hs[i] = results.NewHistogram()
	}
	var wg sync.WaitGroup
	errs := make(chan error, c)
	per := calls / c
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				t0 := time.Now()
				if err := fns[w](uint64(w*per + i + 1)); err != nil {
					errs <- err
					return
				}
				hs[w].RecordValue(int64(time.Since(t0)))
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	for _, h := range hs[1:] {
		hs[0].Merge(h)
	}
	return float64(hs[0].ValueAtQuantile(50)), float64(per*c) / secs
}

// BenchPayload is the n-byte payload DriverCell's calls carry (the
// runner's, from load seed 0): a plain loop that sends the same bytes does
// the same work where a library compresses (Triple and Connect gzip
// replies by default, and zeros compress to almost nothing).
func BenchPayload(n int) []byte {
	rng := rand.New(rand.NewPCG(0, 0))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// DriverCell runs calls calls of 64 bytes through the driver at
// concurrency c with the full harness (runner.RunCell) and returns the p50
// (ns, corrected for coordinated omission) and calls/s.
func DriverCell(b *testing.B, tr drivers.Transport, addr string, c int, calls int64) (p50, rate float64) {
	b.Helper()
	client := Dial(b, tr, addr)
	m, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: c, Calls: calls, Timeout: 10 * time.Second}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if m.Counts.OK != calls {
		b.Fatalf("counts %+v", m.Counts)
	}
	return float64(m.Corrected.ValueAtQuantile(50)), float64(m.Counts.OK) / m.Seconds
}

// Versus reports, in one run against the responder at addr, the p50 at
// concurrency 1 and the throughput at 64 of the plain loop (mk, see
// PlainLoop) and of the driver (DriverCell), and their ratios (targets:
// p50-ratio ≤ 1.2, rate-ratio ≥ 1). Both sides are warmed up first.
func Versus(b *testing.B, tr drivers.Transport, addr string, mk func() func(id uint64) error) {
	b.Helper()
	VersusRounds(b, tr, addr, mk, 1)
}

// VersusRounds is Versus with the two sides alternating for rounds
// rounds, each side keeping its best round (the lowest p50, the highest
// throughput), so that a burst of load from elsewhere on a shared machine
// does not decide the ratio. One round is Versus.
func VersusRounds(b *testing.B, tr drivers.Transport, addr string, mk func() func(id uint64) error, rounds int) {
	b.Helper()
	n := max(b.N, 3000)
	PlainLoop(b, 1, 1000, mk)
	DriverCell(b, tr, addr, 1, 1000)
	b.ResetTimer()
	pp, dp := math.Inf(1), math.Inf(1)
	var pr, dr float64
	for range max(rounds, 1) {
		p, _ := PlainLoop(b, 1, n, mk)
		d, _ := DriverCell(b, tr, addr, 1, int64(n))
		pp, dp = min(pp, p), min(dp, d)
		_, p = PlainLoop(b, 64, 64*max(n/64, 100), mk)
		_, d = DriverCell(b, tr, addr, 64, int64(64*max(n/64, 100)))
		pr, dr = max(pr, p), max(dr, d)
	}
	b.StopTimer()
	b.ReportMetric(pp, "plain-p50-ns")
	b.ReportMetric(dp, "driver-p50-ns")
	b.ReportMetric(dp/pp, "p50-ratio")
	b.ReportMetric(pr, "plain-c64-calls/s")
	b.ReportMetric(dr, "driver-c64-calls/s")
	b.ReportMetric(dr/pr, "rate-ratio")
}
