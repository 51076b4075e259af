package rocketmq_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/rocketmq"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

// benchResponder serves the driver's responder on the shared async-flush
// broker and dials a driver client to it.
func benchResponder(b *testing.B, opts map[string]string) (drivers.Server, drivers.Client, []string) {
	b.Helper()
	url := needBroker(b, rocketmq.AsyncFlush)
	d := rocketmq.New()
	c := cfg(rocketmq.AsyncFlush, url, opts)
	srv := driverstest.Serve(b, d, c)
	client := driverstest.Dial(b, d, c, srv.Addr())
	ns, _, _ := rocketmq.ParseAddr(srv.Addr())
	// Warm the broker's JIT and both clients up before anything is measured.
	if _, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: 16, Duration: 3 * time.Second, Timeout: 5 * time.Second}, nil); err != nil {
		b.Fatal(err)
	}
	return srv, client, ns
}

// rawLoop is the minimal rocketmq-client-go caller: one producer, a new
// message per call, producer.Request in a loop. It warms up (replies before
// the first heartbeat are lost) and records each call's latency.
type rawLoop struct {
	p     rmq.Producer
	topic string
}

func newRawLoop(b *testing.B, ns []string, topic string) *rawLoop {
	b.Helper()
	p, err := rmq.NewProducer(producer.WithNameServer(ns), producer.WithGroupName("rpcbench_raw"), producer.WithInstanceName("rpcbench-raw-bench"))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Shutdown() })
	r := &rawLoop{p: p, topic: topic}
	for i := 0; ; i++ {
		if _, err := r.call(1, 1); err == nil {
			return r
		}
		if i == 100 {
			b.Fatal("raw loop: no reply to 100 warm-up requests")
		}
	}
}

func (r *rawLoop) call(id uint64, payload int) (time.Duration, error) {
	t0 := time.Now()
	req := wire.Append(nil, &wire.Fields{ID: id, Payload: make([]byte, payload), Checksum: wire.Checksum(make([]byte, payload)), SentUnixNano: t0.UnixNano()})
	m, err := r.p.Request(context.Background(), 5*time.Second, primitive.NewMessage(r.topic, req))
	d := time.Since(t0)
	if err != nil {
		return d, err
	}
	var f wire.Fields
	if err := wire.Parse(m.Body, &f); err != nil || f.ID != id {
		return d, fmt.Errorf("bad reply %q", m.Body)
	}
	return d, nil
}

// BenchmarkP50VsRawLoop compares, at concurrency 1 in the same run, the p50
// of the minimal Request loop with the driver's through runner.RunCell,
// alternating rounds of 200 calls. Metrics: raw-p50-us, driver-p50-us and
// ratio (driver/raw; the target is at most 1.2).
func BenchmarkP50VsRawLoop(b *testing.B) {
	srv, client, ns := benchResponder(b, nil)
	_, topic, _ := rocketmq.ParseAddr(srv.Addr())
	raw := newRawLoop(b, ns, topic)
	const round = 200
	rawH, drvH := results.NewHistogram(), results.NewHistogram()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < round; j++ {
			d, err := raw.call(uint64(j+2), 64)
			if err != nil {
				b.Fatal(err)
			}
			rawH.RecordValue(int64(d))
		}
		m, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: 1, Calls: round, Timeout: 5 * time.Second}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if m.Counts.OK != round {
			b.Fatalf("driver: %+v", m.Counts)
		}
		drvH.Merge(m.Uncorrected)
	}
	b.StopTimer()
	rp, dp := float64(rawH.ValueAtQuantile(50))/1e3, float64(drvH.ValueAtQuantile(50))/1e3
	b.ReportMetric(rp, "raw-p50-us")
	b.ReportMetric(dp, "driver-p50-us")
	b.ReportMetric(dp/rp, "ratio")
	b.ReportMetric(float64(rawH.ValueAtQuantile(99))/1e3, "raw-p99-us")
	b.ReportMetric(float64(drvH.ValueAtQuantile(99))/1e3, "driver-p99-us")
}

// BenchmarkConcurrency runs the driver through runner.RunCell at
// concurrency 1 and 64 for 3 s each (after 1 s of warm-up) and reports both
// throughputs and their ratio (the target is at least 10).
func BenchmarkConcurrency(b *testing.B) {
	_, client, _ := benchResponder(b, map[string]string{"handlers": "64"})
	var c1, c64, inflight, cpu float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, c := range []int{1, 64} {
			cpu0 := processCPU()
			m, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: c, Warmup: time.Second, Duration: 3 * time.Second, Timeout: 5 * time.Second}, nil)
			if err != nil {
				b.Fatal(err)
			}
			if m.Counts.Failed() != 0 {
				b.Fatalf("concurrency %d: %+v", c, m.Counts)
			}
			rate := float64(m.Counts.OK) / m.Seconds
			if c == 1 {
				c1 += rate
			} else {
				c64 += rate
				// Little's law: calls in flight on average. Close to 64 means
				// nothing in the client or broker serializes the calls.
				inflight += rate * m.Uncorrected.Mean() / 1e9
				cpu += float64(processCPU()-cpu0) / 1e3 / float64(m.Counts.Started)
			}
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(c1/n, "c1-calls/s")
	b.ReportMetric(c64/n, "c64-calls/s")
	b.ReportMetric(c64/c1, "ratio")
	b.ReportMetric(inflight/n, "c64-in-flight")
	// CPU this process (callers and responder, warm-up included) spent per
	// call at concurrency 64; the broker's is on top.
	b.ReportMetric(cpu/n, "c64-go-cpu-us/call")
}

// BenchmarkBrokerStartup starts and stops a broker from the default source
// (RPCBENCH_ROCKETMQ_SOURCE to pick one) and reports the time to ready.
func BenchmarkBrokerStartup(b *testing.B) {
	var total time.Duration
	source := ""
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		r, err := broker.StartRocketMQ(ctx, broker.StartOptions{Params: rocketmq.New().BrokerParams(drivers.Config{Variant: rocketmq.AsyncFlush})})
		if err != nil {
			cancel()
			brokerFailed(b, err)
		}
		total += r.Startup
		source = r.Source
		if err := r.Stop(ctx); err != nil {
			b.Error(err)
		}
		cancel()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "startup-s")
	b.Logf("source %s", source)
}

// processCPU is the CPU time (user + system) this process has used, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkRawLoopConcurrency runs the minimal Request loop from 1 and 64
// goroutines sharing one producer for 3 s each and reports both
// throughputs: what rocketmq-client-go and the broker reach without the
// driver or the harness, to compare with BenchmarkConcurrency.
func BenchmarkRawLoopConcurrency(b *testing.B) {
	srv, _, ns := benchResponder(b, map[string]string{"handlers": "64"})
	_, topic, _ := rocketmq.ParseAddr(srv.Addr())
	raw := newRawLoop(b, ns, topic)
	rate := func(n int) float64 {
		var ok atomic.Int64
		end := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		for g := 0; g < n; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := uint64(2); time.Now().Before(end); id++ {
					if _, err := raw.call(id, 64); err == nil {
						ok.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return float64(ok.Load()) / 3
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r1, r64 := rate(1), rate(64)
		b.ReportMetric(r1, "raw-c1-calls/s")
		b.ReportMetric(r64, "raw-c64-calls/s")
		b.ReportMetric(r64/r1, "ratio")
	}
}
