package runner

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

// funcClient is an in-process driver client: every call runs fn, no I/O.
type funcClient struct {
	fn func(n int64, req, buf []byte) ([]byte, error)
	n  atomic.Int64
}

func (c *funcClient) NewCaller() (drivers.Caller, error) { return c, nil }
func (c *funcClient) Close() error                       { return nil }
func (c *funcClient) Call(_ context.Context, _ time.Time, req, buf []byte) ([]byte, error) {
	return c.fn(c.n.Add(1), req, buf)
}

// echo returns the request bytes: a valid reply (same id, payload and
// checksum) with no responder work at all.
func echo(_ int64, req, buf []byte) ([]byte, error) { return append(buf, req...), nil }

func TestSchedule(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tc := range []struct {
		rate float64
		i    int64
		want time.Duration
	}{
		{1, 0, 0},
		{1, 1, time.Second},
		{1000, 1, time.Millisecond},
		{1000, 1500, 1500 * time.Millisecond},
		{3, 3, time.Second},
		{0.5, 2, 4 * time.Second},
		{1e6, 1e6, time.Second},
	} {
		s := &shared{start: start, interval: float64(time.Second) / tc.rate}
		if got := s.schedule(tc.i); got != tc.want {
			t.Errorf("rate %v: call %d intended at +%v, want +%v", tc.rate, tc.i, got, tc.want)
		}
	}
}

func TestCountsAddUp(t *testing.T) {
	// Calls cycle through every outcome the runner classifies.
	fn := func(n int64, req, buf []byte) ([]byte, error) {
		var f wire.Fields
		if err := wire.Parse(req, &f); err != nil {
			return nil, err
		}
		switch n % 5 {
		case 1:
			return append(buf, req...), nil
		case 2:
			return nil, fmt.Errorf("x: %w", drivers.ErrTimeout)
		case 3:
			return nil, errors.New("connection reset")
		case 4:
			return wire.Append(buf, &wire.Fields{ID: f.ID, Error: []byte("boom")}), nil
		}
		f.ID++ // a reply to some other call
		return wire.Append(buf, &f), nil
	}
	m, err := RunCell(context.Background(), &funcClient{fn: fn}, Load{Payload: 32, Concurrency: 1, Calls: 1000, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Counts
	want := results.Counts{Scheduled: 1000, Started: 1000, OK: 200, Timeout: 200, Transport: 200, Responder: 200, Mismatch: 200}
	if c != want {
		t.Fatalf("counts %+v, want %+v", c, want)
	}
	if m.Corrected.TotalCount() != 200 {
		t.Fatalf("latency recorded for %d calls, want the 200 ok ones", m.Corrected.TotalCount())
	}
}

func TestMismatchDetection(t *testing.T) {
	for name, corrupt := range map[string]func(f *wire.Fields){
		"checksum":  func(f *wire.Fields) { f.Checksum ^= 1 },
		"payload":   func(f *wire.Fields) { f.Payload = append([]byte{}, f.Payload...); f.Payload[0] ^= 1 },
		"truncated": func(f *wire.Fields) { f.Payload = f.Payload[1:]; f.Checksum = wire.Checksum(f.Payload) },
	} {
		t.Run(name, func(t *testing.T) {
			fn := func(_ int64, req, buf []byte) ([]byte, error) {
				var f wire.Fields
				wire.Parse(req, &f)
				corrupt(&f)
				return wire.Append(buf, &f), nil
			}
			m, err := RunCell(context.Background(), &funcClient{fn: fn}, Load{Payload: 16, Concurrency: 2, Calls: 50}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Counts.Mismatch != 50 || m.Counts.OK != 0 {
				t.Fatalf("counts %+v, want 50 mismatches", m.Counts)
			}
		})
	}
}

// TestCoordinatedOmission stalls the transport once in an open-loop run
// with one call in flight: the calls scheduled during the stall wait, and
// only the latency measured from their intended start shows it.
func TestCoordinatedOmission(t *testing.T) {
	const stall = 300 * time.Millisecond
	fn := func(n int64, req, buf []byte) ([]byte, error) {
		if n == 500 {
			time.Sleep(stall)
		}
		return append(buf, req...), nil
	}
	m, err := RunCell(context.Background(), &funcClient{fn: fn}, Load{Payload: 16, Concurrency: 1, Rate: 1000, Calls: 2000, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Counts.OK != 2000 || m.Counts.Scheduled != 2000 {
		t.Fatalf("counts %+v", m.Counts)
	}
	corr, unc := results.Summarize(m.Corrected), results.Summarize(m.Uncorrected)
	// About 300 of the 2000 calls were due during the stall, waiting up to
	// 300 ms: the corrected p99 is in the hundreds of milliseconds, while
	// the uncorrected one sees a single slow call among 2000.
	if corr.P99 < 100_000 {
		t.Errorf("corrected p99 %.0fµs: the stall is hidden", corr.P99)
	}
	if unc.P99 > corr.P99/10 {
		t.Errorf("uncorrected p99 %.0fµs vs corrected %.0fµs: expected the uncorrected to miss the stall", unc.P99, corr.P99)
	}
	if unc.Max < float64(stall.Microseconds()) {
		t.Errorf("uncorrected max %.0fµs, want the stalled call itself (≥ %v)", unc.Max, stall)
	}
	if m.Counts.Queued < 200 {
		t.Errorf("%d calls counted queued, want the ~300 scheduled during the stall", m.Counts.Queued)
	}
}

// TestOverflow: with the in-flight cap full past their timeout, scheduled
// calls are counted as overflow, never silently dropped.
func TestOverflow(t *testing.T) {
	fn := func(n int64, req, buf []byte) ([]byte, error) {
		if n == 1 {
			time.Sleep(200 * time.Millisecond)
		}
		return append(buf, req...), nil
	}
	m, err := RunCell(context.Background(), &funcClient{fn: fn}, Load{Payload: 8, Concurrency: 1, Rate: 1000, Calls: 500, Timeout: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Counts
	if c.Overflow == 0 {
		t.Fatalf("no overflow counted: %+v", c)
	}
	if c.Scheduled != c.Started+c.Overflow || c.Started != c.OK+c.Failed() || c.Scheduled != 500 {
		t.Fatalf("counts do not add up: %+v", c)
	}
}

func TestHistogramMerge(t *testing.T) {
	// Per-worker histograms merged equal one histogram that saw every value.
	all := results.NewHistogram()
	merged := results.NewHistogram()
	for w := 0; w < 8; w++ {
		h := results.NewHistogram()
		for i := 0; i < 1000; i++ {
			v := int64((w*1000 + i) * 997 % 5_000_000)
			h.RecordValue(v + 1000)
			all.RecordValue(v + 1000)
		}
		merged.Merge(h)
	}
	for _, q := range []float64{0, 50, 90, 99, 99.9, 100} {
		if a, b := all.ValueAtQuantile(q), merged.ValueAtQuantile(q); a != b {
			t.Errorf("q%v: merged %d, single %d", q, b, a)
		}
	}
	// and survive the round trip through results
	enc, err := results.EncodeHistogram(merged)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := results.DecodeHistogram(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !dec.Equals(merged) {
		t.Fatal("decoded histogram differs")
	}
}

func TestTimeSeries(t *testing.T) {
	m, err := RunCell(context.Background(), &funcClient{fn: echo}, Load{Payload: 8, Concurrency: 1, Rate: 500, Duration: 2500 * time.Millisecond, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Series) != 3 {
		t.Fatalf("%d points for 2.5 s, want 3: %+v", len(m.Series), m.Series)
	}
	var ok int64
	for _, p := range m.Series {
		ok += p.OK
	}
	// calls that end after the window (started late on a busy machine) are
	// in the counts, not in the series
	if ok > m.Counts.OK || float64(m.Counts.OK-ok) > 0.02*float64(m.Counts.OK) {
		t.Fatalf("series holds %d calls, counts %d", ok, m.Counts.OK)
	}
}

func TestWarmupExcluded(t *testing.T) {
	c := &funcClient{fn: echo}
	m, err := RunCell(context.Background(), c, Load{Payload: 8, Concurrency: 1, Rate: 1000, Warmup: 300 * time.Millisecond, Calls: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Counts.Started != 100 || c.n.Load() < 250 {
		t.Fatalf("measured %d of %d calls; want 100 measured after ~300 warm-up calls", m.Counts.Started, c.n.Load())
	}
}

func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	m, err := RunCell(ctx, &funcClient{fn: echo}, Load{Payload: 8, Concurrency: 4, Duration: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Interrupted || m.Counts.OK == 0 || m.Counts.Started != m.Counts.OK+m.Counts.Failed() {
		t.Fatalf("interrupted=%v counts %+v", m.Interrupted, m.Counts)
	}
}

// BenchmarkHarness measures what the core adds per call: an in-process
// driver that does no I/O and no responder work (it echoes the request,
// a valid reply), so everything timed is pacing, encoding, verification and
// recording.
func BenchmarkHarness(b *testing.B) {
	for _, c := range []int{1, 2, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			m, err := RunCell(context.Background(), &funcClient{fn: echo}, Load{Payload: 64, Concurrency: c, Calls: int64(b.N)}, nil)
			if err != nil || m.Counts.OK != int64(b.N) {
				b.Fatalf("err %v counts %+v", err, m.Counts)
			}
		})
	}
}

// spin busy-waits d: work that takes a known time without a timer.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// TestOpenLoopUnstalled: with a transport that never holds the generator
// up, corrected and uncorrected latency agree: the generator's own
// lateness is not charged to the transport.
func TestOpenLoopUnstalled(t *testing.T) {
	fn := func(_ int64, req, buf []byte) ([]byte, error) {
		spin(50 * time.Microsecond)
		return append(buf, req...), nil
	}
	for _, rate := range []float64{200, 2000} {
		m, err := RunCell(context.Background(), &funcClient{fn: fn}, Load{Payload: 16, Concurrency: 64, Rate: rate, Duration: time.Second, Timeout: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		corr, unc := results.Summarize(m.Corrected), results.Summarize(m.Uncorrected)
		if corr.P50 > unc.P50*1.1+5 {
			t.Errorf("rate %v: corrected p50 %.1fµs against uncorrected %.1fµs: the generator's lateness is charged to the transport", rate, corr.P50, unc.P50)
		}
		if m.Lateness == nil || m.Lateness.TotalCount() != m.Counts.Started {
			t.Errorf("rate %v: generator lateness recorded for %v of %d calls", rate, m.Lateness, m.Counts.Started)
		}
		if m.Counts.Queued != 0 {
			t.Errorf("rate %v: %d calls queued with 64 slots and 50 µs calls", rate, m.Counts.Queued)
		}
	}
}

// TestOpenLoopWindow: the measured window is the schedule's duration, not
// the time of the last completion.
func TestOpenLoopWindow(t *testing.T) {
	m, err := RunCell(context.Background(), &funcClient{fn: echo}, Load{Payload: 8, Concurrency: 4, Rate: 2, Duration: 2 * time.Second, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Seconds != 2 || m.Counts.Scheduled != 4 || m.Counts.OK != 4 {
		t.Fatalf("window %vs, counts %+v; want 2 s and 4 calls", m.Seconds, m.Counts)
	}
	if len(m.Series) != 2 {
		t.Fatalf("series %+v, want 2 points", m.Series)
	}
}

// TestLateReplyIsTimeout: the core's clock classifies: a reply that
// arrives after the deadline is a timeout whatever the driver returned.
func TestLateReplyIsTimeout(t *testing.T) {
	fn := func(n int64, req, buf []byte) ([]byte, error) {
		if n%2 == 0 {
			time.Sleep(150 * time.Millisecond)
		}
		return append(buf, req...), nil
	}
	for _, load := range []Load{
		{Payload: 8, Concurrency: 1, Calls: 6, Timeout: 50 * time.Millisecond},
		{Payload: 8, Concurrency: 4, Rate: 20, Calls: 6, Timeout: 50 * time.Millisecond},
	} {
		m, err := RunCell(context.Background(), &funcClient{fn: fn}, load, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Counts.OK != 3 || m.Counts.Timeout != 3 {
			t.Errorf("rate %v: counts %+v, want 3 ok and 3 timeouts", load.Rate, m.Counts)
		}
		if m.All.TotalCount() != 6 || m.Corrected.TotalCount() != 3 {
			t.Errorf("rate %v: all-calls histogram %d, ok %d; want 6 and 3", load.Rate, m.All.TotalCount(), m.Corrected.TotalCount())
		}
		// timeouts count at their timeout in the all-calls distribution
		if max := time.Duration(m.All.Max()); max < 49*time.Millisecond || max > 51*time.Millisecond {
			t.Errorf("rate %v: all-calls max %v, want the 50ms timeout", load.Rate, max)
		}
		if len(m.Errors) != 1 || m.Errors[0].Count != 3 {
			t.Errorf("rate %v: errors %+v, want one message counted 3 times", load.Rate, m.Errors)
		}
	}
}

// blockClient's calls never return until release closes, ignoring their
// context and deadline: the worst a driver can do.
type blockClient struct{ release chan struct{} }

func (c *blockClient) NewCaller() (drivers.Caller, error) { return c, nil }
func (c *blockClient) Close() error                       { return nil }
func (c *blockClient) Call(context.Context, time.Time, []byte, []byte) ([]byte, error) {
	<-c.release
	return nil, errors.New("released")
}

// TestNoCellHangs: a driver that ignores its deadline and context cannot
// hold a cell past its window plus one timeout plus the grace: the calls
// out are abandoned and counted as stuck.
func TestNoCellHangs(t *testing.T) {
	for _, load := range []Load{
		{Payload: 8, Concurrency: 4, Duration: 300 * time.Millisecond, Timeout: 100 * time.Millisecond},
		{Payload: 8, Concurrency: 4, Rate: 100, Duration: 300 * time.Millisecond, Timeout: 100 * time.Millisecond},
	} {
		c := &blockClient{release: make(chan struct{})}
		start := time.Now()
		m, err := RunCell(context.Background(), c, load, nil)
		took := time.Since(start)
		close(c.release)
		if err != nil {
			t.Fatal(err)
		}
		bound := load.Duration + load.Timeout + StopGrace + abandonGrace + 500*time.Millisecond
		if took > bound {
			t.Errorf("rate %v: the cell took %v, bound %v", load.Rate, took, bound)
		}
		cn := m.Counts
		if cn.Stuck != 4 || cn.OK != 0 || cn.Started != cn.OK+cn.Failed() || cn.Scheduled != cn.Started+cn.Overflow {
			t.Errorf("rate %v: counts %+v, want 4 stuck and counts that add up", load.Rate, cn)
		}
		if load.Rate > 0 && cn.Scheduled != 30 {
			t.Errorf("open loop: %d scheduled, want all 30 of the window accounted for", cn.Scheduled)
		}
		if m.All.TotalCount() != cn.Scheduled {
			t.Errorf("rate %v: all-calls histogram holds %d of %d calls", load.Rate, m.All.TotalCount(), cn.Scheduled)
		}
	}
}

// TestInterruptBounded: an interrupted cell whose driver ignores ctx still
// returns within the abandon grace.
func TestInterruptBounded(t *testing.T) {
	c := &blockClient{release: make(chan struct{})}
	defer close(c.release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	m, err := RunCell(ctx, c, Load{Payload: 8, Concurrency: 2, Duration: time.Hour, Timeout: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 100*time.Millisecond+abandonGrace+500*time.Millisecond {
		t.Fatalf("interrupted cell returned after %v", took)
	}
	if !m.Interrupted {
		t.Fatal("not marked interrupted")
	}
}

// TestSeriesZeros: a stall shows as seconds without calls, not as a line
// drawn across them.
func TestSeriesZeros(t *testing.T) {
	fn := func(n int64, req, buf []byte) ([]byte, error) {
		if n == 10 {
			time.Sleep(2200 * time.Millisecond)
		}
		return append(buf, req...), nil
	}
	m, err := RunCell(context.Background(), &funcClient{fn: fn}, Load{Payload: 8, Concurrency: 1, Duration: 3500 * time.Millisecond, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Series) != 4 {
		t.Fatalf("%d points for a 3.5 s window, want 4: %+v", len(m.Series), m.Series)
	}
	if p := m.Series[1]; p.OK != 0 || p.Throughput != 0 {
		t.Fatalf("second 1 during the stall: %+v, want zero", p)
	}
	var ok int64
	for _, p := range m.Series {
		ok += p.OK
	}
	// a call that ends after the window is counted, not in the series
	if ok != m.Counts.OK && ok != m.Counts.OK-1 {
		t.Fatalf("series holds %d calls, counts %d", ok, m.Counts.OK)
	}
}

// TestShardsBounded: many callers share a bounded number of histogram sets.
func TestShardsBounded(t *testing.T) {
	for _, load := range []Load{
		{Concurrency: 4096, Duration: time.Second},
		{Concurrency: 100_000, Rate: 1000, Duration: time.Second},
		{Concurrency: 1, Duration: time.Second},
	} {
		s := newShared(load)
		if len(s.shards) > MaxShards || (load.Concurrency <= MaxShards) == s.shards[0].locked {
			t.Errorf("concurrency %d: %d shards, locked %v", load.Concurrency, len(s.shards), s.shards[0].locked)
		}
	}
}

func TestSettledWindows(t *testing.T) {
	w := func(tput, p50 float64) results.WarmupWindow { return results.WarmupWindow{Throughput: tput, P50: p50} }
	for _, tc := range []struct {
		ws   []results.WarmupWindow
		want bool
	}{
		{nil, false},
		{[]results.WarmupWindow{w(100, 10), w(101, 10)}, false},
		{[]results.WarmupWindow{w(100, 10), w(105, 10.5), w(109, 10.9)}, true},
		{[]results.WarmupWindow{w(50, 30), w(100, 10), w(105, 10.5), w(109, 10.9)}, true},
		{[]results.WarmupWindow{w(100, 10), w(105, 10.5), w(118, 10.9)}, true},  // throughput 18% apart: the VM's noise
		{[]results.WarmupWindow{w(100, 10), w(105, 10.5), w(122, 10.9)}, false}, // throughput 22% apart
		{[]results.WarmupWindow{w(100, 10), w(105, 11.5), w(109, 10.9)}, false}, // p50 15% apart
		{[]results.WarmupWindow{w(100, 10), w(100, 10), {Throughput: 100, P50: 10, Failed: 1}}, false},
		{[]results.WarmupWindow{w(0, 0), w(0, 0), w(0, 0)}, false},
		// no trend: grpc/stream at one caller in a default run, p50s
		// scattered wider than the band, with no direction
		{[]results.WarmupWindow{w(10771, 84.5), w(11606, 74.8), w(16499, 43.4), w(12628, 70.1), w(10716, 85.9)}, true},
		// tcp: throughput 44k-83k calls/s at a steady p50
		{[]results.WarmupWindow{w(64367, 10.0), w(44661, 10.4), w(64182, 9.9), w(47505, 10.2), w(78231, 9.9)}, true},
		// the same scatter with one failed call: not settled
		{[]results.WarmupWindow{w(10771, 84.5), w(11606, 74.8), {Throughput: 16499, P50: 43.4, Failed: 1}, w(12628, 70.1), w(10716, 85.9)}, false},
		// RocketMQ still warming: p50 falling one way through the noise
		{[]results.WarmupWindow{w(196, 4378.6), w(229, 3649.5), w(246, 3555.3), w(279, 3051.5), w(307, 2828.3)}, false},
		// a climb in p50 through the scatter (the last three 23% apart,
		// the line through all five 20% of the median): a trend
		{[]results.WarmupWindow{w(100, 10), w(100, 12), w(100, 11), w(100, 13.5), w(100, 12.2)}, false},
		// the same scatter with no climb: settled
		{[]results.WarmupWindow{w(100, 12), w(100, 10), w(100, 13.5), w(100, 11), w(100, 12.2)}, true},
		// throughput falling 8% a window at a steady p50: a trend
		{[]results.WarmupWindow{w(1000, 10), w(920, 10), w(840, 10), w(760, 10), w(680, 10)}, false},
	} {
		if got := SettledWindows(tc.ws); got != tc.want {
			t.Errorf("%+v: settled %v, want %v", tc.ws, got, tc.want)
		}
	}
}

func TestSettleWindowFor(t *testing.T) {
	for _, tc := range []struct {
		load Load
		want time.Duration
	}{
		{Load{Duration: 5 * time.Second}, time.Second},
		{Load{Duration: 500 * time.Millisecond}, 500 * time.Millisecond},
		{Load{Duration: 700 * time.Millisecond}, 700 * time.Millisecond},
		{Load{Duration: 100 * time.Millisecond}, 500 * time.Millisecond},
		{Load{Calls: 1000}, time.Second},
	} {
		if got := settleWindowFor(tc.load); got != tc.want {
			t.Errorf("%+v: window %v, want %v", tc.load, got, tc.want)
		}
	}
}

func TestNumbersOut(t *testing.T) {
	for in, want := range map[string]string{
		"tcp: call timed out after 4.832533883s": "tcp: call timed out after Ns",
		"dial 127.0.0.1:4222: refused":           "dial N:N: refused",
		"no digits":                              "no digits",
		"v1.2.3 and 42.":                         "vN and N.",
	} {
		if got := numbersOut(in); got != want {
			t.Errorf("numbersOut(%q) = %q, want %q", in, got, want)
		}
	}
}
