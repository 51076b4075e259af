package tcp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/tcp"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/results"
)

// echoConn connects to a minimal echo server of 64-byte messages; both
// close when the benchmark ends.
func echoConn(b *testing.B) net.Conn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// pingPong is the minimal Go TCP exchange the tcp driver is held to: the
// client writes 64 bytes, the server reads and writes them back.
func pingPong(b *testing.B, n int) *hdrhistogram.Histogram {
	c := echoConn(b)
	buf := make([]byte, 64)
	h := results.NewHistogram()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		h.RecordValue(int64(time.Since(t0)))
	}
	return h
}

func tcpCell(b *testing.B, concurrency int, calls int64) *runner.Measurement {
	d := tcp.New()
	srv := driverstest.Serve(b, driverstest.Configure(b, d, drivers.Config{}), drivers.Place{})
	client := driverstest.Dial(b, driverstest.Configure(b, d, drivers.Config{}), srv.Addr())
	m, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: concurrency, Calls: calls, Timeout: 10 * time.Second}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if m.Counts.OK != calls {
		b.Fatalf("counts %+v", m.Counts)
	}
	return m
}

// BenchmarkTCPvsPingPong measures, in one run, the p50 of the minimal
// ping-pong and of the tcp driver through the full harness at concurrency
// 1 with a 64-byte payload (target: ratio ≤ 1.2).
func BenchmarkTCPvsPingPong(b *testing.B) {
	n := max(b.N, 2000)
	// warm both paths first
	pingPong(b, 2000)
	tcpCell(b, 1, 2000)
	b.ResetTimer()
	base := pingPong(b, n)
	m := tcpCell(b, 1, int64(n))
	b.StopTimer()
	bp, tp := float64(base.ValueAtQuantile(50)), float64(m.Corrected.ValueAtQuantile(50))
	b.ReportMetric(bp, "pingpong-p50-ns")
	b.ReportMetric(tp, "tcp-p50-ns")
	b.ReportMetric(tp/bp, "p50-ratio")
}

// BenchmarkTCPThroughput compares throughput at concurrency 64 with
// concurrency 1 (target: ≥ 5×).
func BenchmarkTCPThroughput(b *testing.B) {
	n := int64(max(b.N, 20000))
	m1 := tcpCell(b, 1, n)
	m64 := tcpCell(b, 64, n*4)
	t1 := float64(m1.Counts.OK) / m1.Seconds
	t64 := float64(m64.Counts.OK) / m64.Seconds
	b.ReportMetric(t1, "c1-calls/s")
	b.ReportMetric(t64, "c64-calls/s")
	b.ReportMetric(t64/t1, "c64/c1")
}

// pacedPingPong is the minimal ping-pong paced at rate calls per second by
// a plain sleep-then-spin loop, with no rpcbench code in the path: the
// floor of an open-loop exchange on this machine, where the system goes
// idle between calls.
func pacedPingPong(b *testing.B, rate float64, d time.Duration) *hdrhistogram.Histogram {
	c := echoConn(b)
	buf := make([]byte, 64)
	h := results.NewHistogram()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 1; time.Duration(i)*interval < d; i++ {
		target := start.Add(time.Duration(i) * interval)
		if w := time.Until(target) - 2*time.Millisecond; w > 0 {
			time.Sleep(w)
		}
		for time.Now().Before(target) {
		}
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		h.RecordValue(int64(time.Since(t0)))
	}
	return h
}

// BenchmarkOpenLoop measures the open-loop generator against the tcp
// driver, in one run: the closed-loop concurrency-1 p50, then for each
// rate the open loop's corrected p50 over it (target ≤ 1.3), its
// uncorrected p50, the generator's own lateness p99 and share of late
// calls (target at 50,000/s: p99 ≤ 50 µs, late ≤ 1%), and the p50 of a
// minimal ping-pong paced at 200/s with no rpcbench code (the machine's
// floor for an exchange after an idle gap).
func BenchmarkOpenLoop(b *testing.B) {
	d := tcp.New()
	srv := driverstest.Serve(b, driverstest.Configure(b, d, drivers.Config{}), drivers.Place{})
	client := driverstest.Dial(b, driverstest.Configure(b, d, drivers.Config{}), srv.Addr())
	run := func(load runner.Load) *runner.Measurement {
		m, err := runner.RunCell(context.Background(), client, load, nil)
		if err != nil {
			b.Fatal(err)
		}
		if m.Counts.OK == 0 {
			b.Fatalf("counts %+v", m.Counts)
		}
		return m
	}
	for i := 0; i < b.N; i++ {
		closed := run(runner.Load{Payload: 64, Concurrency: 1, Duration: 2 * time.Second, Warmup: 200 * time.Millisecond, Timeout: time.Second})
		c50 := float64(closed.Corrected.ValueAtQuantile(50))
		b.ReportMetric(c50, "closed-c1-p50-ns")
		for _, rate := range []float64{200, 2000, 20000, 50000} {
			m := run(runner.Load{Payload: 64, Concurrency: 256, Rate: rate, Duration: 3 * time.Second, Warmup: 200 * time.Millisecond, Timeout: time.Second})
			name := fmt.Sprintf("%.0f/s", rate)
			b.ReportMetric(float64(m.Corrected.ValueAtQuantile(50))/c50, name+"-p50-ratio")
			b.ReportMetric(float64(m.Uncorrected.ValueAtQuantile(50)), name+"-uncorrected-p50-ns")
			b.ReportMetric(float64(m.Lateness.ValueAtQuantile(99)), name+"-gen-p99-ns")
			b.ReportMetric(100*float64(m.Counts.Late)/float64(m.Counts.Started), name+"-late-%")
		}
		b.ReportMetric(float64(pacedPingPong(b, 200, 2*time.Second).ValueAtQuantile(50)), "raw-paced-200/s-p50-ns")
	}
}
