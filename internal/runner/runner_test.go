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
	if m.Counts.Late < 200 {
		t.Errorf("%d calls counted late, want the ~300 scheduled during the stall", m.Counts.Late)
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
	if ok != m.Counts.OK {
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
	for _, c := range []int{1, 2} {
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
