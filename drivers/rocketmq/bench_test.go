package rocketmq_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
	srv := driverstest.Serve(b, driverstest.Configure(b, d, c.Config), drivers.Place{Broker: c.url})
	client := driverstest.Dial(b, driverstest.Configure(b, d, c.Config), srv.Addr())
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
// concurrency 1 and 64 for 3 s each (each after a 1 s warm-up cell) and
// reports both throughputs and their ratio (the target is at least 10).
//
// It also reports where the CPU went at concurrency 64, because on a small
// machine the ratio is bounded by CPU, not by anything that serializes
// calls: the broker, the name server and the Go process (callers and
// responder) all run here. machine-busy is the fraction of all cores busy
// (1 = saturated); machine-cpu-us/call is all CPU time on the machine per
// call; ceiling-calls/s = c64 rate / machine-busy is the most the machine
// can do at that cost per call, and ratio-ceiling = ceiling / c1 rate the
// highest ratio it allows.
func BenchmarkConcurrency(b *testing.B) {
	_, client, _ := benchResponder(b, nil) // responder concurrency: the default, 64
	var c1, c64, inflight, goCPU, brokerCPU, nsCPU, busy, machine float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, c := range []int{1, 64} {
			load := runner.Load{Payload: 64, Concurrency: c, Duration: time.Second, Timeout: 5 * time.Second}
			if _, err := runner.RunCell(context.Background(), client, load, nil); err != nil { // warm-up
				b.Fatal(err)
			}
			go0, br0, ns0, m0 := processCPU(), javaCPU("BrokerStartup"), javaCPU("NamesrvStartup"), readMachineCPU()
			load.Duration = 3 * time.Second
			m, err := runner.RunCell(context.Background(), client, load, nil)
			if err != nil {
				b.Fatal(err)
			}
			if m.Counts.Failed() != 0 {
				b.Fatalf("concurrency %d: %+v", c, m.Counts)
			}
			rate := float64(m.Counts.OK) / m.Seconds
			if c == 1 {
				c1 += rate
				continue
			}
			c64 += rate
			// Little's law: calls in flight on average. Close to 64 means
			// nothing in the client or broker serializes the calls.
			inflight += rate * m.Uncorrected.Mean() / 1e9
			n := float64(m.Counts.Started)
			goCPU += float64(processCPU()-go0) / 1e3 / n
			brokerCPU += float64(javaCPU("BrokerStartup")-br0) / 1e3 / n
			nsCPU += float64(javaCPU("NamesrvStartup")-ns0) / 1e3 / n
			m1 := readMachineCPU()
			busy += m1.busyFraction(m0)
			machine += float64(m1.busy-m0.busy) / 1e3 / n
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(c1/n, "c1-calls/s")
	b.ReportMetric(c64/n, "c64-calls/s")
	b.ReportMetric(c64/c1, "ratio")
	b.ReportMetric(inflight/n, "c64-in-flight")
	b.ReportMetric(goCPU/n, "c64-go-cpu-us/call")
	// Zero when the broker is not a process on this machine.
	b.ReportMetric(brokerCPU/n, "c64-broker-cpu-us/call")
	b.ReportMetric(nsCPU/n, "c64-namesrv-cpu-us/call")
	b.ReportMetric(busy/n, "c64-machine-busy")
	b.ReportMetric(machine/n, "c64-machine-cpu-us/call")
	// The rate the machine would reach fully busy, at the same cost per call.
	ceiling := c64 / busy
	b.ReportMetric(float64(runtime.NumCPU()), "cores")
	b.ReportMetric(ceiling, "ceiling-calls/s")
	b.ReportMetric(ceiling/(c1/n), "ratio-ceiling")
}

// BenchmarkLegs splits the concurrency-1 round trip into its two legs: the
// request leg (the caller sends; the broker stores the request and wakes
// the responder's held pull; the push consumer hands it to a handler) and
// the reply leg (the responder's SendSync of the reply, which the broker
// stores and pushes to the caller's connection, until Request returns).
// Caller and responder share this process's clock. Metrics: p50 of each leg
// and of the whole call.
func BenchmarkLegs(b *testing.B) {
	url := needBroker(b, rocketmq.AsyncFlush)
	var mu sync.Mutex
	reqLeg := results.NewHistogram()
	h := func(req, buf []byte) []byte {
		var f wire.Fields
		if wire.Parse(req, &f) == nil && f.SentUnixNano != 0 {
			d := time.Now().UnixNano() - f.SentUnixNano
			mu.Lock()
			reqLeg.RecordValue(d)
			mu.Unlock()
		}
		return wire.Respond(req, buf)
	}
	d := rocketmq.New()
	c := cfg(rocketmq.AsyncFlush, url, nil)
	srv := driverstest.ServeWith(b, driverstest.Configure(b, d, c.Config), drivers.Place{Broker: c.url}, h)
	client := driverstest.Dial(b, driverstest.Configure(b, d, c.Config), srv.Addr())
	caller, err := client.NewCaller()
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	sum := wire.Checksum(payload)
	call := func(id uint64) time.Duration {
		t0 := time.Now()
		req := wire.Append(nil, &wire.Fields{ID: id, Payload: payload, Checksum: sum, SentUnixNano: t0.UnixNano()})
		if _, err := caller.Call(context.Background(), t0.Add(5*time.Second), req, nil); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for id := uint64(1); id <= 1000; id++ { // warm-up
		call(id)
	}
	mu.Lock()
	reqLeg.Reset()
	mu.Unlock()
	total := results.NewHistogram()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		total.RecordValue(int64(call(uint64(i) + 1001)))
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	rq, tot := float64(reqLeg.ValueAtQuantile(50))/1e3, float64(total.ValueAtQuantile(50))/1e3
	b.ReportMetric(rq, "request-leg-p50-us")
	b.ReportMetric(tot-rq, "reply-leg-p50-us")
	b.ReportMetric(tot, "call-p50-us")
}

// BenchmarkBrokerStartup starts and stops a broker from the default source
// (RPCBENCH_ROCKETMQ_SOURCE to pick one) and reports the time to ready.
func BenchmarkBrokerStartup(b *testing.B) {
	var total time.Duration
	source := ""
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		r, err := broker.StartRocketMQ(ctx, broker.StartOptions{Params: brokerParams(rocketmq.AsyncFlush)})
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
	srv, _, ns := benchResponder(b, nil) // responder concurrency: the default, 64
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

// javaCPU is the CPU time (user + system, ns) of the process on this machine
// whose command line contains class (a broker in a container is a process
// here too), or 0 when there is none.
func javaCPU(class string) int64 {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(class)) || !bytes.Contains(cmd, []byte("java")) {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after "(comm) ": state is the first; utime and stime are
		// the 12th and 13th, in clock ticks (USER_HZ, 100 on Linux).
		i := bytes.LastIndexByte(st, ')')
		f := strings.Fields(string(st[i+2:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		return (u + s) * int64(time.Second/100)
	}
	return 0
}

// machineCPU is the machine's CPU time so far (/proc/stat), in ns.
type machineCPU struct{ busy, total int64 }

func readMachineCPU() machineCPU {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var m machineCPU
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		m.total += n
		if i != 3 && i != 4 { // idle, iowait
			m.busy += n
		}
	}
	m.busy *= int64(time.Second / 100)
	m.total *= int64(time.Second / 100)
	return m
}

// busyFraction is the fraction of all cores busy since m0.
func (m machineCPU) busyFraction(m0 machineCPU) float64 {
	if m.total == m0.total {
		return 0
	}
	return float64(m.busy-m0.busy) / float64(m.total-m0.total)
}
