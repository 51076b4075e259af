package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/chain"
	"github.com/rpcbench/rpcbench/internal/ledger"
	"github.com/rpcbench/rpcbench/results"
	"github.com/rpcbench/rpcbench/scenarios"
)

// ServeOptions are what a fault run asks of a responder beyond its place.
type ServeOptions struct {
	// Ledger is the file the responder records every handling in ("":
	// none); Incarnation numbers this responder among the unit's.
	Ledger      string
	Incarnation int
	// ChainNext is where a chain's onward hops dial ("": the server's
	// own address): the delay proxy of a direct driver's chain cells.
	ChainNext string
}

// Signaler is a responder that runs as its own process: a fault cell can
// kill or freeze it.
type Signaler interface {
	Signal(sig syscall.Signal) error
}

// TimelineStep is the step of a fault cell's timeline.
const TimelineStep = 100 * time.Millisecond

// Drain: after a fault cell's load, the run waits until no new ledger
// record has arrived for drainQuiet, at most drainBound past the cell's
// last call.
const (
	drainQuiet = time.Second
	drainPoll  = 50 * time.Millisecond
)

func drainBound(timeout time.Duration) time.Duration { return timeout + 5*time.Second }

// ServeInProcess starts the unit's responder in this process, with the
// core's handler admitting the unit's responder concurrency (and recording
// each request in o.Ledger, if set).
func ServeInProcess(ctx context.Context, u Unit, at drivers.Place, o ServeOptions) (drivers.Server, error) {
	h := drivers.Handler(wireLimit(u.Config().Concurrency()))
	if o.Ledger == "" {
		return chain.ServeVia(ctx, u.Transport, at, h, o.ChainNext)
	}
	w, err := ledger.Open(o.Ledger, max(o.Incarnation, 1))
	if err != nil {
		return nil, err
	}
	srv, err := u.Transport.Serve(ctx, at, ledger.Wrap(h, w))
	if err != nil {
		w.Close()
		return nil, err
	}
	return &ledgerServer{Server: srv, w: w}, nil
}

type ledgerServer struct {
	drivers.Server
	w *ledger.Writer
}

func (s *ledgerServer) Close() error {
	err := s.Server.Close()
	s.w.Close()
	if werr := s.w.Err(); werr != nil && err == nil {
		err = werr
	}
	return err
}

// responder is a unit's current responder, which a fault cell may kill and
// restart.
type responder struct {
	p           Plan
	u           Unit
	srv         drivers.Server
	at          drivers.Place
	ledger      string
	incarnation int
}

// addr is what callers dial.
func (r *responder) addr() string { return r.srv.Addr() }

// restartPlace is where a new responder serves the same requests: the
// same port, or the same queue or subject on the same broker.
func (r *responder) restartPlace() drivers.Place {
	at := r.at
	if r.u.Driver.Spec().Kind == drivers.Broker {
		at.Broker = r.srv.Addr()
	} else {
		at.Listen = r.srv.Addr()
	}
	return at
}

func (r *responder) close() {
	if r.srv != nil {
		r.srv.Close()
	}
}

func (r *responder) signal(sig syscall.Signal) error {
	s, ok := r.srv.(Signaler)
	if !ok {
		return errors.New("the responder runs in rpcbench's own process: responder faults need --responder process")
	}
	return s.Signal(sig)
}

// restart starts a new responder where the killed one served.
func (r *responder) restart(ctx context.Context) error {
	at := r.restartPlace()
	r.srv.Close() // reaps the killed process
	r.incarnation++
	srv, err := r.p.serve(ctx, r.u, at, ServeOptions{Ledger: r.ledger, Incarnation: r.incarnation})
	if err != nil {
		r.srv = nil
		return err
	}
	r.srv = srv
	return nil
}

// faultDoer does a fault cell's faults to its responder and broker.
type faultDoer struct {
	r *responder
	b *broker.Broker
}

func (d faultDoer) control() (broker.Control, error) {
	if d.b == nil {
		return nil, errors.New("this driver has no broker")
	}
	if d.b.Control == nil {
		return nil, fmt.Errorf("the %s broker is %s: rpcbench can fault only brokers it manages (responder faults apply)", d.b.Kind, d.b.Source)
	}
	return d.b.Control, nil
}

// do does a fault; undo restores it.
func (d faultDoer) do(ctx context.Context, action string) error {
	switch action {
	case scenarios.KillResponder:
		return d.r.signal(syscall.SIGKILL)
	case scenarios.StopResponder:
		return d.r.signal(syscall.SIGSTOP)
	}
	c, err := d.control()
	if err != nil {
		return err
	}
	switch action {
	case scenarios.KillBroker:
		return c.Kill(ctx)
	case scenarios.StopBroker:
		return c.Stop(ctx)
	case scenarios.PauseBroker:
		return c.Pause(ctx)
	}
	return fmt.Errorf("unknown fault action %q", action)
}

func (d faultDoer) undo(ctx context.Context, action string) error {
	switch action {
	case scenarios.KillResponder:
		return d.r.restart(ctx)
	case scenarios.StopResponder:
		return d.r.signal(syscall.SIGCONT)
	}
	c, err := d.control()
	if err != nil {
		return err
	}
	switch action {
	case scenarios.KillBroker, scenarios.StopBroker:
		return c.Start(ctx)
	case scenarios.PauseBroker:
		return c.Resume(ctx)
	}
	return fmt.Errorf("unknown fault action %q", action)
}

// CheckFaults says whether a plan's faults can be done: responder faults
// need responders in their own processes, broker faults broker drivers.
func CheckFaults(p Plan) error {
	sc := p.Scenario
	for i, f := range sc.Faults {
		if p.Target != "" {
			return fmt.Errorf("faults[%d] %s: the responder runs elsewhere (--target): rpcbench can fault only the responders and brokers it starts", i, f.Action)
		}
		if !scenarios.BrokerFault(f.Action) {
			if p.Serve == nil {
				return fmt.Errorf("faults[%d] %s: responders run in rpcbench's own process: responder faults need --responder process", i, f.Action)
			}
			continue
		}
		brokers := false
		for _, u := range p.Units {
			brokers = brokers || u.Driver.Spec().Kind == drivers.Broker
		}
		if !brokers {
			return fmt.Errorf("faults[%d] %s: none of the drivers has a broker: run broker faults with a broker driver", i, f.Action)
		}
	}
	return nil
}

// ledgerPath is where a unit's responders keep their ledger.
func ledgerPath(p Plan, u Unit) (string, error) {
	dir := p.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "ledgers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cfg := u.Config()
	name := strings.NewReplacer("/", "_", ":", "_").Replace(u.Driver.Spec().Name + "-" + cfg.Variant)
	f, err := os.CreateTemp(dir, name+"-*.ledger")
	if err != nil {
		return "", err
	}
	f.Close()
	return f.Name(), nil
}

// runFaultCell runs one fault cell: its load open loop with every call
// journalled, the faults on their schedule, then the drain, and the
// accounting joined from the journal and the ledger.
func runFaultCell(ctx context.Context, p Plan, r *responder, b *broker.Broker, u Unit, load Load, c *results.Cell, seq int) error {
	offset, err := ledger.Size(r.ledger)
	if err != nil {
		return err
	}
	load.Journal = true
	load.IDBase = uint64(seq%255+1) << 56
	// the unit has settled already; the faults are placed from the
	// load's start
	load.Warmup = 0
	started := make(chan time.Time, 1)
	var cellStart time.Time
	load.OnStart = func(t time.Time) { cellStart = t; started <- t }
	doer := faultDoer{r: r, b: b}
	events := make([]results.FaultEvent, len(p.Scenario.Faults))
	restoreAt := make([]time.Duration, len(p.Scenario.Faults))
	schedDone := make(chan struct{})
	stopSched := make(chan struct{})
	go func() {
		defer close(schedDone)
		var t0 time.Time
		select {
		case t0 = <-started:
		case <-stopSched:
			return
		}
		wait := func(d time.Duration) bool {
			t := time.NewTimer(time.Until(t0.Add(d)))
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-stopSched:
				return false
			}
		}
		for i, f := range p.Scenario.Faults {
			ev := &events[i]
			ev.Action = f.Action
			ev.At = -1
			if scenarios.BrokerFault(f.Action) && b == nil {
				// a direct driver in a scenario with broker faults
				ev.NotApplicable = "this driver has no broker"
				continue
			}
			if !wait(time.Duration(f.At)) {
				return
			}
			ev.At = secs(time.Since(t0))
			p.Observer.Note(fmt.Sprintf("fault: %s at %.1fs", f.Action, ev.At))
			if err := doer.do(ctx, f.Action); err != nil {
				ev.Error = err.Error()
				continue
			}
			waited := wait(time.Duration(f.At + f.RestoreAfter))
			if !waited && ctx.Err() != nil && f.Action != scenarios.StopResponder && f.Action != scenarios.PauseBroker {
				// interrupted: the clean-up removes what is dead; only a
				// frozen process must be thawed for it
				ev.Error = "not restored: the run was interrupted"
				continue
			}
			// restored even when the cell is cut short: the next cell
			// (and the run's clean-up) need the responder and broker back
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			err := doer.undo(rctx, f.Action)
			cancel()
			if err != nil {
				ev.Error = "restore: " + err.Error()
				continue
			}
			restoreAt[i] = time.Since(t0)
			if waited {
				t := secs(restoreAt[i])
				ev.Restored = &t
				p.Observer.Note(fmt.Sprintf("fault: %s restored at %.1fs", f.Action, t))
			}
		}
	}()
	m, err := runCell(ctx, u, r.addr(), load, c, p.Observer, nil, nil, nil, nil)
	close(stopSched)
	<-schedDone
	if err != nil || m == nil {
		return err
	}
	// drain: handlings still to come (a restarted responder given the
	// requests its predecessor never answered)
	var last time.Duration
	for _, call := range m.Journal {
		last = max(last, call.End)
	}
	bound := drainBound(load.Timeout)
	var redelivery time.Duration
	if rd, ok := u.Transport.(drivers.Redeliverer); ok {
		redelivery = rd.RedeliveryAfter()
		bound += redelivery
	}
	drainStart := time.Now()
	// the drain lasts at least until a request a faulted responder had
	// taken but not acked has been redelivered (AckWait after the fault)
	var minDrain time.Duration
	if redelivery > 0 {
		for _, ev := range events {
			if ev.At >= 0 && !scenarios.BrokerFault(ev.Action) {
				until := cellStart.Add(time.Duration(ev.At*float64(time.Second)) + redelivery + drainQuiet)
				minDrain = max(minDrain, time.Until(until))
			}
		}
	}
	recs, pos, err := ledger.Read(r.ledger, offset)
	if err != nil {
		return err
	}
	quietSince := time.Now()
	undrained := false
	for ctx.Err() == nil {
		if time.Since(quietSince) >= drainQuiet && time.Since(drainStart) >= minDrain {
			break
		}
		if time.Since(drainStart) >= bound {
			undrained = true
			break
		}
		time.Sleep(drainPoll)
		more, next, err := ledger.Read(r.ledger, pos)
		if err != nil {
			return err
		}
		if len(more) > 0 {
			recs, pos, quietSince = append(recs, more...), next, time.Now()
		}
	}
	f := &results.Faults{
		Events: events,
		StepMs: int(TimelineStep / time.Millisecond),
		Drain: results.Drain{
			Seconds:      secs(time.Since(drainStart)),
			QuietSeconds: drainQuiet.Seconds(),
			BoundSeconds: bound.Seconds(),
		},
	}
	ar, acks := u.Transport.(drivers.AckReporter)
	f.Ledger = ledger.Account(m.Journal, recs, acks && ar.ReportsAcks())
	f.Ledger.OrphanReplies = m.Orphans
	f.Ledger.Undrained = undrained
	end := time.Duration(load.Duration)
	until := max(end, last) + TimelineStep
	f.Timeline = ledger.Timeline(m.Journal, TimelineStep, until)
	for i := range events {
		ev := &events[i]
		if ev.At < 0 || ev.Error != "" || ev.NotApplicable != "" {
			continue
		}
		until := end
		for _, next := range events[i+1:] {
			if next.At >= 0 {
				until = min(until, time.Duration(next.At*float64(time.Second)))
				break
			}
		}
		ledger.Recovery(m.Journal, time.Duration(ev.At*float64(time.Second)), restoreAt[i], until, ev)
	}
	f.Notes = faultNotes(u, f)
	c.Faults = f
	if f.Ledger.Lost > 0 || f.Ledger.Duplicated > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("faults: %d calls lost, %d duplicated (see the ledger)", f.Ledger.Lost, f.Ledger.Duplicated))
	}
	return nil
}

// faultNotes say what a fault cell's accounting cannot show.
func faultNotes(u Unit, f *results.Faults) []string {
	var notes []string
	if f.Ledger.LostAcknowledged == nil {
		notes = append(notes, "lost_acknowledged: this driver does not report the broker's acknowledgement of a request (null)")
	}
	for _, ev := range f.Events {
		if ev.Action == scenarios.KillBroker || ev.Action == scenarios.StopBroker {
			notes = append(notes, "a broker killed on this host loses nothing its kernel's page cache holds: fsync policies cannot be told apart by killing a process (only a power loss or a VM kill would show it)")
			break
		}
	}
	if f.Ledger.OrphanReplies == nil {
		notes = append(notes, "orphan_replies: this driver does not count replies that arrive for calls no longer waiting (null)")
	}
	if u.Driver.Spec().Kind == drivers.Direct {
		notes = append(notes, "a direct transport holds no request for a restarted responder: the calls in flight at a kill fail")
	}
	return notes
}

func secs(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }
