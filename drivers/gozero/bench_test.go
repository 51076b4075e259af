package gozero_test

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/zeromicro/go-zero/zrpc"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/gozero"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

// plainLoop is a minimal zrpc client loop: zrpc.NewClient with the same
// configuration as the driver's (go-zero's defaults for the variant) and
// the generated Bench stub, calls from conc goroutines against the same
// server, each call with a deadline as a real client's (zrpc's default
// client timeout gives every call one; the driver's is the scenario's). It returns the latency histogram and the calls per second.
func plainLoop(b *testing.B, tr *gozero.Transport, addr string, conc, n int) (*hdrhistogram.Histogram, float64) {
	c, err := tr.ClientConf(addr)
	if err != nil {
		b.Fatal(err)
	}
	zc, err := zrpc.NewClient(c)
	if err != nil {
		b.Fatal(err)
	}
	defer zc.Conn().Close()
	if err := gozero.WaitReady(context.Background(), zc.Conn()); err != nil {
		b.Fatal(err)
	}
	client := wire.NewBenchClient(zc.Conn())
	var (
		mu   sync.Mutex
		all  = results.NewHistogram()
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := results.NewHistogram()
			payload := make([]byte, 64)
			req := &wire.Call{Payload: payload, Checksum: wire.Checksum(payload)}
			for {
				i := next.Add(1)
				if i > int64(n) {
					break
				}
				req.Id = uint64(i)
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				rep, err := client.Unary(ctx, req)
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
				h.RecordValue(int64(time.Since(t0)))
				if rep.Id != req.Id {
					b.Errorf("reply %d to call %d", rep.Id, req.Id)
					return
				}
			}
			mu.Lock()
			all.Merge(h)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, float64(n) / time.Since(start).Seconds()
}

func driverCell(b *testing.B, tr drivers.Transport, addr string, concurrency int, calls int64) *runner.Measurement {
	client := driverstest.Dial(b, tr, addr)
	m, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: concurrency, Calls: calls, Timeout: 10 * time.Second}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if m.Counts.OK != calls {
		b.Fatalf("counts %+v", m.Counts)
	}
	return m
}

// BenchmarkVsPlain measures, per variant, in one run against one server:
// the p50 at concurrency 1 and the throughput at concurrency 64 of a plain
// zrpc loop (plainLoop) and of the driver through the full harness. The
// two alternate for three rounds and each side keeps its best round (the
// lowest p50, the highest throughput), so that a load burst from
// elsewhere on a shared machine does not decide the ratio. Targets:
// p50-ratio (driver/plain) at most 1.2, tput-ratio (driver/plain) at
// least 1.
func BenchmarkVsPlain(b *testing.B) {
	for _, v := range []string{gozero.VariantMiddleware, gozero.VariantNoMiddleware} {
		b.Run(v, func(b *testing.B) {
			tr := driverstest.Configure(b, gozero.New(), drivers.Config{Variant: v})
			srv := driverstest.Serve(b, tr, drivers.Place{})
			gt := tr.(*gozero.Transport)
			n := max(b.N, 2000)
			plainLoop(b, gt, srv.Addr(), 1, 1000)
			driverCell(b, tr, srv.Addr(), 1, 1000)
			b.ResetTimer()
			bp, dp := math.Inf(1), math.Inf(1)
			var bt, dt float64
			for range 3 {
				base, _ := plainLoop(b, gt, srv.Addr(), 1, n)
				bp = min(bp, float64(base.ValueAtQuantile(50)))
				m := driverCell(b, tr, srv.Addr(), 1, int64(n))
				dp = min(dp, float64(m.Corrected.ValueAtQuantile(50)))
				_, t := plainLoop(b, gt, srv.Addr(), 64, 5*n)
				bt = max(bt, t)
				m64 := driverCell(b, tr, srv.Addr(), 64, int64(5*n))
				dt = max(dt, float64(m64.Counts.OK)/m64.Seconds)
			}
			b.StopTimer()
			b.ReportMetric(bp, "plain-p50-ns")
			b.ReportMetric(dp, "driver-p50-ns")
			b.ReportMetric(dp/bp, "p50-ratio")
			b.ReportMetric(bt, "plain-c64-calls/s")
			b.ReportMetric(dt, "driver-c64-calls/s")
			b.ReportMetric(dt/bt, "tput-ratio")
		})
	}
}
