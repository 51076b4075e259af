package grpc_test

import (
	"context"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/grpc"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

// plainLoop is a plain grpc-go client loop with the generated stub against
// the same server: the floor the grpc driver is held to.
func plainLoop(b *testing.B, addr string, n int) *hdrhistogram.Histogram {
	cc, err := grpclib.NewClient(addr, grpclib.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	client := wire.NewBenchClient(cc)
	payload := driverstest.BenchPayload(64) // the driver's calls' bytes
	req := &wire.Call{Payload: payload, Checksum: wire.Checksum(payload)}
	h := results.NewHistogram()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		req.Id, req.SentUnixNano = driverstest.BenchID(0, i), driverstest.SentNow()
		t0 := time.Now()
		rep, err := client.Unary(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		h.RecordValue(int64(time.Since(t0)))
		if rep.Id != req.Id {
			b.Fatalf("reply %d to call %d", rep.Id, req.Id)
		}
	}
	return h
}

func driverCell(b *testing.B, variant, addr string, concurrency int, calls int64) *runner.Measurement {
	cfg := drivers.Config{Variant: variant}
	client := driverstest.Dial(b, driverstest.Configure(b, grpc.New(), cfg), addr)
	m, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: concurrency, Calls: calls, Timeout: 10 * time.Second}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if m.Counts.OK != calls {
		b.Fatalf("counts %+v", m.Counts)
	}
	return m
}

// BenchmarkUnaryVsPlain measures, in one run against one server, the p50
// of a plain generated-stub loop and of the grpc driver's unary variant
// through the full harness at concurrency 1 (target: ratio ≤ 1.3).
func BenchmarkUnaryVsPlain(b *testing.B) {
	srv := driverstest.Serve(b, driverstest.Configure(b, grpc.New(), drivers.Config{Variant: "unary"}), drivers.Place{})
	n := max(b.N, 2000)
	plainLoop(b, srv.Addr(), 2000)
	driverCell(b, "unary", srv.Addr(), 1, 2000)
	b.ResetTimer()
	base := plainLoop(b, srv.Addr(), n)
	m := driverCell(b, "unary", srv.Addr(), 1, int64(n))
	b.StopTimer()
	bp, dp := float64(base.ValueAtQuantile(50)), float64(m.Corrected.ValueAtQuantile(50))
	b.ReportMetric(bp, "plain-p50-ns")
	b.ReportMetric(dp, "driver-p50-ns")
	b.ReportMetric(dp/bp, "p50-ratio")
}

// BenchmarkVariants reports p50 and throughput of both variants at
// concurrency 1 and 64.
func BenchmarkVariants(b *testing.B) {
	srv := driverstest.Serve(b, driverstest.Configure(b, grpc.New(), drivers.Config{}), drivers.Place{})
	for _, v := range []string{"unary", "stream"} {
		for _, c := range []int{1, 64} {
			b.Run(v+"/c="+map[int]string{1: "1", 64: "64"}[c], func(b *testing.B) {
				m := driverCell(b, v, srv.Addr(), c, int64(max(b.N, 1000)))
				b.ReportMetric(float64(m.Corrected.ValueAtQuantile(50)), "p50-ns")
				b.ReportMetric(float64(m.Counts.OK)/m.Seconds, "calls/s")
			})
		}
	}
}
