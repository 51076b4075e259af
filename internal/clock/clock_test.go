package clock

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestUntilNeverEarly(t *testing.T) {
	for _, precise := range []bool{false, true} {
		base := time.Now()
		w := NewWaiter(base)
		if precise {
			w = NewPreciseWaiter(base)
			// spin little, so that most of each wait is a sleep
			w.MaxSpin = 20 * time.Microsecond
		}
		// steps of 300 µs, then one past hrSleepMax (a Go timer most
		// of the way, the rest precise)
		targets := []time.Duration{}
		for i := 1; i <= 50; i++ {
			targets = append(targets, time.Duration(i)*300*time.Microsecond)
		}
		targets = append(targets, targets[len(targets)-1]+hrSleepMax+time.Millisecond)
		for _, target := range targets {
			if !w.Until(context.Background(), target) {
				t.Fatal("Until returned false without a cancelled context")
			}
			if got := time.Since(base); got < target {
				t.Fatalf("precise %v: woke at %v for a target of %v", precise, got, target)
			}
		}
		if precise && w.hr == nil && runtime.GOOS == "linux" {
			t.Fatal("the precise waiter fell back to Go timers alone: its timerfd failed")
		}
		w.Close()
		w.Close() // twice is harmless
	}
}

func TestUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := NewPreciseWaiter(time.Now())
	defer w.Close()
	if w.Until(ctx, time.Hour) {
		t.Fatal("Until reached an hour away with a cancelled context")
	}
	if w.Until(ctx, time.Millisecond) {
		t.Fatal("Until reached a precise sleep's target with a cancelled context")
	}
	w = NewWaiter(time.Now())
	if w.Until(ctx, time.Hour) {
		t.Fatal("Until reached an hour away with a cancelled context")
	}
	// in the spin phase too
	w.MaxSpin = time.Hour
	if w.Until(ctx, 10*time.Millisecond) {
		t.Fatal("Until spun to its target with a cancelled context")
	}
}

func TestSleepNeverShort(t *testing.T) {
	for _, d := range []time.Duration{0, 20 * time.Microsecond, 250 * time.Microsecond, 3 * time.Millisecond} {
		start := time.Now()
		Sleep(d)
		if got := time.Since(start); got < d {
			t.Fatalf("Sleep(%v) took %v", d, got)
		}
	}
}

func TestWindowFollowsOversleep(t *testing.T) {
	for i := 0; i < 1000; i++ {
		observe(0)
	}
	if w := SpinWindow(); w > MinSpin+time.Microsecond {
		t.Fatalf("window %v after timers that never overslept, want %v", w, MinSpin)
	}
	observe(10 * time.Millisecond)
	if w := SpinWindow(); w != MaxSpin {
		t.Fatalf("window %v after a 10 ms oversleep, want %v", w, MaxSpin)
	}
	observe(time.Millisecond)
	if w := SpinWindow(); w != MaxSpin {
		t.Fatalf("window %v right after a long oversleep: it must decay, not drop", w)
	}
}
