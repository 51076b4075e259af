// Package runner is rpcbench's core: it paces calls (closed or open loop),
// times them by its own clock, enforces every call's deadline, verifies
// every reply, classifies outcomes and records latency into HdrHistograms.
// Drivers only carry bytes; everything measured is measured here, once, for
// all of them.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/clock"
	"github.com/rpcbench/rpcbench/internal/ledger"
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
	// after Duration (open loop: the schedule holds that many calls).
	Calls   int64
	Warmup  time.Duration
	Timeout time.Duration
	// Seed makes payload bytes and service-time draws reproducible.
	Seed uint64
	// OnStart, when set, is called with the cell's start (its warm-up
	// begins then; the measured window Warmup later), once every caller
	// exists.
	OnStart func(start time.Time)
	// Phases, when set, replace the fixed Rate of the open loop: the
	// schedule runs each phase's rate for its duration (the warm-up at the
	// first phase's rate); Duration is their total, and Rate must be set
	// (their mean) to select the open loop.
	Phases []Phase
	// Journal keeps a record of every call (warm-up included) for a fault
	// cell's accounting: Measurement.Journal.
	Journal bool
	// IDBase is ORed into every call id (its top byte tells one cell's
	// calls from another's in a responder's ledger).
	IDBase uint64
	// ChainDepth > 1 makes every call a call chain of that many hops
	// (internal/chain); ChainAsync sends the hops after the first as
	// fire-and-forget calls. A synchronous chain's reply must say that
	// every hop ran.
	ChainDepth int
	ChainAsync bool
}

// Phase is one stretch of an open-loop schedule at one rate.
type Phase struct {
	Duration time.Duration
	Rate     float64
}

// phaseStart is where a phase of the schedule begins: its first call's
// index and time, and the interval between its calls.
type phaseStart struct {
	index    int64
	at       time.Duration
	interval float64
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

const (
	// lateThreshold: an open-loop call the generator itself started more
	// than this after its intended time counts as late.
	lateThreshold = time.Millisecond
	// GeneratorP99Bound and GeneratorLateBound are what the open-loop
	// generator must keep to: its own lateness at p99, and the share of
	// calls it started more than 1 ms late. A cell beyond either is marked
	// generator-limited.
	GeneratorP99Bound  = 200 * time.Microsecond
	GeneratorLateBound = 0.01
	// StopGrace is how long past its window plus one timeout a cell may
	// run before the calls still out are abandoned (counted as stuck).
	StopGrace = time.Second
	// abandonGrace is how long workers get to return once their context
	// is cancelled before the core abandons them.
	abandonGrace = 500 * time.Millisecond
	// MaxShards bounds the number of histogram sets a cell records into:
	// workers share them beyond that.
	MaxShards = 8
	// maxErrorKinds is how many distinct error messages a cell keeps.
	maxErrorKinds = 5
	// secondHistDigits: the per-second histograms only feed the time series
	// and live progress, two significant digits are plenty.
	secondHistDigits = 2
	// preciseMinInterval: open-loop calls more than this apart are paced
	// by a precise waiter (see pace).
	preciseMinInterval = 50 * time.Microsecond
	// openPrespawn is how many open-loop workers start before the first
	// call; more start as calls find every worker busy, up to the cap.
	openPrespawn = 8
)

// Measurement is what RunCell measured: the counts, the merged histograms
// and the time series.
type Measurement struct {
	Counts results.Counts
	// Corrected holds ok calls, from their intended start (closed loop:
	// their send), less the generator's own lateness.
	Corrected *hdrhistogram.Histogram
	// Uncorrected holds ok calls from their actual send.
	Uncorrected *hdrhistogram.Histogram
	// All holds every call that was due: ok, failed (timeouts, stuck and
	// overflow at their timeout), corrected like Corrected.
	All       *hdrhistogram.Histogram
	Responder *hdrhistogram.Histogram
	// Queue holds, for ok calls, the time from the caller's send to the
	// responder's handler start as the responder measured it against the
	// caller's wall clock (wire queued_ns; empty when replies carry none).
	Queue *hdrhistogram.Histogram
	// Lateness is the open-loop generator's own lateness per call (nil in
	// closed loop).
	Lateness *hdrhistogram.Histogram
	Series   []results.Point
	Seconds  float64
	// Errors are the first distinct failure messages with their counts.
	Errors []results.ErrorCount
	// GeneratorLimited is set when the generator missed its bounds; the
	// reason says which.
	GeneratorLimited bool
	GeneratorReason  string
	// HistMax is the largest value the histograms could hold (ns).
	HistMax int64
	// Interrupted is set when ctx ended the cell early.
	Interrupted bool
	// Journal is every call of the cell in no particular order, when
	// Load.Journal asked for it.
	Journal []ledger.Call
	// Orphans is how many replies arrived for calls no longer waiting,
	// when the driver counts them (drivers.OrphanCounter) and the cell
	// keeps a journal.
	Orphans *int64
}

// HistMax is the range of a cell's latency histograms: the longest latency
// a call can record is a queued open-loop call (up to one timeout waiting
// for a slot) that then runs to its deadline plus the stop grace.
func HistMax(timeout time.Duration) int64 {
	return max(int64(results.HistMax), int64(2*timeout+StopGrace+abandonGrace))
}

// RunCell runs one cell's load through client and returns what it measured.
// live, if not nil, is called about once a second from another goroutine.
// It returns within the cell's window plus one timeout plus StopGrace and
// abandonGrace, whatever the driver does: calls still out then are
// abandoned and counted as stuck.
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
	s := newShared(load)
	var orphans0 int64
	if oc, ok := client.(drivers.OrphanCounter); ok {
		orphans0 = oc.Orphans()
	}
	workers := s.workers
	if load.Rate == 0 {
		for i := 0; i < load.Concurrency; i++ {
			c, err := client.NewCaller()
			if err != nil {
				return nil, fmt.Errorf("new caller: %w", err)
			}
			workers = append(workers, s.newWorker(i, c))
		}
	} else {
		for i := 0; i < min(load.Concurrency, openPrespawn); i++ {
			c, err := client.NewCaller()
			if err != nil {
				return nil, fmt.Errorf("new caller: %w", err)
			}
			workers = append(workers, s.newWorker(i, c))
		}
	}
	s.workers = workers
	s.spawned.Store(int64(len(workers)))
	s.reserved.Store(int64(len(workers)))
	s.start = time.Now()
	s.startUnix = s.start.UnixNano()
	if load.OnStart != nil {
		load.OnStart(s.start)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if load.Rate > 0 {
		s.client, s.wg = client, &wg
		for i, w := range s.workers {
			wg.Add(1)
			go func() { defer wg.Done(); w.openLoop(runCtx, s, i == 0) }()
		}
	} else {
		for _, w := range s.workers {
			wg.Add(1)
			go func() { defer wg.Done(); w.closedLoop(runCtx, s) }()
		}
	}
	done := make(chan struct{})
	var liveWG sync.WaitGroup
	if live != nil {
		liveWG.Add(1)
		go func() {
			defer liveWG.Done()
			s.report(done, live)
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	s.wait(ctx, cancel, allDone)
	stop := s.now()
	close(done)
	liveWG.Wait()
	m := s.collect(ctx, stop)
	if oc, ok := client.(drivers.OrphanCounter); ok && load.Journal {
		n := oc.Orphans() - orphans0
		m.Orphans = &n
	}
	return m, nil
}

// wait returns once every worker has returned, or once the cell has run
// past its hard stop (or ctx ended) and the workers still inside a call
// have been abandoned.
func (s *shared) wait(ctx context.Context, cancel context.CancelFunc, allDone <-chan struct{}) {
	var hard <-chan time.Time
	if s.hardStop > 0 {
		t := time.NewTimer(s.hardStop - s.now())
		defer t.Stop()
		hard = t.C
	}
	select {
	case <-allDone:
		return
	case <-hard:
	case <-ctx.Done():
	}
	cancel()
	select {
	case <-allDone:
		return
	case <-time.After(abandonGrace):
	}
	// Workers still inside a driver's Call are abandoned: they will never
	// touch their shard again. The others are between calls and return
	// promptly now that the context is cancelled.
	for {
		s.mu.Lock()
		ws := s.workers
		s.mu.Unlock()
		pending := false
		for _, w := range ws {
			if w.exited.Load() || w.state.Load() == stateAbandoned {
				continue
			}
			if w.state.CompareAndSwap(stateInCall, stateAbandoned) {
				s.abandoned = append(s.abandoned, w)
				continue
			}
			pending = true
		}
		if !pending {
			select {
			case <-allDone:
				return
			default:
			}
			return
		}
		select {
		case <-allDone:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// Worker states: a worker inside a driver's Call is abandoned by switching
// stateInCall to stateAbandoned; it checks on its way out of Call and
// returns without recording.
const (
	stateIdle int32 = iota
	stateInCall
	stateAbandoned
)

// shared is the state of a cell its workers share. Times in the hot path
// are monotonic offsets from start: reading the monotonic clock alone
// (time.Since) costs half of time.Now.
type shared struct {
	load      Load
	start     time.Time
	startUnix int64
	// measureStart is where the measured window starts (after the warm-up);
	// end where it ends, zero when a closed-loop cell ends by count.
	measureStart time.Duration
	end          time.Duration
	// hardStop is when the cell stops waiting for calls (zero: never).
	hardStop  time.Duration
	remaining atomic.Int64 // closed loop, count mode: measured calls left
	interval  float64      // open loop: ns between intended starts (phases: the shortest)
	phases    []phaseStart // open loop with phases: where each begins
	scheduled int64        // open loop: calls in the schedule, warm-up included
	histMax   int64

	tmpl    *wire.RequestTemplate
	want    []byte // the reply payload a correct responder sends back
	wantSum uint32
	// wantHops is the chain_hops a chain's reply must carry: the depth of
	// a synchronous chain, 1 for an asynchronous one.
	wantHops int

	shards []*shard
	// disp is the shard of open-loop calls that never started (the
	// token holder records them)
	disp *shard
	// open loop: the token, the schedule's cursor (touched by the token
	// holder only), and whether the schedule is done
	token    chan struct{}
	next     int64
	paceDone atomic.Bool
	inCall   atomic.Int64 // open loop: workers inside a call
	spawned  atomic.Int64 // open loop: len(workers), read by the token holder without the lock
	// open loop: callers made ahead for new workers (spareCallers),
	// the callers made or being made (workers' and spares), and
	// whether a goroutine is making spares
	spares    chan drivers.Caller
	reserved  atomic.Int64
	refilling atomic.Bool
	client    drivers.Client
	wg        *sync.WaitGroup

	mu        sync.Mutex // guards workers (the token holder adds to them)
	workers   []*worker
	abandoned []*worker

	series *series
	// dispJournal: the calls that never started (Load.Journal)
	dispJournal []ledger.Call
}

func newShared(load Load) *shared {
	s := &shared{load: load, series: &series{}, histMax: HistMax(load.Timeout)}
	s.measureStart = load.Warmup
	switch {
	case load.Rate > 0 && len(load.Phases) > 0:
		// warm-up at the first phase's rate, then each phase
		phases := append([]Phase{{Duration: load.Warmup, Rate: load.Phases[0].Rate}}, load.Phases...)
		var at time.Duration
		var index int64
		s.interval = math.Inf(1)
		for _, ph := range phases {
			iv := float64(time.Second) / ph.Rate
			n := int64(math.Ceil(float64(ph.Duration) / iv))
			if n == 0 {
				continue
			}
			s.phases = append(s.phases, phaseStart{index: index, at: at, interval: iv})
			s.interval = min(s.interval, iv)
			index += n
			at += ph.Duration
		}
		s.end = at
		s.scheduled = index
		s.hardStop = s.end + load.Timeout + StopGrace
	case load.Rate > 0:
		s.interval = float64(time.Second) / load.Rate
		window := load.Duration
		if load.Calls > 0 {
			window = time.Duration(float64(load.Calls) * s.interval)
		}
		s.end = s.measureStart + window
		s.scheduled = int64(math.Ceil(float64(s.end) / s.interval))
		if load.Calls > 0 {
			s.scheduled = int64(math.Ceil(float64(s.measureStart)/s.interval)) + load.Calls
		}
		s.hardStop = s.end + load.Timeout + StopGrace
	case load.Calls > 0:
		s.remaining.Store(load.Calls)
	default:
		s.end = s.measureStart + load.Duration
		s.hardStop = s.end + load.Timeout + StopGrace
	}
	rng := rand.New(rand.NewPCG(load.Seed, 0))
	payload := make([]byte, load.Payload)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	s.want = payload
	s.wantSum = wire.Checksum(payload)
	s.wantHops = load.ChainDepth
	if load.ChainAsync {
		s.wantHops = 1
	}
	if load.ResponseSize > 0 && load.ResponseSize != load.Payload {
		s.want = wire.ResizePayload(payload, load.ResponseSize)
		s.wantSum = wire.Checksum(s.want)
	}
	s.tmpl = wire.NewRequestTemplate(payload, uint32(load.ResponseSize)).WithChain(load.ChainDepth, load.ChainAsync, load.Timeout)
	n := min(load.Concurrency, MaxShards)
	for i := 0; i < n; i++ {
		s.shards = append(s.shards, newShard(s, load.Concurrency > MaxShards))
	}
	if load.Rate > 0 {
		s.disp = newShard(s, false)
		s.token = make(chan struct{})
		s.spares = make(chan drivers.Caller, spareCallers)
	}
	return s
}

// schedule is the open loop's precomputed schedule: call i is intended to
// start i intervals after the start, whatever happened to the calls before
// it.
func (s *shared) schedule(i int64) time.Duration {
	if s.phases != nil {
		k := len(s.phases) - 1
		for k > 0 && s.phases[k].index > i {
			k--
		}
		ph := s.phases[k]
		return ph.at + time.Duration(float64(i-ph.index)*ph.interval)
	}
	return time.Duration(float64(i) * s.interval)
}

// now is the monotonic time since the cell started.
func (s *shared) now() time.Duration { return time.Since(s.start) }

// claim decides whether a closed-loop call that starts at t may run, and
// whether it is measured (past the warm-up).
func (s *shared) claim(t time.Duration) (run, measured bool) {
	if t < s.measureStart {
		return true, false
	}
	if s.end == 0 {
		return s.remaining.Add(-1) >= 0, true
	}
	return t < s.end, true
}

// shard is one set of histograms and counts. Workers own one each while
// there are at most MaxShards of them, and share them under mu beyond.
type shard struct {
	locked bool
	mu     sync.Mutex

	ok, unc, failed, resp, late, queue *hdrhistogram.Histogram
	counts                             results.Counts
	errs                               map[string]int64
	errOther                           int64

	// the current second of the time series
	sec              int
	secStart, secEnd time.Duration
	secHist          *hdrhistogram.Histogram
	secOK, secErr    int64
	_                [64]byte
}

func newShard(s *shared, locked bool) *shard {
	h := func() *hdrhistogram.Histogram {
		return hdrhistogram.New(results.HistMin, s.histMax, results.HistDigits)
	}
	sh := &shard{
		locked:  locked,
		ok:      h(),
		failed:  h(),
		resp:    h(),
		queue:   h(),
		secHist: hdrhistogram.New(results.HistMin, s.histMax, secondHistDigits),
		sec:     -1,
	}
	if s.load.Rate > 0 {
		sh.unc = h()
		sh.late = h()
	}
	return sh
}

type worker struct {
	id     int
	s      *shared
	caller drivers.Caller
	sh     *shard
	rng    *rand.Rand
	req    []byte
	buf    []byte
	seq    uint64

	state  atomic.Int32
	exited atomic.Bool
	// the call in flight, for the core to account for it if abandoned
	curStart, curDeadline time.Duration
	curMeasured           bool
	curID                 uint64
	// journal: every call this worker made (Load.Journal)
	journal []ledger.Call
	// open loop: the precise wait of the token holder
	waiter *clock.Waiter

	// live counters read by the progress goroutine
	liveOK, liveErr atomic.Int64
	_               [64]byte
}

func (s *shared) newWorker(id int, c drivers.Caller) *worker {
	w := &worker{
		id:     id,
		s:      s,
		caller: c,
		sh:     s.shards[id%len(s.shards)],
		rng:    rand.New(rand.NewPCG(s.load.Seed, uint64(id)+1)),
	}
	w.req = make([]byte, 0, s.load.Payload+64)
	w.buf = make([]byte, 0, len(s.want)+64)
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
	abandoned
)

// errLate stands for an ok reply that arrived after the call's deadline.
var errLate = errors.New("reply arrived after the deadline (the core's clock)")

// call makes one call with the given deadline (an offset) and returns its
// outcome, the reply time, the responder's handler time, and the error
// behind a failure.
// replyTimes are what a reply says of the responder's side: its handler
// time and the request's time from send to handler start (ns; 0: none).
type replyTimes struct{ handler, queued int64 }

func (w *worker) call(ctx context.Context, start, deadline time.Duration, measured bool) (outcome, time.Duration, replyTimes, error) {
	s := w.s
	w.seq++
	id := s.load.IDBase | uint64(w.id+1)<<40 | w.seq
	w.curID = id
	var st int64
	if s.load.ServiceTime.Mean > 0 {
		st = int64(s.load.ServiceTime.Sample(w.rng))
	}
	w.req = s.tmpl.Append(w.req[:0], id, st, s.startUnix+int64(start))
	w.curStart, w.curDeadline, w.curMeasured = start, deadline, measured
	w.state.Store(stateInCall)
	if s.token != nil {
		s.inCall.Add(1)
	}
	reply, err := w.caller.Call(ctx, s.start.Add(deadline), w.req, w.buf[:0])
	t1 := s.now()
	if !w.state.CompareAndSwap(stateInCall, stateIdle) {
		return abandoned, t1, replyTimes{}, nil
	}
	if s.token != nil {
		s.inCall.Add(-1)
	}
	if cap(reply) > cap(w.buf) {
		w.buf = reply[:0]
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return aborted, t1, replyTimes{}, err
		case t1 > deadline, errors.Is(err, drivers.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
			return timeout, t1, replyTimes{}, err
		}
		return transport, t1, replyTimes{}, err
	}
	if t1 > deadline {
		// The core's clock decides: a reply after the deadline is a
		// timeout, whatever the driver returned.
		return timeout, t1, replyTimes{}, errLate
	}
	var r wire.Fields
	if wire.Parse(reply, &r) != nil {
		return mismatch, t1, replyTimes{}, errMalformed
	}
	if len(r.Error) != 0 {
		return responderErr, t1, replyTimes{r.HandlerNs, r.QueuedNs}, responderError(r.Error)
	}
	// The reply must carry the expected checksum and exactly the expected
	// bytes (which hash to it): comparing the bytes is exact and cheaper
	// than hashing them again.
	if r.ID != id {
		return mismatch, t1, replyTimes{r.HandlerNs, r.QueuedNs}, errWrongID
	}
	if r.Checksum != s.wantSum || !bytes.Equal(r.Payload, s.want) {
		return mismatch, t1, replyTimes{r.HandlerNs, r.QueuedNs}, errWrongPayload
	}
	if s.load.ChainDepth > 1 && int(r.ChainHops) != s.wantHops {
		return mismatch, t1, replyTimes{r.HandlerNs, r.QueuedNs}, errChainHops
	}
	return ok, t1, replyTimes{r.HandlerNs, r.QueuedNs}, nil
}

var (
	errMalformed    = errors.New("reply is not a Call message")
	errWrongID      = errors.New("reply carries another call's id")
	errWrongPayload = errors.New("reply payload or checksum differs from the expected")
	errChainHops    = errors.New("reply of a call chain says fewer or more hops ran than asked")
)

type responderError []byte

func (e responderError) Error() string { return "responder: " + string(e) }

// record adds one measured call that ended at t1. start is where its
// latency counts from (its intended start, or its send in closed loop),
// sent its actual send, gen the generator's own lateness (open loop).
func (w *worker) record(o outcome, start, sent, t1, gen time.Duration, rt replyTimes, err error, open bool) {
	sh := w.sh
	if sh.locked {
		sh.mu.Lock()
		defer sh.mu.Unlock()
	}
	c := &sh.counts
	c.Started++
	if open {
		c.Scheduled++
		w.recordValue(sh.late, int64(gen))
		if gen > lateThreshold {
			c.Late++
		}
	}
	lat := t1 - start
	if o == ok {
		c.OK++
		w.recordValue(sh.ok, int64(lat))
		if open {
			w.recordValue(sh.unc, int64(t1-sent))
		}
		if rt.handler > 0 {
			w.recordValue(sh.resp, rt.handler)
		}
		if rt.queued > 0 {
			w.recordValue(sh.queue, rt.queued)
		}
		sh.tick(w.s, t1, lat, true)
		w.liveOK.Add(1)
		return
	}
	switch o {
	case timeout:
		c.Timeout++
		// a timed-out call counts at its timeout (the caller gave up then)
		lat = min(lat, w.s.load.Timeout)
	case transport:
		c.Transport++
	case responderErr:
		c.Responder++
	case mismatch:
		c.Mismatch++
	}
	w.recordValue(sh.failed, int64(lat))
	sh.addError(err)
	sh.tick(w.s, t1, 0, false)
	w.liveErr.Add(1)
}

// recordValue records v, counting values beyond the histogram's range
// instead of dropping them.
func (w *worker) recordValue(h *hdrhistogram.Histogram, v int64) {
	if h.RecordValue(max(v, 1)) != nil {
		w.sh.counts.OutOfRange++
	}
}

func (sh *shard) addError(err error) {
	if err == nil {
		return
	}
	if sh.errs == nil {
		sh.errs = map[string]int64{}
	}
	msg := numbersOut(err.Error())
	if _, ok := sh.errs[msg]; ok || len(sh.errs) < maxErrorKinds {
		sh.errs[msg]++
		return
	}
	sh.errOther++
}

// numbersOut replaces every number in msg with N, so that messages that
// differ only in a duration, an id or a port count as one kind of error.
func numbersOut(msg string) string {
	var b []byte
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= '0' && c <= '9' {
			if b == nil {
				b = append(make([]byte, 0, len(msg)), msg[:i]...)
			}
			for i+1 < len(msg) && (msg[i+1] >= '0' && msg[i+1] <= '9' || msg[i+1] == '.' && i+2 < len(msg) && msg[i+2] >= '0' && msg[i+2] <= '9') {
				i++
			}
			b = append(b, 'N')
			continue
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return msg
	}
	return string(b)
}

// tick adds a call that ended at t to the shard's current second of the
// time series. Calls that end after the window are in the counts and
// histograms, not in the series.
func (sh *shard) tick(s *shared, t, lat time.Duration, success bool) {
	if t < s.measureStart || (s.end != 0 && t >= s.end) {
		return
	}
	if t < sh.secStart || t >= sh.secEnd {
		sh.flushSecond(s)
		sh.sec = int((t - s.measureStart) / time.Second)
		sh.secStart = s.measureStart + time.Duration(sh.sec)*time.Second
		sh.secEnd = sh.secStart + time.Second
	}
	if success {
		sh.secOK++
		sh.secHist.RecordValue(max(int64(lat), 1))
	} else {
		sh.secErr++
	}
}

func (sh *shard) flushSecond(s *shared) {
	if sh.sec < 0 || (sh.secOK == 0 && sh.secErr == 0) {
		return
	}
	sh.secHist = s.series.add(sh.sec, sh.secHist, sh.secOK, sh.secErr)
	sh.secOK, sh.secErr = 0, 0
}

func (w *worker) closedLoop(ctx context.Context, s *shared) {
	defer w.exited.Store(true)
	for ctx.Err() == nil {
		t0 := s.now()
		run, measured := s.claim(t0)
		if !run {
			return
		}
		o, t1, h, err := w.call(ctx, t0, t0+s.load.Timeout, measured)
		w.note(o, t0, t0, t1, err)
		switch {
		case o == aborted || o == abandoned:
			return
		case measured:
			w.record(o, t0, t0, t1, 0, h, err, false)
		case o == ok:
			w.liveOK.Add(1)
		default:
			w.liveErr.Add(1)
		}
	}
}

// The open loop's generator is a token passed between the workers: the
// worker holding it waits precisely for the next intended start (a timer
// until shortly before, then a tight spin that holds its P but is never
// in a run queue, so it cannot starve the network poller), hands the token
// to an idle worker (or starts a new one, up to the in-flight cap), and
// makes that call itself at once: no hand-off between the wait and the
// send. With every slot busy it keeps the token through its own call.
//
// What the generator itself adds is told apart from what the system under
// test causes. A call could have started at its intended time if a slot
// was free then; if the holder had to keep the token through its previous
// call (every slot busy), it could start only when that call ended. Time
// before that point the system under test caused (coordinated omission,
// corrected by counting from the intended time); time after it is the
// generator's own lateness, recorded apart and never charged to the
// transport.
func (w *worker) openLoop(ctx context.Context, s *shared, holder bool) {
	defer w.exited.Store(true)
	defer func() {
		if w.waiter != nil {
			w.waiter.Close()
		}
	}()
	for {
		if !holder {
			select {
			case _, more := <-s.token:
				if !more {
					return
				}
			case <-ctx.Done():
				return
			}
		}
		holder = w.pace(ctx)
		if s.paceDone.Load() {
			if holder {
				s.finishSchedule()
			}
			return
		}
	}
}

// pace runs the schedule while holding the token, and reports whether the
// worker still holds it (it made a call with every slot busy).
func (w *worker) pace(ctx context.Context) bool {
	s := w.s
	freeAt := time.Duration(-1 << 62) // when this holder's slot became free
	if w.waiter == nil {
		// The holder sleeps between calls on a precise waiter, and spins
		// only the last stretch. A Go timer under 1 ms wakes an idle
		// process 1 ms late, so the holder used to spin whole intervals
		// up to 3 ms (and was 1 ms late between 5,000 and 20,000/s,
		// where its spin was capped). Spinning whole intervals took a
		// core of two from what it measured: old and new binaries
		// alternating, at 2,000 calls/s the p99 fell from 3.4-4.4 to
		// 0.19-0.24 ms (tcp), 4.3-6.8 to 0.55 ms (NATS core) and
		// 4.3-5.9 to 0.66-0.96 ms (grpc). The p50 rose by 15-110 µs: a
		// process that idles between calls pays this VM's wake-up on
		// each reply, as a real client does; the spin had hidden it. At
		// 7,000/s the generator's lateness p99 fell from about 1 ms to
		// 50-151 µs (tcp), 104-229 (NATS core) and 346-600 (grpc).
		w.waiter = clock.NewWaiter(s.start)
		if time.Duration(s.interval) > preciseMinInterval {
			w.waiter = clock.NewPreciseWaiter(s.start)
		}
		// Closer together than preciseMinInterval the process hardly
		// idles, and a precise waiter's wake-ups cost the transport
		// (grpc's p50 at 20,000/s rose from 265 to 490 µs): a Go timer
		// then, with the spin capped at half the interval, since a spin
		// that never stops takes a CPU the transport needs (at 10,000/s
		// tcp's p50 rose from 105 to 184 µs; at 20,000/s to 645 µs).
		// The generator's lateness is measured and never charged to the
		// transport.
		w.waiter.MaxSpin = min(clock.MaxSpin, time.Duration(s.interval/2))
	}
	for {
		i := s.next
		if i >= s.scheduled {
			s.paceDone.Store(true)
			return true
		}
		intended := s.schedule(i)
		if !w.waiter.Until(ctx, intended) {
			s.paceDone.Store(true)
			return true
		}
		s.next++
		measured := intended >= s.measureStart
		now := s.now()
		if now-intended > s.load.Timeout {
			// every slot stayed busy past this call's whole timeout: it
			// never starts (its deadline has passed)
			if measured {
				s.overflow(intended, now)
			}
			continue
		}
		passed := false
		free := s.spawned.Load() - 1 - s.inCall.Load()
		if free > 0 {
			// a worker is idle, or about to be: hand it the token. When
			// the schedule is already behind (the next call is due),
			// start a new worker instead unless the idle one waits for
			// the token this instant. Waiting for it however long
			// serialized the schedule on its wake-up: on a machine a
			// burst overloads, a worker that has just finished a call
			// waits to be scheduled, and its 125 µs (p50; 3 ms at p99)
			// per hand-off at 3,000 calls/s made the generator 1.2 s late
			// at p99 (tcp, one responder slot of 1 ms, 2 cores); catching
			// up with new workers, 3 ms. On schedule it waits (parked, so
			// the idle worker gets the CPU): starting a new worker
			// whenever the idle one had not come back yet, or spinning
			// until the next call was due, put grpc at 2,000/s over the
			// lateness bound (p99 250-1,000 µs against 170-180 µs).
			// Only at the in-flight cap does a late schedule wait too.
			if s.now() >= s.schedule(min(i+1, s.scheduled-1)) {
				select {
				case s.token <- struct{}{}:
					passed = true
				default:
					passed = s.spawn(ctx)
				}
			}
			if !passed {
				select {
				case s.token <- struct{}{}:
					passed = true
				case <-ctx.Done():
					s.paceDone.Store(true)
					return true
				}
			}
		} else {
			passed = s.spawn(ctx)
		}
		ready := intended
		if !passed {
			ready = max(intended, freeAt)
		}
		t0 := s.now()
		gen := max(t0-ready, 0)
		// the deadline runs from the intended start, as a real client's
		// timeout runs from when its request was created
		o, t1, h, err := w.call(ctx, t0, intended+s.load.Timeout, measured)
		w.note(o, intended, intended+gen, t1, err)
		switch {
		case o == aborted || o == abandoned:
			if !passed {
				s.paceDone.Store(true)
			}
			return !passed
		case measured:
			if ready > intended {
				w.sh.queued()
			}
			// latency from the intended start, less the generator's own
			// lateness: what the system under test made this call wait
			w.record(o, intended+gen, t0, t1, gen, h, err, true)
		case o == ok:
			w.liveOK.Add(1)
		default:
			w.liveErr.Add(1)
		}
		if passed {
			return false
		}
		freeAt = t1
	}
}

// spareCallers is how many callers an open loop that has started new
// workers makes ahead, off the schedule's path: a driver's NewCaller can
// cost a round trip to its broker (RabbitMQ opens a channel per caller),
// and a token holder that made one per new worker in a burst fell behind
// its schedule by as much as its broker was slow to answer (1.9 s at p99
// in C7's burst).
const spareCallers = 8

// spawn starts a new worker holding the token, if the in-flight cap
// allows; it reports whether it did.
func (s *shared) spawn(ctx context.Context) bool {
	n := int(s.spawned.Load())
	if n >= s.load.Concurrency {
		return false
	}
	var c drivers.Caller
	select {
	case c = <-s.spares:
	default:
		if s.reserved.Add(1) > int64(s.load.Concurrency) {
			s.reserved.Add(-1) // the rest are spares being made
			return false
		}
		var err error
		if c, err = s.client.NewCaller(); err != nil {
			s.reserved.Add(-1)
			return false
		}
	}
	s.refill(ctx)
	w := s.newWorker(n, c)
	s.mu.Lock()
	s.workers = append(s.workers, w)
	s.mu.Unlock()
	s.spawned.Add(1)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); w.openLoop(ctx, s, true) }()
	return true
}

// refill makes spare callers, on a goroutine of its own, until there are
// spareCallers or the callers reach the in-flight cap. The cell does not
// wait for it: a NewCaller that hangs on a stopped broker (a fault run)
// must not hold the cell's end; it stops at the schedule's end, and the
// spares go with the client.
func (s *shared) refill(ctx context.Context) {
	if !s.refilling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.refilling.Store(false)
		for len(s.spares) < cap(s.spares) && ctx.Err() == nil && !s.paceDone.Load() {
			if s.reserved.Add(1) > int64(s.load.Concurrency) {
				s.reserved.Add(-1)
				return
			}
			c, err := s.client.NewCaller()
			if err != nil {
				s.reserved.Add(-1)
				return
			}
			s.spares <- c // room: only this goroutine adds
		}
	}()
}

// note adds a call to the worker's journal, if the cell keeps one.
func (w *worker) note(o outcome, intended, start, end time.Duration, err error) {
	if !w.s.load.Journal || o == abandoned {
		return
	}
	c := ledger.Call{ID: w.curID, Intended: intended, Start: start, End: end, Outcome: ledger.Failed}
	switch {
	case o == ok:
		c.Outcome = ledger.OK
	case errors.Is(err, drivers.ErrNotSent):
		c.Outcome = ledger.NotSent
	}
	c.Acked = o != ok && errors.Is(err, drivers.ErrAcknowledged)
	w.journal = append(w.journal, c)
}

// overflow counts an open-loop call that never started, at its timeout.
func (s *shared) overflow(intended, now time.Duration) {
	if s.load.Journal {
		s.dispJournal = append(s.dispJournal, ledger.Call{Intended: intended, Start: intended, End: now, Outcome: ledger.NotSent})
	}
	sh := s.disp
	sh.counts.Scheduled++
	sh.counts.Overflow++
	if sh.failed.RecordValue(int64(s.load.Timeout)) != nil {
		sh.counts.OutOfRange++
	}
	sh.tick(s, now, 0, false)
}

// finishSchedule ends the schedule: idle workers are released.
func (s *shared) finishSchedule() { close(s.token) }

// unscheduled counts the calls of the schedule never handed out (the cell
// was stopped, or its token holder is stuck in a call) as overflow. It runs
// once every worker has returned or been abandoned.
func (s *shared) unscheduled(now time.Duration) {
	if s.token == nil {
		return
	}
	for ; s.next < s.scheduled; s.next++ {
		if t := s.schedule(s.next); t >= s.measureStart {
			s.overflow(t, now)
		}
	}
}

func (sh *shard) queued() {
	if sh.locked {
		sh.mu.Lock()
		defer sh.mu.Unlock()
	}
	sh.counts.Queued++
}

// collect merges what the shards and the abandoned workers recorded.
func (s *shared) collect(ctx context.Context, stop time.Duration) *Measurement {
	h := func() *hdrhistogram.Histogram {
		return hdrhistogram.New(results.HistMin, s.histMax, results.HistDigits)
	}
	m := &Measurement{
		Corrected:   h(),
		Uncorrected: h(),
		All:         h(),
		Responder:   h(),
		Queue:       h(),
		HistMax:     s.histMax,
		Interrupted: ctx.Err() != nil,
	}
	open := s.load.Rate > 0
	if open {
		m.Lateness = h()
	}
	errs := map[string]int64{}
	var other int64
	shards := s.shards
	if s.disp != nil {
		shards = append(shards[:len(shards):len(shards)], s.disp)
	}
	s.unscheduled(stop)
	if s.load.Journal {
		m.Journal = append(m.Journal, s.dispJournal...)
		s.mu.Lock()
		for _, w := range s.workers {
			if w.state.Load() != stateAbandoned {
				m.Journal = append(m.Journal, w.journal...)
			}
		}
		s.mu.Unlock()
		for _, w := range s.abandoned {
			// its journal is its own until it returns: only the call it
			// is stuck in is known for sure, the ones before it were
			// noted before it entered it
			m.Journal = append(m.Journal, w.journal...)
			m.Journal = append(m.Journal, ledger.Call{ID: w.curID, Intended: w.curStart, Start: w.curStart, End: stop, Outcome: ledger.Failed})
		}
	}
	// abandoned calls: stuck inside the driver past the hard stop
	for _, w := range s.abandoned {
		if !w.curMeasured {
			continue
		}
		sh := w.sh
		sh.counts.Started++
		sh.counts.Stuck++
		if open {
			sh.counts.Scheduled++
		}
		lat := min(stop-w.curStart, s.load.Timeout)
		if sh.failed.RecordValue(int64(lat)) != nil {
			sh.counts.OutOfRange++
		}
		sh.addError(fmt.Errorf("call still inside the driver %v after its deadline: abandoned", (stop - w.curDeadline).Round(time.Millisecond)))
	}
	for _, sh := range shards {
		sh.flushSecond(s)
		m.Corrected.Merge(sh.ok)
		m.All.Merge(sh.ok)
		m.All.Merge(sh.failed)
		m.Responder.Merge(sh.resp)
		m.Queue.Merge(sh.queue)
		if open && sh.unc != nil {
			m.Uncorrected.Merge(sh.unc)
			m.Lateness.Merge(sh.late)
		}
		addCounts(&m.Counts, &sh.counts)
		for k, v := range sh.errs {
			errs[k] += v
		}
		other += sh.errOther
	}
	if !open {
		// closed loop: each call starts when it is sent, nothing to correct
		m.Uncorrected.Merge(m.Corrected)
		m.Counts.Scheduled = m.Counts.Started
	}
	for k, v := range errs {
		m.Errors = append(m.Errors, results.ErrorCount{Message: k, Count: v})
	}
	sort.Slice(m.Errors, func(i, j int) bool {
		if m.Errors[i].Count != m.Errors[j].Count {
			return m.Errors[i].Count > m.Errors[j].Count
		}
		return m.Errors[i].Message < m.Errors[j].Message
	})
	if len(m.Errors) > maxErrorKinds {
		for _, e := range m.Errors[maxErrorKinds:] {
			other += e.Count
		}
		m.Errors = m.Errors[:maxErrorKinds]
	}
	if other > 0 {
		m.Errors = append(m.Errors, results.ErrorCount{Message: "(other messages)", Count: other})
	}
	// the measured window: the schedule's (or the duration's) length, cut
	// short only by an interruption; a cell that ends by count ends at its
	// last call
	measuredEnd := stop
	if s.end != 0 && (!m.Interrupted || stop > s.end) {
		measuredEnd = s.end
	}
	if measuredEnd > s.measureStart {
		m.Seconds = (measuredEnd - s.measureStart).Seconds()
	}
	m.Series = s.series.points(m.Seconds)
	if open && m.Lateness.TotalCount() > 0 {
		p99 := time.Duration(m.Lateness.ValueAtQuantile(99))
		lateShare := float64(m.Counts.Late) / float64(m.Lateness.TotalCount())
		switch {
		case p99 > GeneratorP99Bound:
			m.GeneratorLimited = true
			m.GeneratorReason = fmt.Sprintf("the generator's own lateness p99 %v exceeds %v", p99.Round(time.Microsecond), GeneratorP99Bound)
		case lateShare > GeneratorLateBound:
			m.GeneratorLimited = true
			m.GeneratorReason = fmt.Sprintf("the generator started %.1f%% of calls more than %v late (bound %.0f%%)", 100*lateShare, lateThreshold, 100*GeneratorLateBound)
		}
	}
	return m
}

func addCounts(dst, src *results.Counts) {
	dst.Scheduled += src.Scheduled
	dst.Started += src.Started
	dst.OK += src.OK
	dst.Timeout += src.Timeout
	dst.Transport += src.Transport
	dst.Responder += src.Responder
	dst.Mismatch += src.Mismatch
	dst.Stuck += src.Stuck
	dst.Overflow += src.Overflow
	dst.Late += src.Late
	dst.Queued += src.Queued
	dst.OutOfRange += src.OutOfRange
}

// report feeds live progress about once a second until done closes.
func (s *shared) report(done <-chan struct{}, live func(Live)) {
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
			s.mu.Lock()
			for _, w := range s.workers {
				okN += w.liveOK.Load()
				errN += w.liveErr.Load()
			}
			s.mu.Unlock()
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

// series gathers per-second histograms and counts from the shards.
type series struct {
	mu   sync.Mutex
	secs map[int]*second
}

type second struct {
	hist    *hdrhistogram.Histogram
	ok, err int64
}

// add merges one shard's second and returns an empty histogram for its next.
func (s *series) add(sec int, h *hdrhistogram.Histogram, ok, errs int64) *hdrhistogram.Histogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secs == nil {
		s.secs = map[int]*second{}
	}
	cur := s.secs[sec]
	if cur == nil {
		cur = &second{hist: hdrhistogram.New(results.HistMin, h.HighestTrackableValue(), secondHistDigits)}
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

// points renders the series for a measured window of the given length: a
// point for every second of the window, zeros included, the last one
// scaled to the part of a second it covers.
func (s *series) points(window float64) []results.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int(math.Ceil(window - 1e-9))
	out := make([]results.Point, 0, n)
	for k := 0; k < n; k++ {
		p := results.Point{Second: k}
		if cur := s.secs[k]; cur != nil {
			span := 1.0
			if rest := window - float64(k); rest < 1 {
				span = rest
			}
			p.OK, p.Errors = cur.ok, cur.err
			p.Throughput = float64(cur.ok) / span
			if cur.ok > 0 {
				p.P50 = float64(cur.hist.ValueAtQuantile(50)) / 1e3
				p.P99 = float64(cur.hist.ValueAtQuantile(99)) / 1e3
			}
		}
		out = append(out, p)
	}
	return out
}
