package nats_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	natsgo "github.com/nats-io/nats.go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/nats"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

// minimalLoop is the plain nats.go request-reply the driver is held to: one
// subscriber answering with the shared handler, and a loop of nc.Request
// calls carrying the same 64-byte-payload message the runner sends, against
// the broker at url.
type minimalLoop struct {
	resp, req *natsgo.Conn
	subject   string
	msg       []byte
}

func newMinimalLoop(b *testing.B, url string) *minimalLoop {
	b.Helper()
	l := &minimalLoop{subject: "minimal.req"}
	var err error
	if l.resp, err = natsgo.Connect(url); err != nil {
		b.Fatal(err)
	}
	var out []byte
	if _, err := l.resp.Subscribe(l.subject, func(m *natsgo.Msg) {
		out = wire.Respond(m.Data, out[:0])
		l.resp.Publish(m.Reply, out)
	}); err != nil {
		b.Fatal(err)
	}
	if err := l.resp.Flush(); err != nil {
		b.Fatal(err)
	}
	if l.req, err = natsgo.Connect(url); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	l.msg = wire.Append(nil, &wire.Fields{ID: 1, Payload: payload, Checksum: wire.Checksum(payload), SentUnixNano: time.Now().UnixNano()})
	b.Cleanup(func() { l.req.Close(); l.resp.Close() })
	return l
}

// run makes n calls and records each one's round trip.
func (l *minimalLoop) run(b *testing.B, n int, h *hdrhistogram.Histogram) {
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := l.req.Request(l.subject, l.msg, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		h.RecordValue(int64(time.Since(t0)))
	}
}

// runParallel makes n calls from c goroutines sharing the requesting
// connection and returns the calls per second.
func (l *minimalLoop) runParallel(b *testing.B, c, n int) float64 {
	var wg sync.WaitGroup
	var failed atomic.Bool
	t0 := time.Now()
	for g := 0; g < c; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += c {
				if _, err := l.req.Request(l.subject, l.msg, 10*time.Second); err != nil {
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		b.Fatal("minimal loop: a request failed")
	}
	return float64(n) / time.Since(t0).Seconds()
}

// driverCell is the nats driver through the full harness.
type driverCell struct {
	client drivers.Client
}

func newDriverCell(b *testing.B, variant, url string, opts map[string]string) *driverCell {
	b.Helper()
	d := nats.New()
	c := cfg(variant, url, opts)
	srv := driverstest.Serve(b, driverstest.Configure(b, d, c.Config), drivers.Place{Broker: c.url})
	return &driverCell{client: driverstest.Dial(b, driverstest.Configure(b, d, c.Config), srv.Addr())}
}

func (dc *driverCell) run(b *testing.B, concurrency int, calls int64) *runner.Measurement {
	m, err := runner.RunCell(context.Background(), dc.client, runner.Load{Payload: 64, Concurrency: concurrency, Calls: calls, Timeout: 10 * time.Second}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if m.Counts.OK != calls {
		b.Fatalf("counts %+v", m.Counts)
	}
	return m
}

// BenchmarkCoreVsMinimal measures, in one run against one embedded server,
// the p50 of a minimal nats.go Request loop and of the nats driver's core
// variant through the full harness, both at concurrency 1 with a 64-byte
// payload (target: ratio ≤ 1.2). The two alternate in ten rounds so drift
// on a shared machine hits both alike.
func BenchmarkCoreVsMinimal(b *testing.B) {
	bk, _ := startBroker(b, nil)
	loop := newMinimalLoop(b, bk.URL)
	dc := newDriverCell(b, "core", bk.URL, nil)
	// warm both paths
	loop.run(b, 2000, results.NewHistogram())
	dc.run(b, 1, 2000)

	n := max(b.N, 10000)
	const rounds = 10
	base, drv := results.NewHistogram(), results.NewHistogram()
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		loop.run(b, n/rounds, base)
		drv.Merge(dc.run(b, 1, int64(n/rounds)).Corrected)
	}
	b.StopTimer()
	bp, dp := float64(base.ValueAtQuantile(50)), float64(drv.ValueAtQuantile(50))
	b.ReportMetric(bp/1e3, "minimal-p50-µs")
	b.ReportMetric(dp/1e3, "driver-p50-µs")
	b.ReportMetric(dp/bp, "p50-ratio")
}

// BenchmarkCoreThroughput compares the core variant's throughput at
// concurrency 64 with concurrency 1 (target: ≥ 4×), alternating the two in
// ten rounds.
func BenchmarkCoreThroughput(b *testing.B) {
	benchThroughput(b, "core", nil)
}

// BenchmarkJetStreamThroughput is the same for the jetstream variant (no
// target; it shows what RPC over a durable queue costs).
func BenchmarkJetStreamThroughput(b *testing.B) {
	benchThroughput(b, "jetstream", nil)
}

// BenchmarkStreamCopyThroughput is the same for core+stream-copy (no
// target; it shows what storing a copy of every request costs).
func BenchmarkStreamCopyThroughput(b *testing.B) {
	benchThroughput(b, "core+stream-copy", nil)
}

func benchThroughput(b *testing.B, variant string, opts map[string]string) {
	bk, _ := startBroker(b, nil)
	dc := newDriverCell(b, variant, bk.URL, opts)
	dc.run(b, 64, 5000) // warm up
	n := int64(max(b.N, 20000))
	const rounds = 10
	var ok1, ok64 int64
	var s1, s64 float64
	var cpu1, cpu64 time.Duration
	p50c1 := results.NewHistogram()
	ratios := make([]float64, 0, rounds)
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		c0 := cpuTime(bk)
		m1 := dc.run(b, 1, n/rounds)
		c1 := cpuTime(bk)
		m64 := dc.run(b, 64, 4*n/rounds)
		cpu1, cpu64 = cpu1+c1-c0, cpu64+cpuTime(bk)-c1
		ok1, s1 = ok1+m1.Counts.OK, s1+m1.Seconds
		ok64, s64 = ok64+m64.Counts.OK, s64+m64.Seconds
		p50c1.Merge(m1.Corrected)
		ratios = append(ratios, (float64(m64.Counts.OK)/m64.Seconds)/(float64(m1.Counts.OK)/m1.Seconds))
	}
	b.StopTimer()
	t1, t64 := float64(ok1)/s1, float64(ok64)/s64
	slices.Sort(ratios)
	b.ReportMetric(t1, "c1-calls/s")
	b.ReportMetric(t64, "c64-calls/s")
	// c64/c1 is over the whole run; median-c64/c1 is the median of the
	// rounds' ratios, which a burst of load from elsewhere moves less.
	b.ReportMetric(t64/t1, "c64/c1")
	b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "median-c64/c1")
	b.ReportMetric(float64(p50c1.ValueAtQuantile(50))/1e3, "c1-p50-µs")
	// CPU time of the test process (caller, responder) and the broker
	// process per call: what bounds throughput on a 2-core machine.
	b.ReportMetric(float64(cpu1.Microseconds())/float64(ok1), "c1-cpu-µs/call")
	b.ReportMetric(float64(cpu64.Microseconds())/float64(ok64), "c64-cpu-µs/call")
}

// cpuTime is the CPU time (user + system) this process and the broker's
// process (when it runs in its own) used so far.
func cpuTime(bk broker.Broker) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + processCPU(bk.Details["pid"])
}

// processCPU reads utime + stime of process pid from /proc (clock ticks of
// 10 ms), 0 when pid is empty or unreadable.
func processCPU(pid string) time.Duration {
	if pid == "" {
		return 0
	}
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	// after "pid (comm) ": state is field 3; utime and stime are 14 and 15
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkCoreOptions reports core throughput at concurrency 64 for a few
// option sets, the evidence behind the defaults. The sets take turns in
// five rounds so drift on a shared machine hits them alike.
func BenchmarkCoreOptions(b *testing.B) {
	bk, _ := startBroker(b, nil)
	sets := []struct{ connections, responders string }{{"1", "1"}, {"2", "1"}, {"1", "2"}, {"2", "2"}, {"4", "2"}}
	cells := make([]*driverCell, len(sets))
	for i, o := range sets {
		cells[i] = newDriverCell(b, "core", bk.URL, map[string]string{"connections": o.connections, "responders": o.responders})
		cells[i].run(b, 64, 5000)
	}
	n := int64(max(b.N, 20000))
	const rounds = 5
	ok := make([]int64, len(sets))
	secs := make([]float64, len(sets))
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		for i, dc := range cells {
			m := dc.run(b, 64, n/rounds)
			ok[i] += m.Counts.OK
			secs[i] += m.Seconds
		}
	}
	b.StopTimer()
	for i, o := range sets {
		b.ReportMetric(float64(ok[i])/secs[i], "c"+o.connections+"r"+o.responders+"-calls/s")
	}
}

// BenchmarkCoreVsMinimalC64 compares throughput at concurrency 64: 64
// goroutines calling nc.Request on one connection against one plain
// subscriber, and the core variant with its default options through the
// harness. It shows how much of the broker path's capacity the driver uses.
func BenchmarkCoreVsMinimalC64(b *testing.B) {
	bk, _ := startBroker(b, nil)
	loop := newMinimalLoop(b, bk.URL)
	dc := newDriverCell(b, "core", bk.URL, nil)
	loop.runParallel(b, 64, 5000)
	dc.run(b, 64, 5000)
	n := max(b.N, 20000)
	const rounds = 5
	var minimal, driver float64
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		minimal += loop.runParallel(b, 64, n/rounds) / rounds
		m := dc.run(b, 64, int64(n/rounds))
		driver += float64(m.Counts.OK) / m.Seconds / rounds
	}
	b.StopTimer()
	b.ReportMetric(minimal, "minimal-calls/s")
	b.ReportMetric(driver, "driver-calls/s")
	b.ReportMetric(driver/minimal, "driver/minimal")
}
