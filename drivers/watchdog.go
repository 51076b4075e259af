package drivers

import (
	"context"
	"sync"
	"time"
)

// Watchdog gives one caller's calls their deadlines with one timer that
// is set again only when it fires before the current call's deadline,
// instead of a timer (or a context.WithDeadline) made or reset and stopped
// on every call. A call's deadline is normally later than the one before
// it (the runner's deadlines are each call's start plus the timeout), so
// a timer left armed for an earlier call fires early, finds the current
// call's deadline still ahead and waits again: about once per timeout
// while the caller is busy, not once per call. Between calls nothing is
// armed once the timer has fired, so a caller dropped between calls needs
// no stopping.
//
// A context.WithDeadline costs a fast transport's call about 1 µs of CPU
// (its timer and cancellation), several per cent of a call at 64 callers
// on two cores; Begin and End cost a lock each.
type Watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	armed  bool
	at     time.Time // when the armed timer fires
	due    time.Time // the current call's deadline; zero between calls
	gen    uint64    // the current call's number
	expire func(gen uint64)

	// the context Watch follows (owned by the caller's goroutine)
	ctx  context.Context
	stop func() bool
}

// Watch makes the watchdog expire the current call at once when ctx is
// cancelled, as at its deadline (ctx.Err() then tells the two apart), so
// that a caller waits on one channel, not a select over its reply, its
// deadline and its context. Called before each Begin, it registers with
// ctx only when ctx differs from the last call's (a caller normally gets
// the same context for every call of a cell). A caller that finds ctx
// done after Begin returns at once: a cancellation between Watch and
// Begin found no call to expire.
func (w *Watchdog) Watch(ctx context.Context) {
	if ctx == w.ctx {
		return
	}
	if w.stop != nil {
		w.stop()
	}
	w.ctx, w.stop = ctx, context.AfterFunc(ctx, w.interrupt)
}

// interrupt expires the current call, if there is one.
func (w *Watchdog) interrupt() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.due.IsZero() {
		return
	}
	w.due = time.Time{}
	w.expire(w.gen)
}

// NewWatchdog returns a watchdog that calls expire(gen) once when call gen
// is still running at its deadline, or when the context given to Watch is
// cancelled while call gen runs (at most once per call). expire runs with the watchdog's lock
// held, so that call gen cannot end and the next begin while it runs: it
// must be quick (cancel a context, close a connection, a non-blocking
// send) and must not call Begin or End.
func NewWatchdog(expire func(gen uint64)) *Watchdog {
	w := &Watchdog{expire: expire}
	w.t = time.AfterFunc(time.Hour, w.fire)
	w.t.Stop()
	return w
}

// Begin starts a call with the given deadline and returns its number.
// The caller's goroutine calls Watch, Begin and End, one call at a time.
func (w *Watchdog) Begin(deadline time.Time) uint64 {
	w.mu.Lock()
	w.gen++
	w.due = deadline
	if !w.armed || deadline.Before(w.at) {
		w.t.Reset(max(time.Until(deadline), 1))
		w.armed, w.at = true, deadline
	}
	g := w.gen
	w.mu.Unlock()
	return g
}

// End ends the current call: its deadline no longer applies.
func (w *Watchdog) End() {
	w.mu.Lock()
	w.due = time.Time{}
	w.mu.Unlock()
}

func (w *Watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if w.due.IsZero() {
		return
	}
	if wait := time.Until(w.due); wait > 0 {
		w.t.Reset(wait)
		w.armed, w.at = true, w.due
		return
	}
	w.due = time.Time{} // once per call
	w.expire(w.gen)
}
