package driverstest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/perf/benchmath"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

// PlainLoop runs calls calls from c goroutines, each calling the function
// mk returns for it (a minimal loop written directly with the driver's
// library), and returns their p50 (ns) and calls/s. The ids it passes are
// BenchID's, as long as the runner's.
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
				if err := fns[w](BenchID(w, i)); err != nil {
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

// BenchID is the id the runner gives call i of its caller w (the caller's
// number from bit 40 up): a plain loop's ids are as long as the driver's
// calls' (JSON and Thrift's varints write them in more bytes than small
// numbers).
func BenchID(w, i int) uint64 { return uint64(w+1)<<40 | uint64(i+1) }

// SentNow is the sent_unix_nano a plain loop's call carries: the runner's
// calls carry their send time (and the responder then returns queued_ns),
// so a plain loop that leaves it out moves a smaller message both ways.
func SentNow() int64 { return time.Now().UnixNano() }

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

// CallerLoop makes PlainLoop's callers from the driver's client: each a
// Caller of its own sending what DriverCell's calls send, its reply's id
// checked, with no harness around it.
func CallerLoop(b *testing.B, client drivers.Client) func() func(id uint64) error {
	tmpl := wire.NewRequestTemplate(BenchPayload(64), 0)
	return func() func(uint64) error {
		c, err := client.NewCaller()
		if err != nil {
			b.Fatal(err)
		}
		var req, buf []byte
		return func(id uint64) error {
			req = tmpl.Append(req[:0], id, 0, SentNow())
			reply, err := c.Call(context.Background(), time.Now().Add(10*time.Second), req, buf[:0])
			if err != nil {
				return err
			}
			buf = reply
			var f wire.Fields
			if err := wire.Parse(reply, &f); err != nil || f.ID != id {
				return fmt.Errorf("reply %d to call %d (%v)", f.ID, id, err)
			}
			return nil
		}
	}
}

// DriverCell runs calls calls of 64 bytes through the driver's client at
// concurrency c with the full harness (runner.RunCell) and returns the p50
// (ns, corrected for coordinated omission) and calls/s.
func DriverCell(b *testing.B, client drivers.Client, c int, calls int64) (p50, rate float64) {
	b.Helper()
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
// p50-ratio ≤ 1.2, rate-ratio ≥ 1), over VersusRoundsDefault alternating
// rounds (VersusRounds). Both sides are warmed up first.
func Versus(b *testing.B, tr drivers.Transport, addr string, mk func() func(id uint64) error) {
	b.Helper()
	VersusRounds(b, tr, addr, mk, VersusRoundsDefault)
}

// VersusRoundsDefault is how many rounds Versus runs: one round's
// throughput ratio moved by ±5-15% from run to run on the shared 2-core
// machine this was built on, and a best-of-three ratio landed on either
// side of 1 for sides equal within that noise; ten paired rounds give the
// median ratio a 95% interval a few per cent wide.
const VersusRoundsDefault = 10

// pairedRounds is the fewest rounds whose median has a finite 95%
// confidence interval.
const pairedRounds = 6

// inTurn runs sides, starting with side r (mod their number), each from
// a collected heap.
func inTurn(r int, sides ...func()) {
	for k := range sides {
		runtime.GC()
		sides[(k+r)%len(sides)]()
	}
}

// VersusRounds is Versus with the two sides alternating for rounds
// rounds, each side keeping its best round (the lowest p50, the highest
// throughput), so that a burst of load from elsewhere on a shared machine
// does not decide the ratio. One round is Versus.
//
// With pairedRounds rounds or more it also reports each ratio per round
// (driver over the plain loop that ran just before it) as a median with
// its 95% confidence interval (golang.org/x/perf/benchmath, no
// distribution assumed): where the two sides are equal within the
// machine's noise, the best rounds' ratio lands on either side of 1 from
// run to run, and the interval says whether a difference is there at all.
//
// Each round also runs the driver's own callers in the plain loop
// (CallerLoop: no harness around them) at 64: caller-rate-ratio is that
// over the plain loop, the driver's own cost apart from the harness's
// (pacing, verifying each reply, recording four histograms per call),
// which a transport answering 100,000 calls/s on two cores feels.
func VersusRounds(b *testing.B, tr drivers.Transport, addr string, mk func() func(id uint64) error, rounds int) {
	b.Helper()
	n := max(b.N, 3000)
	// calls at 64: enough for half a second at the loop's rate (and at
	// least n), so that what a cell costs apart from its calls (64
	// goroutines started and a tail of the last calls; for the driver,
	// its histograms) weighs under 1%; at 6,400 calls a cell (60 ms for
	// net/rpc), that was a few per cent, all of it charged to the driver
	many := 64 * max(n/64, 100)
	if testing.Short() {
		// a smoke run (make test): that it runs, not what it measures
		n, many, rounds = 200, 640, 1
	}
	// One client each, warmed up at both concurrencies before the first
	// round: an HTTP/1.1 client opens a connection per caller, and a
	// cell that dialled them inside its window would be charged for it.
	client := Dial(b, tr, addr)
	PlainLoop(b, 1, 1000, mk)
	if _, rate := PlainLoop(b, 64, many, mk); !testing.Short() {
		many = 64 * max(many/64, int(rate/2/64))
	}
	DriverCell(b, client, 1, 1000)
	DriverCell(b, client, 64, int64(many))
	b.ResetTimer()
	pp, dp := math.Inf(1), math.Inf(1)
	var pr, dr float64
	var p50s, rates, callers []float64
	ml := CallerLoop(b, client)
	for r := range max(rounds, 1) {
		// Each cell starts from a collected heap (a cell does not pay
		// for the garbage of the one before), and the order of the sides
		// turns from round to round: a side that always ran first, or
		// always after the same other, could gain or lose by it.
		var p, d float64
		inTurn(r,
			func() { p, _ = PlainLoop(b, 1, n, mk) },
			func() { d, _ = DriverCell(b, client, 1, int64(n)) })
		pp, dp = min(pp, p), min(dp, d)
		p50s = append(p50s, d/p)
		var c float64
		inTurn(r,
			func() { _, p = PlainLoop(b, 64, many, mk) },
			func() { _, d = DriverCell(b, client, 64, int64(many)) },
			func() { _, c = PlainLoop(b, 64, many, ml) })
		pr, dr = max(pr, p), max(dr, d)
		rates = append(rates, d/p)
		callers = append(callers, c/p)
	}
	b.StopTimer()
	if testing.Short() {
		return // a few calls' figures would only mislead
	}
	if rounds >= pairedRounds {
		for _, r := range []struct {
			name string
			v    []float64
		}{{"p50-ratio", p50s}, {"rate-ratio", rates}, {"caller-rate-ratio", callers}} {
			s := benchmath.AssumeNothing.Summary(benchmath.NewSample(r.v, &benchmath.DefaultThresholds), 0.95)
			b.ReportMetric(s.Center, r.name+"-median")
			b.ReportMetric(s.Lo, r.name+"-lo95")
			b.ReportMetric(s.Hi, r.name+"-hi95")
		}
	}
	b.ReportMetric(pp, "plain-p50-ns")
	b.ReportMetric(dp, "driver-p50-ns")
	b.ReportMetric(dp/pp, "p50-ratio")
	b.ReportMetric(pr, "plain-c64-calls/s")
	b.ReportMetric(dr, "driver-c64-calls/s")
	b.ReportMetric(dr/pr, "rate-ratio")
}
