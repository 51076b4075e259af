// Package clock waits precisely. Go timers wake up to about a millisecond
// late on an idle process (the netpoller waits in whole milliseconds), so a
// wait that must end on time sleeps until shortly before its target and
// then spins for the rest. How long before the target it stops sleeping
// (the spin window) adapts to how late this process's timers have been
// waking, within bounds a caller can lower.
package clock

import (
	"context"
	"sync/atomic"
	"time"
)

// Spin-window bounds. The window starts at its maximum and follows the
// timers' observed oversleep: a decaying maximum times 1.25 plus a margin.
const (
	MinSpin    = 50 * time.Microsecond
	MaxSpin    = 3 * time.Millisecond
	spinMargin = 50 * time.Microsecond
)

// window is the current spin window in ns; overMax the decaying maximum of
// observed timer oversleep.
var (
	window  atomic.Int64
	overMax atomic.Int64
)

func init() {
	window.Store(int64(2 * time.Millisecond))
	overMax.Store(int64(time.Millisecond))
}

// SpinWindow is how long before a target a wait stops sleeping.
func SpinWindow() time.Duration { return time.Duration(window.Load()) }

// observe feeds one timer's oversleep into the window.
func observe(over time.Duration) {
	m := decayMax(time.Duration(overMax.Load()), over)
	overMax.Store(int64(m))
	window.Store(int64(max(MinSpin, min(MaxSpin, spinFor(m, spinMargin)))))
}

// decayMax is a maximum of oversleeps that decays by half in about 44
// sleeps, updated with one more.
func decayMax(m, over time.Duration) time.Duration { return max(m-m/64, over) }

// spinFor is the spin window for a decaying maximum oversleep m.
func spinFor(m, margin time.Duration) time.Duration { return m + m/4 + margin }

// Waiter waits for targets on the monotonic clock of base. It is not safe
// for concurrent use: each goroutine that waits has its own.
type Waiter struct {
	base  time.Time
	timer *time.Timer
	// MaxSpin caps the spin window (NewWaiter sets MaxSpin); Floor is the
	// least it spins, whatever the timers have been doing (at most
	// MaxSpin).
	MaxSpin, Floor time.Duration
	// hr wakes the poller for sleeps of up to hrSleepMax (nil: Go timers
	// only); hrOver is the decaying maximum of those sleeps' oversleep,
	// which sets their spin window.
	hr     *hrTimer
	hrOver time.Duration
}

// NewWaiter returns a waiter whose targets are offsets from base.
func NewWaiter(base time.Time) *Waiter {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Waiter{base: base, timer: t, MaxSpin: MaxSpin}
}

// NewPreciseWaiter is NewWaiter whose sleeps of up to hrSleepMax also
// arm the kernel's high-resolution timer, to wake an idle process on time
// (Linux; elsewhere it is NewWaiter): they wake within tens of
// microseconds, where a Go timer shorter than a millisecond wakes an idle
// process a millisecond late, so the waiter spins far less. Close
// releases it.
func NewPreciseWaiter(base time.Time) *Waiter {
	w := NewWaiter(base)
	w.hr, w.hrOver = newHRTimer(), hrSpinMargin
	return w
}

// Close releases what a precise waiter holds.
func (w *Waiter) Close() {
	if w.hr != nil {
		w.hr.close()
		w.hr = nil
	}
}

// hrSleepMax is the longest sleep for which a precise waiter arms its
// high-resolution timer (a longer one wakes early enough to take a short
// one next); hrSpinMargin is the margin of its spin
// window over the oversleep seen.
const (
	hrSleepMax   = 5 * time.Millisecond
	hrSpinMargin = 10 * time.Microsecond
)

func (w *Waiter) observe(over time.Duration) { w.hrOver = decayMax(w.hrOver, over) }

func (w *Waiter) spinWindow() time.Duration {
	if w.hr != nil {
		return max(hrSpinMargin, spinFor(w.hrOver, hrSpinMargin))
	}
	return SpinWindow()
}

// Until waits until base+target and reports whether it got there: it
// returns false as soon as ctx ends.
func (w *Waiter) Until(ctx context.Context, target time.Duration) bool {
	for {
		left := target - time.Since(w.base)
		if left <= 0 {
			return true
		}
		spin := min(max(w.spinWindow(), w.Floor), w.MaxSpin)
		if left <= spin {
			break
		}
		sleep := left - spin
		wakeFor := time.Since(w.base) + sleep
		if w.hr != nil && sleep > hrSleepMax {
			// most of the way first, the last stretch precise
			sleep = left - hrSleepMax/2
			wakeFor = time.Since(w.base) + sleep
		}
		w.timer.Reset(sleep)
		// armed after the Go timer, so it expires after it: the poller
		// woken before the Go timer is due would wait a whole
		// millisecond again
		precise := w.hr != nil && sleep <= hrSleepMax && w.hr.kick(sleep+time.Microsecond)
		select {
		case <-ctx.Done():
			w.timer.Stop()
			return false
		case <-w.timer.C:
		}
		if precise {
			w.observe(time.Since(w.base) - wakeFor)
		} else {
			observe(time.Since(w.base) - wakeFor)
		}
	}
	for n := 0; ; n++ {
		if time.Since(w.base) >= target {
			return true
		}
		// A tight spin: it holds this goroutine's P but never enters a
		// run queue. Yielding (runtime.Gosched) would put the spinner in
		// the global run queue, which every idle P checks before the
		// network poller: replies would wait for sysmon's 10 ms poll
		// (measured: tcp open-loop p50 0.8-2.5 ms instead of 70 µs).
		if n&63 == 63 && ctx.Err() != nil {
			return false
		}
	}
}

// Sleep waits for d, precisely: the responder's service time. A sleep
// alone overshoots sub-millisecond durations several times over.
func Sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	start := time.Now()
	if spin := min(SpinWindow(), MaxServiceSpin); d > spin {
		sleep := d - spin
		time.Sleep(sleep)
		observe(time.Since(start) - sleep)
	}
	// tight, like Until's: see there why not runtime.Gosched
	for time.Since(start) < d {
	}
}

// MaxServiceSpin caps Sleep's spin: a spinning handler holds a P, like a
// handler doing CPU work.
const MaxServiceSpin = time.Millisecond
