package drivers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchdog: a call still running at its deadline is expired once, by
// number, not before its deadline; a call that ended is never expired; a
// deadline earlier than the armed one is kept; an idle watchdog stays
// quiet.
func TestWatchdog(t *testing.T) {
	type hit struct {
		gen uint64
		at  time.Time
	}
	hits := make(chan hit, 16)
	w := NewWatchdog(func(gen uint64) { hits <- hit{gen, time.Now()} })

	// calls that end before their deadlines: none expires, though the
	// timer armed for the first fires during the later ones
	for range 5 {
		w.Begin(time.Now().Add(30 * time.Millisecond))
		time.Sleep(10 * time.Millisecond)
		w.End()
	}
	// a call that overruns: expired at (not before) its deadline, once
	due := time.Now().Add(40 * time.Millisecond)
	g := w.Begin(due)
	select {
	case h := <-hits:
		if h.gen != g {
			t.Fatalf("expired call %d, want %d (an earlier call that had ended)", h.gen, g)
		}
		if h.at.Before(due) {
			t.Fatalf("expired %v before its deadline", due.Sub(h.at))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call past its deadline was not expired")
	}
	w.End()
	// an earlier deadline than the armed one is kept
	w.Begin(time.Now().Add(time.Hour))
	w.End()
	due = time.Now().Add(20 * time.Millisecond)
	g = w.Begin(due)
	select {
	case h := <-hits:
		if h.gen != g || h.at.Before(due) {
			t.Fatalf("expired call %d at %v, want call %d at or after its deadline", h.gen, h.at.Sub(due), g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline earlier than the armed timer's was missed")
	}
	w.End()
	select {
	case h := <-hits:
		t.Fatalf("call %d expired twice, or an ended call expired", h.gen)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestWatchdogRace: calls ending at their deadline, from many callers at
// once, never expire a call other than the running one.
func TestWatchdogRace(t *testing.T) {
	var wrong atomic.Int64
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			var cur atomic.Uint64
			w := NewWatchdog(func(gen uint64) {
				if gen != cur.Load() {
					wrong.Add(1)
				}
			})
			for range 300 {
				n := cur.Add(1) // the number Begin gives this call
				if g := w.Begin(time.Now().Add(50 * time.Microsecond)); g != n {
					wrong.Add(1)
				}
				time.Sleep(time.Duration(cur.Load()%3) * 40 * time.Microsecond)
				w.End()
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d expiries named a call that was not running", n)
	}
}

// TestWatchdogWatch: a cancelled context expires the running call at once
// and only that one; a context cancelled between calls expires nothing;
// a context replaced by another no longer counts.
func TestWatchdogWatch(t *testing.T) {
	hits := make(chan uint64, 4)
	w := NewWatchdog(func(gen uint64) { hits <- gen })
	quiet := func(what string) {
		t.Helper()
		select {
		case g := <-hits:
			t.Fatalf("%s: call %d expired", what, g)
		case <-time.After(50 * time.Millisecond):
		}
	}

	// replaced: cancelling the first context after the caller moved on
	// to another expires nothing
	old, cancelOld := context.WithCancel(context.Background())
	w.Watch(old)
	w.Begin(time.Now().Add(time.Hour))
	w.End()
	ctx, cancel := context.WithCancel(context.Background())
	w.Watch(ctx)
	g := w.Begin(time.Now().Add(time.Hour))
	cancelOld()
	quiet("a context no longer watched was cancelled")

	// cancelled during a call: that call expires, at once, once
	cancel()
	select {
	case h := <-hits:
		if h != g {
			t.Fatalf("cancelling expired call %d, want the running call %d", h, g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call whose context was cancelled was not expired")
	}
	w.End()
	quiet("after the cancelled call ended")

	// cancelled between calls: nothing to expire
	ctx2, cancel2 := context.WithCancel(context.Background())
	w.Watch(ctx2)
	w.Begin(time.Now().Add(time.Hour))
	w.End()
	cancel2()
	quiet("a context cancelled between calls")
}
