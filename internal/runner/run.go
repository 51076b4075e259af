package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/delay"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
	"github.com/rpcbench/rpcbench/scenarios"
)

// Unit is one driver variant with its options, configured: what a
// responder serves.
type Unit struct {
	Driver    drivers.Driver
	Transport drivers.Transport
	// Duration is the length of the unit's cells when its scenario entry
	// gives one (scenarios.DriverSpec.Duration); 0: the scenario's.
	Duration time.Duration
}

// Config is the unit's effective configuration.
func (u Unit) Config() drivers.Config { return u.Transport.Config() }

// ID names the unit.
func (u Unit) ID() results.UnitID {
	cfg := u.Config()
	return results.UnitID{Driver: u.Driver.Spec().Name, Variant: cfg.Variant, Options: cfg.Options}
}

// Optioned is results.Optioned of the units: the driver variants that
// appear with more than one set of options, whose labels name them.
func Optioned(units []Unit) map[string]bool {
	ids := make([]results.UnitID, len(units))
	for i, u := range units {
		ids[i] = u.ID()
	}
	return results.Optioned(ids)
}

// Resolve checks every driver, variant and option a scenario names against
// the registry, and expands drivers without variants to all of theirs.
// Errors name the scenario file and line.
func Resolve(reg *drivers.Registry, sc *scenarios.Scenario) ([]Unit, error) {
	var units []Unit
	for i, ds := range sc.Drivers {
		where := func(field string) *scenarios.Error {
			return &scenarios.Error{File: sc.Source, Line: ds.Line, Field: fmt.Sprintf("drivers[%d]%s", i, field)}
		}
		d, ok := reg.Get(ds.Name)
		if !ok {
			e := where(".name")
			e.Msg = fmt.Sprintf("unknown driver %q (want one of %s)", ds.Name, strings.Join(reg.Names(), ", "))
			return nil, e
		}
		spec := d.Spec()
		variants := ds.Variants
		if len(variants) == 0 {
			for _, v := range spec.Variants {
				variants = append(variants, v.Name)
			}
		}
		for j, v := range variants {
			cfg := drivers.Config{Variant: v, Options: ds.Options, ResponderConcurrency: sc.ResponderConcurrency}
			tr, err := d.Configure(cfg)
			if err != nil {
				field := ".options"
				if !hasVariant(spec, v) {
					field = fmt.Sprintf(".variants[%d]", j)
				}
				e := where(field)
				e.Msg = err.Error()
				return nil, e
			}
			units = append(units, Unit{Driver: d, Transport: tr, Duration: time.Duration(ds.Duration)})
		}
	}
	return units, nil
}

func hasVariant(s drivers.Spec, v string) bool {
	for _, x := range s.Variants {
		if x.Name == v {
			return true
		}
	}
	return false
}

// Observer follows a run: the command line shows progress with it.
type Observer interface {
	// CellStart is called before a cell runs; index counts from 1.
	CellStart(index, total int, c *results.Cell, load Load)
	// Live is called about once a second while a cell runs.
	Live(Live)
	// CellDone is called with the finished cell.
	CellDone(c *results.Cell)
	// Note reports something worth a line (a skipped driver, a broker start).
	Note(msg string)
}

// Plan is everything a run needs.
type Plan struct {
	Scenario *scenarios.Scenario
	Units    []Unit
	Brokers  *broker.Manager
	// Target is the address of a responder started elsewhere (rpcbench
	// serve); no responder is started here.
	Target string
	// Dir is the run's directory; brokers keep their files below it.
	Dir string
	// RequireBrokers turns a broker that cannot be had into an error.
	RequireBrokers bool
	Observer       Observer
	// Serve starts a unit's responder at at, answering with the unit's
	// responder concurrency; nil serves it in the run's own process
	// (Transport.Serve). The command passes one that runs the responder
	// as its own process.
	Serve func(ctx context.Context, u Unit, at drivers.Place, o ServeOptions) (drivers.Server, error)
	// Sweep, when set, makes the run a saturation sweep: each unit runs a
	// concurrency ladder and a search instead of the scenario's cells.
	Sweep *SweepConfig
}

// serve starts the unit's responder as the plan says.
func (p Plan) serve(ctx context.Context, u Unit, at drivers.Place, o ServeOptions) (drivers.Server, error) {
	if p.Serve != nil {
		return p.Serve(ctx, u, at, o)
	}
	return ServeInProcess(ctx, u, at, o)
}

// wireLimit is the core's handler: wire.Respond admitting n at once.
var wireLimit = wire.Limit

// ErrCellsFailed is returned when some cells could not run; the run's
// results still hold every cell, with the reason in Cell.Error.
var ErrCellsFailed = errors.New("some cells could not run")

// Outcome is what a run measured: the cells in the order they ran, the
// units skipped and why, what each unit's settling saw, and the brokers
// the run used (with when each started, was ready and was warm).
type Outcome struct {
	Cells      []results.Cell
	Skipped    []results.Skip
	Warmups    []results.Warmup
	Brokers    []results.Broker
	Saturation []results.Saturation
}

// Run runs every cell of the plan and returns what it measured. On
// interruption (ctx ended) it returns ctx's error with what was measured
// so far.
//
// Brokers start before measuring begins, all at once, and the ones that
// need it (a JVM's JIT) are warmed up before the first cell of any driver:
// no broker starts or warms up while another driver's cell is measured.
// Before a unit's first cell, unmeasured load runs until the unit's
// throughput and p50 settle (settle). A broker is stopped once the last
// unit using it is done.
func Run(ctx context.Context, p Plan) (*Outcome, error) {
	run := &Outcome{Cells: []results.Cell{}, Skipped: []results.Skip{}}
	total := 0
	keys := make([]string, len(p.Units))
	lastUse := map[string]int{}
	firstUse := map[string]int{}
	for i, u := range p.Units {
		if p.Sweep != nil {
			total += len(p.Sweep.ladder())
		} else {
			total += len(cellPlans(p.Scenario, u))
		}
		if u.Driver.Spec().Kind == drivers.Broker && p.Target == "" {
			keys[i] = brokerKey(u)
			if _, ok := firstUse[keys[i]]; !ok {
				firstUse[keys[i]] = i
			}
			lastUse[keys[i]] = i
		}
	}
	got := startBrokers(ctx, p, firstUse, run)
	if ctx.Err() != nil {
		return run, ctx.Err()
	}
	for _, key := range slices.Sorted(maps.Keys(firstUse)) {
		if bs := got[key]; p.RequireBrokers && bs.err != nil {
			u := p.Units[firstUse[key]]
			reason, _ := broker.IsUnavailable(bs.err)
			if reason == "" {
				reason = bs.err.Error()
			}
			return run, fmt.Errorf("%s/%s: %s (--require-brokers)", u.Driver.Spec().Name, u.Config().Variant, reason)
		}
	}
	warmBrokers(ctx, p, firstUse, got, run)
	if ctx.Err() != nil {
		return run, ctx.Err()
	}
	index := 0
	failed := false
	for i, u := range p.Units {
		var b *brokerStart
		if keys[i] != "" {
			b = got[keys[i]]
		}
		unitFailed, err := runUnit(ctx, p, u, b, run, &index, total)
		failed = failed || unitFailed
		if keys[i] != "" && lastUse[keys[i]] == i && p.Brokers != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			if rerr := p.Brokers.Release(rctx, keys[i]); rerr != nil {
				p.Observer.Note(fmt.Sprintf("stopping broker %s: %v", keys[i], rerr))
			}
			cancel()
		}
		if err != nil {
			return run, err
		}
	}
	if failed {
		return run, ErrCellsFailed
	}
	return run, nil
}

// brokerStart is what starting one broker gave.
type brokerStart struct {
	b              broker.Broker
	err            error
	started, ready time.Time
}

// startBrokers starts every broker the plan needs, in parallel, and
// records each in the run's environment with when it started and was
// ready.
func startBrokers(ctx context.Context, p Plan, firstUse map[string]int, run *Outcome) map[string]*brokerStart {
	out := map[string]*brokerStart{}
	if len(firstUse) == 0 {
		return out
	}
	order := slices.Sorted(maps.Keys(firstUse))
	p.Observer.Note(fmt.Sprintf("starting %d broker(s) before measuring: %s", len(order), strings.Join(order, ", ")))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, key := range order {
		u := p.Units[firstUse[key]]
		wg.Add(1)
		go func() {
			defer wg.Done()
			bs := &brokerStart{started: time.Now()}
			bs.b, bs.err = getBroker(ctx, p, u, key)
			bs.ready = time.Now()
			mu.Lock()
			out[key] = bs
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, key := range order {
		if bs := out[key]; bs.err == nil {
			addBroker(run, bs.b, bs.started, bs.ready)
		}
	}
	return out
}

// warmBrokers warms up, one at a time and before any cell, each started
// broker that needs it: unmeasured load through the first unit that uses
// it, with its own responder.
func warmBrokers(ctx context.Context, p Plan, firstUse map[string]int, got map[string]*brokerStart, run *Outcome) {
	if p.Scenario.BrokerWarmup <= 0 {
		return
	}
	for _, key := range slices.Sorted(maps.Keys(firstUse)) {
		bs := got[key]
		u := p.Units[firstUse[key]]
		if bs == nil || bs.err != nil || !u.Driver.Spec().BrokerWarmup {
			continue
		}
		if p.Brokers != nil && p.Brokers.Warm(key) {
			// kept from an earlier run of this process (rpcbench claims)
			setBrokerDetail(run, bs.b.URL, "warmup", "warm from an earlier run of this process")
			setBrokerWarm(run, bs.b.URL, time.Now())
			continue
		}
		srv, err := u.Transport.Serve(ctx, drivers.Place{Broker: bs.b.URL}, wire.Limit(u.Config().Concurrency()))
		if err != nil {
			if ctx.Err() == nil {
				p.Observer.Note(fmt.Sprintf("%s: broker warm-up: start responder: %v", key, err))
			}
			continue
		}
		summary := warmBroker(ctx, p, u, srv.Addr())
		srv.Close()
		if ctx.Err() != nil {
			return
		}
		setBrokerDetail(run, bs.b.URL, "warmup", summary)
		setBrokerWarm(run, bs.b.URL, time.Now())
		if p.Brokers != nil {
			p.Brokers.MarkWarm(key)
		}
	}
}

// runUnit runs the cells of one driver variant: it takes the broker it
// was given (b, nil for direct drivers), starts the responder (unless the
// plan targets a remote one), lets the unit settle, and runs each cell with
// a freshly dialled client. It reports whether some cell could not run;
// the error is ctx's.
func runUnit(ctx context.Context, p Plan, u Unit, b *brokerStart, run *Outcome, index *int, total int) (failed bool, err error) {
	spec := u.Driver.Spec()
	cfg := u.Config()
	plans := cellPlans(p.Scenario, u)
	brokerName := ""
	fail := func(msg string) {
		for _, cp := range plans {
			*index++
			c := cp.cell
			c.Broker = brokerName
			c.Error = msg
			run.Cells = append(run.Cells, c)
		}
		p.Observer.Note(fmt.Sprintf("%s/%s: %s", spec.Name, cfg.Variant, msg))
	}
	var at drivers.Place
	if b != nil {
		if b.err != nil {
			reason, unavailable := broker.IsUnavailable(b.err)
			if !unavailable {
				// the broker should have started and did not: a failure
				reason = "broker failed to start: " + b.err.Error()
				failed = true
			}
			run.Skipped = append(run.Skipped, results.Skip{Driver: spec.Name, Variant: cfg.Variant, Reason: reason})
			p.Observer.Note(fmt.Sprintf("%s/%s: %s", spec.Name, cfg.Variant, reason))
			*index += len(plans)
			return failed, nil
		}
		at.Broker = b.b.URL
		brokerName = b.b.Kind + " (" + b.b.Source + ")"
		// the broker's own limits are known now (an external one's too)
		if err := checkLimits(ctx, p.Scenario, u, at.Broker); err != nil {
			fail(err.Error())
			return true, nil
		}
	}
	addr := p.Target
	var bh *brokerHop
	if p.Scenario.Network != nil && b != nil {
		if addr != "" {
			fail("network: a remote responder's hop to its broker cannot be given a delay from here: run without --target")
			return true, nil
		}
		var err error
		bh, at.Broker, err = startBrokerHop(ctx, u.Transport, at.Broker)
		if err != nil {
			fail(err.Error())
			return true, nil
		}
		defer bh.close()
	}
	// a direct driver's chains with a network delay: the responder's
	// onward hops reach it through a proxy of their own, unit-long and at
	// each cell's delay like the callers' (its target is set once the
	// responder listens); a broker driver's cross the responder's hop
	// to its broker already
	var ch *brokerHop
	if p.Scenario.Network != nil && p.Scenario.Chain != nil && b == nil && addr != "" {
		fail("network: a remote responder's onward chain hops cannot be given a delay from here: run without --target, or without chain")
		return true, nil
	}
	if p.Scenario.Network != nil && p.Scenario.Chain != nil && b == nil {
		px, err := delay.Start(ctx, "", delay.Config{})
		if err != nil {
			fail(fmt.Sprintf("start the chain's delay proxy: %v", err))
			return true, nil
		}
		ch = &brokerHop{rpxs: []*delay.Proxy{px}}
		defer ch.close()
	}
	var srv drivers.Server
	faulty := len(p.Scenario.Faults) > 0
	var resp *responder
	if addr == "" {
		var so ServeOptions
		if faulty {
			path, err := ledgerPath(p, u)
			if err != nil {
				fail(fmt.Sprintf("ledger: %v", err))
				return true, nil
			}
			so = ServeOptions{Ledger: path, Incarnation: 1}
		}
		if ch != nil {
			so.ChainNext = ch.rpxs[0].Addr()
		}
		var err error
		srv, err = p.serve(ctx, u, at, so)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			fail(fmt.Sprintf("start responder: %v", err))
			return true, nil
		}
		resp = &responder{p: p, u: u, srv: srv, at: at, ledger: so.Ledger, incarnation: so.Incarnation}
		defer resp.close()
		addr = srv.Addr()
		if ch != nil {
			ch.rpxs[0].SetTarget(addr)
			ch.upstreams = []string{addr}
		}
	}
	settled := true
	if len(plans) > 0 && p.Scenario.Settle > 0 {
		// the settling load takes the first cell's path: through its
		// delay proxies when it has some (a loopback settling would
		// judge another system than the cells measure)
		settleAddr, stop := addr, func() {}
		if h := plans[0].cell.Hop; h != nil {
			hop := *h
			a, closeHop, err := hopRoute(ctx, addr, &hop, bh, ch)
			if err != nil {
				fail(fmt.Sprintf("delay proxy for settling: %v", err))
				return true, nil
			}
			settleAddr, stop = a, closeHop
		}
		w := settle(ctx, p, u, settleAddr, plans[0].load)
		stop()
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		run.Warmups = append(run.Warmups, w)
		settled = w.Settled
	}
	var bk *broker.Broker
	if b != nil {
		bk = &b.b
	}
	var idle []broker.Broker
	if p.Brokers != nil {
		idle = p.Brokers.Running()
	}
	ms, notes := unitMeters(srv, bk, idle)
	if p.Sweep != nil {
		return sweepUnit(ctx, p, u, addr, brokerName, settled, run, index, total, ms, notes)
	}
	for _, cp := range plans {
		*index++
		c := cp.cell
		c.Broker = brokerName
		c.Unsettled = !settled
		p.Observer.CellStart(*index, total, &c, cp.load)
		var err error
		switch {
		case faulty && resp != nil:
			var bk *broker.Broker
			if b != nil {
				bk = &b.b
			}
			if resp.srv == nil {
				err = errors.New("no responder: its restart after an earlier fault failed")
			} else {
				err = runFaultCell(ctx, p, resp, bk, u, cp.load, &c, *index)
			}
		default:
			_, err = runCell(ctx, u, addr, cp.load, &c, p.Observer, ms, notes, bh, ch)
			if p.Target != "" {
				c.QueueDelay = nil // the responder's clock is another host's
			}
		}
		if err != nil {
			c.Error = err.Error()
			failed = true
		}
		run.Cells = append(run.Cells, c)
		p.Observer.CellDone(&c)
		if ctx.Err() != nil {
			return failed, ctx.Err()
		}
	}
	return failed, nil
}

// Settling: unmeasured windows at the unit's first load until the unit is
// at steady state, or the scenario's settle cap runs out. A window is as
// long as the unit's measured cell, from SettleWindowMin to
// SettleWindowMax (settleWindowFor): steady means that a window of a
// cell's length repeats, and --quick's 0.5 s cells settle on 0.5 s
// windows. It is steady when, with no failure in them, either
//   - the last SettleWindows windows agree within SettleTolerance on p50
//     and within SettleThroughputTolerance on throughput, or
//   - the last SettleTrendWindows windows show no trend: the least-squares
//     line through them moves p50 by at most SettleTolerance and throughput
//     by at most SettleThroughputTolerance of their medians from the first
//     of them to the last.
//
// Throughput gets the wider band: on this kind of shared VM a one-caller
// cell's throughput moves up to 25% from one second to the next with its
// p50 within 3% (tcp at one caller: 29.5k to 38.6k calls/s at p50
// 22.7-23.5µs, six windows of a default run), the hypervisor's stalls,
// which no warm-up ends; a broker still warming moves both (RocketMQ: p50
// 3.6 ms falling to 2.6 ms). The trend rule is for units whose windows
// scatter wider than the bands for as long as one cares to wait, with no
// direction: grpc/stream at one caller ran p50s of 43 to 92 µs in ten
// windows, in every one of three default runs, and tcp's throughput 44k to
// 83k calls/s at a p50 of 9.7-10.4 µs; the agreement rule alone held both
// to the 10 s cap and marked their cells unsettled, although their cells
// agreed across the runs within 18%. A unit still warming moves one way
// (RocketMQ's p50 fell 4.4, 3.6, 3.6, 3.1, 2.8 ms) and fails both rules.
const (
	SettleWindows             = 3
	SettleTrendWindows        = 5
	SettleTolerance           = 0.10
	SettleThroughputTolerance = 0.20
	SettleWindowMin           = 500 * time.Millisecond
	SettleWindowMax           = time.Second
)

// settleWindowFor is the length of a unit's settling windows: its cells'
// measured duration within SettleWindowMin..SettleWindowMax (the maximum
// for cells of a number of calls).
func settleWindowFor(load Load) time.Duration {
	if load.Calls > 0 || load.Duration <= 0 {
		return SettleWindowMax
	}
	return min(max(load.Duration, SettleWindowMin), SettleWindowMax)
}

// settle runs unmeasured load through the unit until it is at steady
// state, and says what it saw.
func settle(ctx context.Context, p Plan, u Unit, addr string, load Load) results.Warmup {
	spec := u.Driver.Spec()
	cfg := u.Config()
	limit := time.Duration(p.Scenario.Settle)
	w := results.Warmup{Driver: spec.Name, Variant: cfg.Variant, Options: cfg.Options, CapSeconds: limit.Seconds()}
	client, err := dial(ctx, u, addr)
	if err != nil {
		w.Note = "connect caller: " + err.Error()
		return w
	}
	defer closeBounded(client, 5*time.Second)
	window := settleWindowFor(load)
	w.WindowSeconds = window.Seconds()
	load.Warmup, load.Calls, load.Duration = 0, 0, window
	if len(load.Phases) > 0 {
		// a schedule of phases settles at its first (base) rate: each
		// window would otherwise run the whole schedule, its burst
		// included, and never settle
		load.Rate, load.Phases = load.Phases[0].Rate, nil
	}
	start := time.Now()
	how := ""
	for time.Since(start) < limit && ctx.Err() == nil {
		m, err := RunCell(ctx, client, load, nil)
		if err != nil {
			w.Note = err.Error()
			break
		}
		win := results.WarmupWindow{
			Throughput: math.Round(float64(m.Counts.OK) / max(m.Seconds, 1e-9)),
			P50:        float64(m.Corrected.ValueAtQuantile(50)) / 1e3,
			Failed:     m.Counts.Failed() + m.Counts.Overflow,
		}
		w.Windows = append(w.Windows, win)
		if how = settledHow(w.Windows); how != "" {
			w.Settled = true
			break
		}
	}
	w.Seconds = math.Round(time.Since(start).Seconds()*10) / 10
	switch {
	case w.Settled:
		last := w.Windows[len(w.Windows)-1]
		w.Note = fmt.Sprintf("settled after %.1fs: %.0f calls/s, p50 %.1fµs", w.Seconds, last.Throughput, last.P50)
		if how == "no trend" {
			lo, hi, tlo, thi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
			for _, x := range w.Windows[len(w.Windows)-SettleTrendWindows:] {
				lo, hi, tlo, thi = min(lo, x.P50), max(hi, x.P50), min(tlo, x.Throughput), max(thi, x.Throughput)
			}
			w.Note = fmt.Sprintf("settled after %.1fs with no trend in its last %d windows (p50 %.1f-%.1fµs, %.0f-%.0f calls/s): %.0f calls/s, p50 %.1fµs", w.Seconds, SettleTrendWindows, lo, hi, tlo, thi, last.Throughput, last.P50)
		}
	case w.Note == "":
		w.Note = fmt.Sprintf("did not settle within the %v cap", limit)
	}
	p.Observer.Note(fmt.Sprintf("%s: %s", u.ID().Label(Optioned(p.Units)), w.Note))
	return w
}

// SettledWindows reports whether the windows show a steady state (see
// SettleWindows): by agreement of the last ones, or by the absence of a
// trend in the last SettleTrendWindows.
func SettledWindows(ws []results.WarmupWindow) bool {
	return settledHow(ws) != ""
}

// settledHow says by which rule ws show a steady state: "agree", "no
// trend", or "" when they do not.
func settledHow(ws []results.WarmupWindow) string {
	tput := func(w results.WarmupWindow) float64 { return w.Throughput }
	p50 := func(w results.WarmupWindow) float64 { return w.P50 }
	clean := func(n int) []results.WarmupWindow {
		if len(ws) < n {
			return nil
		}
		last := ws[len(ws)-n:]
		for _, w := range last {
			if w.Failed > 0 || w.Throughput <= 0 || w.P50 <= 0 {
				return nil
			}
		}
		return last
	}
	within := func(last []results.WarmupWindow, tol float64, get func(results.WarmupWindow) float64) bool {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, w := range last {
			lo, hi = min(lo, get(w)), max(hi, get(w))
		}
		return hi <= lo*(1+tol)
	}
	if last := clean(SettleWindows); last != nil && within(last, SettleThroughputTolerance, tput) && within(last, SettleTolerance, p50) {
		return "agree"
	}
	if last := clean(SettleTrendWindows); last != nil && flat(last, SettleThroughputTolerance, tput) && flat(last, SettleTolerance, p50) {
		return "no trend"
	}
	return ""
}

// flat reports whether the least-squares line through get(ws), against
// the windows' index, moves by at most tol of the values' median from the
// first window to the last.
func flat(ws []results.WarmupWindow, tol float64, get func(results.WarmupWindow) float64) bool {
	n := float64(len(ws))
	xm := (n - 1) / 2
	var ym float64
	vals := make([]float64, len(ws))
	for i, w := range ws {
		vals[i] = get(w)
		ym += vals[i]
	}
	ym /= n
	var sxy, sxx float64
	for i, y := range vals {
		x := float64(i) - xm
		sxy += x * (y - ym)
		sxx += x * x
	}
	drift := math.Abs(sxy/sxx) * (n - 1)
	slices.Sort(vals)
	median := vals[len(vals)/2]
	if len(vals)%2 == 0 {
		median = (vals[len(vals)/2-1] + vals[len(vals)/2]) / 2
	}
	return drift <= tol*median
}

// BrokerWarmupConcurrency is how many callers load a broker while it warms
// up.
const BrokerWarmupConcurrency = 32

// warmBroker runs the scenario's broker_warmup of unmeasured load (closed
// loop, BrokerWarmupConcurrency callers, the first payload) through the
// unit's driver, so that the first measured cell does not meet a cold
// broker: a JVM broker just started runs several times slower until its JIT
// has compiled the hot paths (drivers.Spec.BrokerWarmup). Failures are noted, not
// fatal: the cells that follow will show them. It returns what it did, for
// the broker's entry in the results.
func warmBroker(ctx context.Context, p Plan, u Unit, addr string) string {
	spec := u.Driver.Spec()
	cfg := u.Config()
	d := time.Duration(p.Scenario.BrokerWarmup)
	name := spec.Name + "/" + cfg.Variant
	p.Observer.Note(fmt.Sprintf("%s: warming the %s broker up for %v (%d callers, not measured)", name, spec.Broker, d, BrokerWarmupConcurrency))
	client, err := dial(ctx, u, addr)
	if err != nil {
		if ctx.Err() == nil {
			p.Observer.Note(fmt.Sprintf("%s: broker warm-up: connect caller: %v", name, err))
		}
		return fmt.Sprintf("failed: connect caller: %v", err)
	}
	defer client.Close()
	load := Load{Payload: p.Scenario.Payloads[0], ResponseSize: p.Scenario.ResponseSize, Concurrency: BrokerWarmupConcurrency, Duration: d, Timeout: time.Duration(p.Scenario.Timeout), Seed: 1}
	m, err := RunCell(ctx, client, load, nil)
	if err != nil {
		if ctx.Err() == nil {
			p.Observer.Note(fmt.Sprintf("%s: broker warm-up: %v", name, err))
		}
		return "failed: " + err.Error()
	}
	if n := m.Counts.Failed(); n > 0 {
		p.Observer.Note(fmt.Sprintf("%s: broker warm-up: %d of %d calls failed", name, n, m.Counts.Started))
	}
	return fmt.Sprintf("%v with %d callers before the first cell: %d calls, %d failed (%s)", d, BrokerWarmupConcurrency, m.Counts.Started, m.Counts.Failed(), name)
}

func brokerKey(u Unit) string {
	key := u.Driver.Spec().Broker
	params := u.Transport.BrokerParams()
	for _, k := range slices.Sorted(maps.Keys(params)) {
		key += "/" + k + "=" + params[k]
	}
	return key
}

func getBroker(ctx context.Context, p Plan, u Unit, key string) (broker.Broker, error) {
	spec := u.Driver.Spec()
	if p.Brokers == nil {
		return broker.Broker{}, &broker.Unavailable{Reason: "no broker manager"}
	}
	params := u.Transport.BrokerParams()
	started := time.Now()
	b, err := p.Brokers.Get(ctx, spec.Broker, key, broker.StartOptions{Dir: p.Dir, Params: params})
	if err == nil && b.Details["startup"] != "" && time.Since(started) > 100*time.Millisecond {
		p.Observer.Note(fmt.Sprintf("%s broker ready in %s (%s %s)", spec.Broker, b.Details["startup"], b.Source, b.Image))
	}
	return b, err
}

// addBroker records b in the run's environment, once per URL, with when it
// started and was ready. The details are copied: the run adds its own
// (setBrokerDetail).
func addBroker(run *Outcome, b broker.Broker, started, ready time.Time) {
	rb := results.Broker{Kind: b.Kind, Source: b.Source, URL: b.URL, Image: b.Image, Version: b.Version, Details: maps.Clone(b.Details),
		StartedAt: started.UTC(), ReadyAt: ready.UTC()}
	for _, have := range run.Brokers {
		if have.Kind == rb.Kind && have.URL == rb.URL {
			return
		}
	}
	run.Brokers = append(run.Brokers, rb)
}

// setBrokerWarm records when the run's broker at url was warm.
func setBrokerWarm(run *Outcome, url string, at time.Time) {
	for i := range run.Brokers {
		if run.Brokers[i].URL == url {
			t := at.UTC()
			run.Brokers[i].WarmAt = &t
		}
	}
}

// setBrokerDetail sets a detail of the run's broker at url.
func setBrokerDetail(run *Outcome, url, key, value string) {
	for i := range run.Brokers {
		b := &run.Brokers[i]
		if b.URL != url {
			continue
		}
		if b.Details == nil {
			b.Details = map[string]string{}
		}
		b.Details[key] = value
	}
}

func loads(sc *scenarios.Scenario) int {
	if len(sc.Phases) > 0 {
		return 1
	}
	if sc.OpenLoop() {
		return len(sc.Rates)
	}
	return len(sc.Concurrency)
}

type cellPlan struct {
	cell results.Cell
	load Load
}

// cellPlans lists the cells of one driver variant, in the order they run:
// service time, payload, load, then repetitions.
func cellPlans(sc *scenarios.Scenario, u Unit) []cellPlan {
	if sc.Network == nil {
		return cellPlansAt(sc, u, nil)
	}
	var out []cellPlan
	for _, d := range sc.Network.OneWayDelay {
		out = append(out, cellPlansAt(sc, u, &results.Hop{OneWayDelay: d.String(), Jitter: sc.Network.Jitter.String()})...)
	}
	return out
}

// cellPlansAt lists the cells of one driver variant at one hop delay (nil:
// no delay proxy).
func cellPlansAt(sc *scenarios.Scenario, u Unit, hop *results.Hop) []cellPlan {
	chains := []*results.Chain{nil}
	if sc.Chain != nil {
		chains = nil
		for _, m := range sc.Chain.Modes {
			for _, d := range sc.Chain.Depths {
				chains = append(chains, &results.Chain{Depth: d, Mode: m})
			}
		}
	}
	var out []cellPlan
	for _, ch := range chains {
		out = append(out, cellPlansChain(sc, u, hop, ch)...)
	}
	return out
}

// cellPlansChain lists the cells of one driver variant at one hop delay
// and one call chain (nil: plain calls).
func cellPlansChain(sc *scenarios.Scenario, u Unit, hop *results.Hop, chain *results.Chain) []cellPlan {
	spec := u.Driver.Spec()
	var out []cellPlan
	for _, st := range sc.ServiceTimes {
		for _, payload := range sc.Payloads {
			for li := 0; li < loads(sc); li++ {
				for rep := 1; rep <= sc.Repeat; rep++ {
					c := results.Cell{
						Driver: spec.Name, Kind: string(spec.Kind), Variant: u.Config().Variant, Options: u.Config().Options,
						Payload: payload, ResponseSize: payload, ServiceTime: st.String(), Repetition: rep,
						ResponderConcurrency: sc.ResponderConcurrency,
						Series:               []results.Point{},
					}
					if hop != nil {
						h := *hop
						c.Hop = &h
					}
					if sc.ResponseSize > 0 {
						c.ResponseSize = sc.ResponseSize
					}
					if chain != nil {
						ch := *chain
						c.Chain = &ch
					}
					load := Load{
						Payload:      payload,
						ResponseSize: sc.ResponseSize,
						ServiceTime:  st,
						Duration:     cmp.Or(u.Duration, time.Duration(sc.Duration)),
						Calls:        sc.Calls,
						Warmup:       time.Duration(sc.Warmup),
						Timeout:      time.Duration(sc.Timeout),
					}
					if chain != nil {
						load.ChainDepth, load.ChainAsync = chain.Depth, chain.Mode == scenarios.ChainAsyncTail
					}
					switch {
					case len(sc.Phases) > 0:
						var calls float64
						for _, ph := range sc.Phases {
							load.Phases = append(load.Phases, Phase{Duration: time.Duration(ph.Duration), Rate: ph.Rate})
							calls += ph.Rate * time.Duration(ph.Duration).Seconds()
						}
						mean := math.Round(calls/time.Duration(sc.Duration).Seconds()*1000) / 1000
						c.Mode, c.Rate, c.Concurrency, c.Phases = "open", mean, sc.MaxInFlight, scenarios.PhasesString(sc.Phases)
						load.Rate, load.Concurrency = mean, sc.MaxInFlight
					case sc.OpenLoop():
						c.Mode, c.Rate, c.Concurrency = "open", sc.Rates[li], sc.MaxInFlight
						load.Rate, load.Concurrency = sc.Rates[li], sc.MaxInFlight
					default:
						c.Mode, c.Concurrency = "closed", sc.Concurrency[li]
						load.Concurrency = sc.Concurrency[li]
					}
					c.Key = cellKey(&c)
					load.Seed = seed(c.Key, rep)
					out = append(out, cellPlan{cell: c, load: load})
				}
			}
		}
	}
	return out
}

// PlannedCells lists what sc measures on units, one string a cell in run
// order: its workload key (results.CellKey) and how it is measured (its
// repetition, duration or calls, warm-up, timeout and settling cap). Two
// scenarios with the same strings measure the same cells the same way.
func PlannedCells(sc *scenarios.Scenario, units []Unit) []string {
	var out []string
	for _, u := range units {
		for _, cp := range cellPlans(sc, u) {
			out = append(out, fmt.Sprintf("%s repetition=%d duration=%v calls=%d warmup=%v timeout=%v settle=%v",
				cp.cell.Key, cp.cell.Repetition, cp.load.Duration, cp.load.Calls, cp.load.Warmup, cp.load.Timeout, time.Duration(sc.Settle)))
		}
	}
	return out
}

// dial connects a caller of the unit's driver to addr, within 30 s.
func dial(ctx context.Context, u Unit, addr string) (drivers.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return u.Transport.Dial(dctx, addr)
}

// hopRoute starts the caller side's delay proxy at h for a unit's
// responder at addr (bh: the unit's broker hop, nil for a direct driver,
// whose responder-side proxy takes h's delay too; ch: a direct driver's
// chain hop, set to h too) and returns the address the callers dial and
// what closes the proxy.
func hopRoute(ctx context.Context, addr string, h *results.Hop, bh, ch *brokerHop) (string, func(), error) {
	if bh != nil {
		a, pxs, err := bh.callers(ctx, addr, h)
		if err != nil {
			return "", nil, err
		}
		return a, func() { closeAll(pxs) }, nil
	}
	if ch != nil {
		if err := ch.set(h); err != nil {
			return "", nil, err
		}
	}
	px, err := startHop(ctx, addr, h)
	if err != nil {
		return "", nil, err
	}
	return px.Addr(), func() { px.Close() }, nil
}

func runCell(ctx context.Context, u Unit, addr string, load Load, c *results.Cell, obs Observer, ms []meter, notes []string, bh, ch *brokerHop) (*Measurement, error) {
	c.StartedAt = time.Now().UTC()
	// the cell's delay proxies: their listen ports, and the upstream
	// ports they dial
	var listenPorts, upstreamPorts []uint16
	switch {
	case c.Hop != nil && bh != nil:
		// callers to the broker through proxies of their own, the
		// responder through its unit-long ones, all at the cell's delay
		a, pxs, err := bh.callers(ctx, addr, c.Hop)
		if err != nil {
			return nil, err
		}
		defer func() { closeAll(pxs); fillHop(c.Hop, append(pxs, bh.rpxs...)...) }()
		addr = a
		for _, px := range pxs {
			listenPorts = append(listenPorts, portOf(px.Addr()))
		}
		l, up := bh.ports()
		listenPorts, upstreamPorts = append(listenPorts, l...), up
	case c.Hop != nil:
		// and a chain's onward hops through the unit's chain proxy, at
		// the cell's delay too
		pxs := []*delay.Proxy{}
		if ch != nil {
			if err := ch.set(c.Hop); err != nil {
				return nil, err
			}
			pxs = ch.rpxs
			listenPorts = append(listenPorts, portOf(ch.rpxs[0].Addr()))
		}
		px, err := startHop(ctx, addr, c.Hop)
		if err != nil {
			return nil, err
		}
		defer func() { px.Close(); fillHop(c.Hop, append([]*delay.Proxy{px}, pxs...)...) }()
		listenPorts, upstreamPorts = append(listenPorts, portOf(px.Addr())), []uint16{portOf(addr)}
		addr = px.Addr()
	}
	client, err := dial(ctx, u, addr)
	if err != nil {
		if ctx.Err() != nil {
			c.Incomplete = true
			return nil, nil
		}
		return nil, fmt.Errorf("connect caller: %w", err)
	}
	probe := probeCost(ctx, ms, notes, &load)
	if probe != nil && len(listenPorts) > 0 {
		// the proxies' own sockets: accepted on a proxy's port, or dialled
		// by a proxy to its upstream (the callers dial the proxies)
		probe.skip = func(local, remote uint16) bool {
			return slices.Contains(listenPorts, local) || slices.Contains(upstreamPorts, remote)
		}
	}
	m, err := RunCell(ctx, client, load, obs.Live)
	cost := probe.cost(m)
	if cost != nil && c.Hop != nil {
		cost.Notes = append(cost.Notes, "the delay proxies run in rpcbench's own process: their CPU (they spin while a chunk waits) is in the caller's figure; their connections stand in for the network and are not counted in anyone's segments")
	}
	if cerr := closeBounded(client, 5*time.Second); cerr != nil && err == nil {
		c.Warnings = append(c.Warnings, "closing the client: "+cerr.Error())
	}
	if err != nil {
		return nil, err
	}
	c.Cost = cost
	return m, fill(c, m, load)
}

// closeBounded closes a client, giving up after d: a driver whose Close
// hangs must not hang the run.
func closeBounded(cl drivers.Client, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cl.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("Close did not return within %v: abandoned", d)
	}
}

// fill writes what RunCell measured into the cell.
func fill(c *results.Cell, m *Measurement, load Load) error {
	c.Incomplete = m.Interrupted
	c.Seconds = m.Seconds
	c.Counts = m.Counts
	c.ErrorRate = m.Counts.ErrorRate()
	if m.Seconds > 0 {
		c.Throughput = float64(m.Counts.OK) / m.Seconds
	}
	c.Latency = results.Summarize(m.Corrected)
	c.Uncorrected = results.Summarize(m.Uncorrected)
	c.AllCalls = results.Summarize(m.All)
	c.Responder = results.Summarize(m.Responder)
	if m.Queue != nil && m.Queue.TotalCount() > 0 {
		q := results.Summarize(m.Queue)
		c.QueueDelay = &q
	}
	c.Errors = m.Errors
	c.Series = m.Series
	if m.Lateness != nil {
		c.Generator = &results.Generator{
			Lateness:       results.Summarize(m.Lateness),
			Limited:        m.GeneratorLimited,
			Reason:         m.GeneratorReason,
			BoundP99US:     float64(GeneratorP99Bound) / 1e3,
			BoundLateShare: GeneratorLateBound,
		}
	}
	c.Little = little(m, load)
	c.Warnings = append(c.Warnings, warnings(m, load)...)
	if c.Little != nil && !c.Little.Holds {
		c.Warnings = append(c.Warnings, "Little's law: "+c.Little.Note)
	}
	var err error
	enc := func(h *hdrhistogram.Histogram) string {
		if err != nil || h == nil {
			return ""
		}
		var s string
		s, err = results.EncodeHistogram(h)
		return s
	}
	c.Histograms = results.Histograms{
		Corrected:   enc(m.Corrected),
		Uncorrected: enc(m.Uncorrected),
		AllCalls:    enc(m.All),
		Responder:   enc(m.Responder),
		Lateness:    enc(m.Lateness),
	}
	return err
}

// littleMinCalls is how many calls a cell must complete for its
// Little's-law check to mean something.
const littleMinCalls = 200

// little checks the cell against Little's law (results.Little).
func little(m *Measurement, load Load) *results.Little {
	n := m.All.TotalCount()
	if n < littleMinCalls || m.Seconds <= 0 || load.Concurrency < 1 {
		return nil
	}
	l := &results.Little{
		InFlight: math.Round(float64(n)/m.Seconds*m.All.Mean()/1e9*100) / 100,
		Bound:    load.Concurrency,
		Holds:    true,
	}
	if load.Rate > 0 {
		if l.InFlight >= results.LittleOpenShare*float64(l.Bound) {
			l.Holds = false
			l.Note = fmt.Sprintf("%.4g calls in flight on average against max_in_flight %d: the cap binds, the transport did not keep up with %g calls/s", l.InFlight, l.Bound, load.Rate)
		}
		return l
	}
	if l.InFlight < results.LittleClosedShare*float64(l.Bound) {
		l.Holds = false
		l.Note = fmt.Sprintf("%.4g calls in flight on average against %d callers: %.0f%% of the callers' time went outside their calls (harness or scheduling), not in the figures", l.InFlight, l.Bound, 100*(1-l.InFlight/float64(l.Bound)))
	}
	return l
}

// warnings lists what makes a cell's numbers less than they seem.
func warnings(m *Measurement, load Load) []string {
	var out []string
	if n := m.Counts.Stuck; n > 0 {
		out = append(out, fmt.Sprintf("%d calls were still inside the driver %v past the window plus one timeout: abandoned and counted as stuck", n, StopGrace))
	}
	if n := m.Counts.OutOfRange; n > 0 {
		out = append(out, fmt.Sprintf("%d values beyond the histograms' range (%v) are counted but not in the percentiles", n, time.Duration(m.HistMax)))
	}
	if m.GeneratorLimited {
		out = append(out, "generator-limited: "+m.GeneratorReason+"; the offered load was not the load asked for")
	}
	// (a synchronous chain's first hop times the rest of the chain too:
	// its chain_hops, checked on every reply, says the hops ran)
	if want := load.ServiceTime.Mean; want > 0 && m.Responder.TotalCount() > 0 && (load.ChainDepth <= 1 || load.ChainAsync) {
		got := time.Duration(m.Responder.Mean())
		if d := got - want; d > want/10 || -d > want/10 {
			out = append(out, fmt.Sprintf("the responder realised a mean service time of %v against %v requested (more than 10%% off)", got.Round(time.Microsecond), want))
		}
	}
	return out
}

// cellKey names a cell the same way in every run, repetition excluded.
func cellKey(c *results.Cell) string { return results.CellKey(c) }

func seed(key string, rep int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64() + uint64(rep)
}
