// Package runner is rpcbench's core: it paces calls (closed or open loop),
// times them, verifies every reply, classifies outcomes and records latency
// into per-worker HdrHistograms, merged after the run. Drivers only carry
// bytes; everything measured is measured here, once, for all of them.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
	"github.com/rpcbench/rpcbench/scenarios"
)

// Load is one cell's workload: everything but the transport.
type Load struct {
	Payload      int
	ResponseSize int
	// Concurrency is the number of callers (closed loop) or the cap on
	// calls in flight (open loop).
	Concurrency int
	// Rate > 0 selects the open loop: calls start on a fixed schedule of
	// Rate calls per second.
	Rate        float64
	ServiceTime scenarios.ServiceTime
	Duration    time.Duration
	// Calls > 0 ends the measured window after that many calls instead of
	// after Duration.
	Calls   int64
	Warmup  time.Duration
	Timeout time.Duration
	// Seed makes payload bytes and service-time draws reproducible.
	Seed uint64
}

// Live is what a cell reports while it runs, about once a second.
type Live struct {
	Elapsed     time.Duration
	Total       time.Duration
	Warmup      bool
	CallsPerSec float64
	P99         time.Duration
	Errors      int64
	Calls       int64
}

// lateThreshold is how far past its intended time an open-loop call may
// start before it counts as late.
const lateThreshold = time.Millisecond

// secondHistDigits: the per-second histograms only feed the time series
// and live progress, two significant digits are plenty.
const secondHistDigits = 2

// Measurement is what RunCell measured: the counts, the merged histograms
// and the time series.
type Measurement struct {
	Counts      results.Counts
	Corrected   *hdrhistogram.Histogram
	Uncorrected *hdrhistogram.Histogram
	Responder   *hdrhistogram.Histogram
	Series      []results.Point
	Seconds     float64
	// Interrupted is set when ctx ended the cell early.
	Interrupted bool
}

// RunCell runs one cell's load through client and returns what it measured.
// live, if not nil, is called about once a second from another goroutine.
func RunCell(ctx context.Context, client drivers.Client, load Load, live func(Live)) (*Measurement, error) {
	if load.Concurrency < 1 {
		return nil, errors.New("runner: concurrency must be at least 1")
	}
	if load.Duration <= 0 && load.Calls <= 0 {
		return nil, errors.New("runner: need a duration or a call count")
	}
	if load.Timeout <= 0 {
		load.Timeout = 5 * time.Second
	}
	workers := make([]*worker, load.Concurrency)
	for i := range workers {
		c, err := client.NewCaller()
		if err != nil {
			return nil, fmt.Errorf("new caller: %w", err)
		}
		workers[i] = newWorker(i, c, load)
	}
	s := &shared{load: load, series: &series{}}
	s.start = time.Now()
	s.startUnix = s.start.UnixNano()
	s.measureStart = load.Warmup
	if load.Calls > 0 {
		s.remaining.Store(load.Calls)
		s.end = 0 // ends by count; a safety bound follows
		s.hardEnd = s.measureStart + maxCountedRun
	} else {
		s.end = s.measureStart + load.Duration
		s.hardEnd = s.end
	}
	if load.Rate > 0 {
		s.interval = float64(time.Second) / load.Rate
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if load.Rate > 0 {
				w.openLoop(runCtx, s)
			} else {
				w.closedLoop(runCtx, s)
			}
		}()
	}
	done := make(chan struct{})
	var liveWG sync.WaitGroup
	if live != nil {
		liveWG.Add(1)
		go func() {
			defer liveWG.Done()
			s.report(done, workers, live)
		}()
	}
	wg.Wait()
	close(done)
	liveWG.Wait()
	stop := s.now()

	m := &Measurement{
		Corrected:   results.NewHistogram(),
		Uncorrected: results.NewHistogram(),
		Responder:   results.NewHistogram(),
		Interrupted: ctx.Err() != nil,
	}
	for _, w := range workers {
		w.flushSecond(s)
		m.Corrected.Merge(w.corrected)
		if load.Rate > 0 {
			m.Uncorrected.Merge(w.uncorrected)
		}
		m.Responder.Merge(w.responder)
		addCounts(&m.Counts, &w.counts)
	}
	if load.Rate == 0 {
		// closed loop: each call starts when it is sent, nothing to correct
		m.Uncorrected.Merge(m.Corrected)
	}
	measuredEnd := stop
	if s.end != 0 && measuredEnd > s.end {
		measuredEnd = s.end
	}
	if measuredEnd > s.measureStart {
		m.Seconds = (measuredEnd - s.measureStart).Seconds()
	}
	m.Series = s.series.points(m.Seconds)
	return m, nil
}

// maxCountedRun bounds a run that ends by call count, so a broken transport
// cannot keep it going for ever.
const maxCountedRun = 24 * time.Hour

// shared is the state of a cell its workers share. Times in the hot path
// are monotonic offsets from start: reading the monotonic clock alone
// (time.Since) costs half of time.Now.
type shared struct {
	load         Load
	start        time.Time
	startUnix    int64
	measureStart time.Duration
	end          time.Duration // zero when the cell ends by count
	hardEnd      time.Duration
	remaining    atomic.Int64 // measured calls left, count mode
	next         atomic.Int64 // open loop: next schedule index
	interval     float64      // open loop: ns between intended starts
	series       *series
}

// schedule is the open loop's precomputed schedule: call i is intended to
// start i intervals after the start, whatever happened to the calls before
// it. Latency is measured from this time, which corrects coordinated
// omission.
func (s *shared) schedule(i int64) time.Duration {
	return time.Duration(float64(i) * s.interval)
}

// now is the monotonic time since the cell started.
func (s *shared) now() time.Duration { return time.Since(s.start) }

// claim decides whether a call that starts at t may run, and whether it is
// measured (past the warm-up).
func (s *shared) claim(t time.Duration) (run, measured bool) {
	if t < s.measureStart {
		return true, false
	}
	if s.load.Calls > 0 {
		if t >= s.hardEnd {
			return false, false
		}
		return s.remaining.Add(-1) >= 0, true
	}
	return t < s.end, true
}

type worker struct {
	id          int
	caller      drivers.Caller
	load        Load
	rng         *rand.Rand
	payload     []byte
	tmpl        *wire.RequestTemplate
	want        []byte // the reply payload a correct responder sends back
	wantSum     uint32
	req, buf    []byte
	seq         uint64
	corrected   *hdrhistogram.Histogram
	uncorrected *hdrhistogram.Histogram
	responder   *hdrhistogram.Histogram
	counts      results.Counts
	// live counters read by the progress goroutine
	liveOK, liveErr atomic.Int64
	// the current second of the time series
	sec              int
	secStart, secEnd time.Duration // the current second's bounds
	secHist          *hdrhistogram.Histogram
	secOK            int64
	secErr           int64
	timer            *time.Timer
	_                [64]byte
}

func newWorker(id int, c drivers.Caller, load Load) *worker {
	w := &worker{
		id:          id,
		caller:      c,
		load:        load,
		rng:         rand.New(rand.NewPCG(load.Seed, uint64(id)+1)),
		corrected:   results.NewHistogram(),
		uncorrected: results.NewHistogram(),
		responder:   results.NewHistogram(),
		secHist:     hdrhistogram.New(results.HistMin, results.HistMax, secondHistDigits),
		sec:         -1,
	}
	w.payload = make([]byte, load.Payload)
	for i := range w.payload {
		w.payload[i] = byte(w.rng.Uint32())
	}
	w.want = w.payload
	w.wantSum = wire.Checksum(w.payload)
	if load.ResponseSize > 0 && load.ResponseSize != load.Payload {
		w.want = wire.ResizePayload(w.payload, load.ResponseSize)
		w.wantSum = wire.Checksum(w.want)
	}
	w.tmpl = wire.NewRequestTemplate(w.payload, uint32(load.ResponseSize))
	w.req = make([]byte, 0, load.Payload+64)
	w.buf = make([]byte, 0, len(w.want)+64)
	return w
}

type outcome int

const (
	ok outcome = iota
	timeout
	transport
	responderErr
	mismatch
	aborted
)

// call makes one call that starts at t0 and returns its outcome, the reply
// time, and the responder's handler time.
func (w *worker) call(ctx context.Context, s *shared, t0 time.Duration) (outcome, time.Duration, int64) {
	w.seq++
	id := uint64(w.id+1)<<40 | w.seq
	var st int64
	if w.load.ServiceTime.Mean > 0 {
		st = int64(w.load.ServiceTime.Sample(w.rng))
	}
	w.req = w.tmpl.Append(w.req[:0], id, st, s.startUnix+int64(t0))
	reply, err := w.caller.Call(ctx, s.start.Add(t0+w.load.Timeout), w.req, w.buf[:0])
	t1 := s.now()
	if cap(reply) > cap(w.buf) {
		w.buf = reply[:0]
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return aborted, t1, 0
		case errors.Is(err, drivers.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
			return timeout, t1, 0
		}
		return transport, t1, 0
	}
	var r wire.Fields
	if wire.Parse(reply, &r) != nil {
		return mismatch, t1, 0
	}
	if len(r.Error) != 0 {
		return responderErr, t1, r.HandlerNs
	}
	// The reply must carry the expected checksum and exactly the expected
	// bytes (which hash to it): comparing the bytes is exact and cheaper
	// than hashing them again.
	if r.ID != id || r.Checksum != w.wantSum || !bytes.Equal(r.Payload, w.want) {
		return mismatch, t1, r.HandlerNs
	}
	return ok, t1, r.HandlerNs
}

func (w *worker) record(s *shared, o outcome, intended, t0, t1 time.Duration, handlerNs int64) {
	c := &w.counts
	c.Started++
	switch o {
	case ok:
		c.OK++
		corr := t1 - intended
		w.corrected.RecordValue(int64(corr))
		if w.load.Rate > 0 {
			// closed loop: the two are the same histogram, copied at the end
			w.uncorrected.RecordValue(int64(t1 - t0))
		}
		if handlerNs > 0 {
			w.responder.RecordValue(handlerNs)
		}
		w.tick(s, t1, corr, true)
		w.liveOK.Add(1)
		return
	case timeout:
		c.Timeout++
	case transport:
		c.Transport++
	case responderErr:
		c.Responder++
	case mismatch:
		c.Mismatch++
	}
	w.tick(s, t1, 0, false)
	w.liveErr.Add(1)
}

// tick adds a call to the worker's current second of the time series.
func (w *worker) tick(s *shared, t, lat time.Duration, success bool) {
	if s.end != 0 && t >= s.end {
		// a call that started in the window and ended just after it
		t = s.end - 1
	}
	if t < w.secStart || t >= w.secEnd {
		w.flushSecond(s)
		w.sec = int((t - s.measureStart) / time.Second)
		w.secStart = s.measureStart + time.Duration(w.sec)*time.Second
		w.secEnd = w.secStart + time.Second
	}
	if success {
		w.secOK++
		w.secHist.RecordValue(int64(lat))
	} else {
		w.secErr++
	}
}

func (w *worker) flushSecond(s *shared) {
	if w.sec < 0 || (w.secOK == 0 && w.secErr == 0) {
		return
	}
	w.secHist = s.series.add(w.sec, w.secHist, w.secOK, w.secErr)
	w.secOK, w.secErr = 0, 0
}

func (w *worker) closedLoop(ctx context.Context, s *shared) {
	for ctx.Err() == nil {
		t0 := s.now()
		run, measured := s.claim(t0)
		if !run {
			return
		}
		o, t1, h := w.call(ctx, s, t0)
		if o == aborted {
			return
		}
		if measured {
			w.record(s, o, t0, t0, t1, h)
		}
	}
}

func (w *worker) openLoop(ctx context.Context, s *shared) {
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	for ctx.Err() == nil {
		intended := s.schedule(s.next.Add(1) - 1)
		if intended >= s.hardEnd {
			return
		}
		if wait := intended - s.now(); wait > 0 {
			w.timer.Reset(wait)
			select {
			case <-ctx.Done():
				w.timer.Stop()
				return
			case <-w.timer.C:
			}
		}
		run, measured := s.claim(intended)
		if !run {
			return
		}
		now := s.now()
		if now-intended > w.load.Timeout {
			// Every slot stayed busy past this call's whole timeout: it never
			// starts. Counted, never dropped silently.
			if measured {
				w.counts.Scheduled++
				w.counts.Overflow++
				w.tick(s, now, 0, false)
				w.liveErr.Add(1)
			}
			continue
		}
		t0 := s.now()
		o, t1, h := w.call(ctx, s, t0)
		if o == aborted {
			return
		}
		if measured {
			w.counts.Scheduled++
			if t0-intended > lateThreshold {
				w.counts.Late++
			}
			w.record(s, o, intended, t0, t1, h)
		}
	}
}

func addCounts(dst, src *results.Counts) {
	if src.Scheduled == 0 {
		// closed loop: every started call was scheduled
		src.Scheduled = src.Started
	}
	dst.Scheduled += src.Scheduled
	dst.Started += src.Started
	dst.OK += src.OK
	dst.Timeout += src.Timeout
	dst.Transport += src.Transport
	dst.Responder += src.Responder
	dst.Mismatch += src.Mismatch
	dst.Overflow += src.Overflow
	dst.Late += src.Late
}

// report feeds live progress about once a second until done closes.
func (s *shared) report(done <-chan struct{}, workers []*worker, live func(Live)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	total := s.load.Warmup + s.load.Duration
	var lastOK int64
	last := s.now()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			now := s.now()
			var okN, errN int64
			for _, w := range workers {
				okN += w.liveOK.Load()
				errN += w.liveErr.Load()
			}
			l := Live{
				Elapsed:     now,
				Total:       total,
				Warmup:      now < s.measureStart,
				CallsPerSec: float64(okN-lastOK) / (now - last).Seconds(),
				Errors:      errN,
				Calls:       okN + errN,
			}
			if sec := int((now-s.measureStart)/time.Second) - 1; sec >= 0 {
				l.P99 = s.series.p99(sec)
			}
			lastOK, last = okN, now
			live(l)
		}
	}
}

// series gathers per-second histograms and counts from the workers.
type series struct {
	mu   sync.Mutex
	secs map[int]*second
}

type second struct {
	hist    *hdrhistogram.Histogram
	ok, err int64
}

// add merges one worker's second and returns an empty histogram for its next.
func (s *series) add(sec int, h *hdrhistogram.Histogram, ok, errs int64) *hdrhistogram.Histogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secs == nil {
		s.secs = map[int]*second{}
	}
	cur := s.secs[sec]
	if cur == nil {
		cur = &second{hist: hdrhistogram.New(results.HistMin, results.HistMax, secondHistDigits)}
		s.secs[sec] = cur
	}
	cur.hist.Merge(h)
	cur.ok += ok
	cur.err += errs
	h.Reset()
	return h
}

func (s *series) p99(sec int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.secs[sec]; cur != nil {
		return time.Duration(cur.hist.ValueAtQuantile(99))
	}
	return 0
}

// points renders the series for a measured window of the given length.
func (s *series) points(window float64) []results.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	var secs []int
	for k := range s.secs {
		secs = append(secs, k)
	}
	sort.Ints(secs)
	out := make([]results.Point, 0, len(secs))
	for _, k := range secs {
		if k < 0 {
			continue
		}
		cur := s.secs[k]
		span := 1.0
		if rest := window - float64(k); rest > 0 && rest < 1 {
			span = rest
		}
		out = append(out, results.Point{
			Second:     k,
			OK:         cur.ok,
			Errors:     cur.err,
			Throughput: float64(cur.ok) / span,
			P50:        float64(cur.hist.ValueAtQuantile(50)) / 1e3,
			P99:        float64(cur.hist.ValueAtQuantile(99)) / 1e3,
		})
	}
	return out
}
