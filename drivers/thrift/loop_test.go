package thrift_test

import (
	"context"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/results"
)

// plainLoop runs calls calls from c goroutines, each calling the function
// mk returns for it, and returns their p50 (ns) and calls/s.
func plainLoop(b *testing.B, c, calls int, mk func() func(id uint64) error) (p50, rate float64) {
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

// driverCell runs calls calls through the driver at concurrency c with the
// full harness and returns the p50 (ns) and calls/s.
func driverCell(b *testing.B, tr drivers.Transport, addr string, c int, calls int64) (p50, rate float64) {
	b.Helper()
	client := driverstest.Dial(b, tr, addr)
	m, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: c, Calls: calls, Timeout: 10 * time.Second}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if m.Counts.OK != calls {
		b.Fatalf("counts %+v", m.Counts)
	}
	return float64(m.Corrected.ValueAtQuantile(50)), float64(m.Counts.OK) / m.Seconds
}

// versus reports, in one run, the p50 at concurrency 1 and the throughput
// at 64 of the plain loop and of the driver, and their ratios (targets:
// p50-ratio ≤ 1.2, rate-ratio ≥ 1).
func versus(b *testing.B, tr drivers.Transport, addr string, mk func() func(id uint64) error) {
	b.Helper()
	n := max(b.N, 3000)
	plainLoop(b, 1, 1000, mk)
	driverCell(b, tr, addr, 1, 1000)
	b.ResetTimer()
	pp, _ := plainLoop(b, 1, n, mk)
	dp, _ := driverCell(b, tr, addr, 1, int64(n))
	_, pr := plainLoop(b, 64, 64*max(n/64, 100), mk)
	_, dr := driverCell(b, tr, addr, 64, int64(64*max(n/64, 100)))
	b.StopTimer()
	b.ReportMetric(pp, "plain-p50-ns")
	b.ReportMetric(dp, "driver-p50-ns")
	b.ReportMetric(dp/pp, "p50-ratio")
	b.ReportMetric(pr, "plain-c64-calls/s")
	b.ReportMetric(dr, "driver-c64-calls/s")
	b.ReportMetric(dr/pr, "rate-ratio")
}
