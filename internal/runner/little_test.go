package runner

import (
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/internal/proc"
)

// measured is a measurement of n calls of latency d each over secs.
func measured(n int, d time.Duration, secs float64) *Measurement {
	h := hdrhistogram.New(1000, int64(time.Minute), 3)
	for range n {
		h.RecordValue(int64(d))
	}
	return &Measurement{All: h, Seconds: secs}
}

func TestLittle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		m     *Measurement
		load  Load
		holds bool
		note  string
	}{
		// 8 callers, 1 ms calls, 8,000 calls in 1 s: 8 in flight
		{"closed holds", measured(8000, time.Millisecond, 1), Load{Concurrency: 8}, true, ""},
		// the same calls, but only 6,000 done: 2 callers' worth of time outside the calls
		{"closed gap", measured(6000, time.Millisecond, 1), Load{Concurrency: 8}, false, "25% of the callers' time went outside"},
		// open loop, 1,000/s of 10 ms calls: 10 in flight of 256
		{"open free", measured(1000, 10*time.Millisecond, 1), Load{Concurrency: 256, Rate: 1000}, true, ""},
		// open loop, cap 4, 400 calls/s of 10 ms: 4 in flight, the cap binds
		{"open cap binds", measured(400, 10*time.Millisecond, 1), Load{Concurrency: 4, Rate: 1000}, false, "the cap binds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := little(tc.m, tc.load)
			if l == nil {
				t.Fatal("no check")
			}
			if l.Holds != tc.holds || !strings.Contains(l.Note, tc.note) {
				t.Fatalf("got %+v, want holds=%v note containing %q", l, tc.holds, tc.note)
			}
		})
	}
	if l := little(measured(10, time.Millisecond, 1), Load{Concurrency: 1}); l != nil {
		t.Fatalf("10 calls checked: %+v", l)
	}
}

// What others took of the machine is its CPU growth less the metered
// roles', in cores, plus the hypervisor's steal; either over BusyCores
// makes the window busy, and a negative remainder (tick accounting lags
// the roles' own rusage) is none.
func TestLoadBetween(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name         string
		busy, steal  time.Duration // machine growth
		roles        time.Duration // the roles' growth
		other, stole float64
		isBusy       bool
	}{
		{"quiet", 1 * s, 10 * time.Millisecond, 1 * s, 0, 0.01, false},
		{"a hog", 1800 * time.Millisecond, 0, 1 * s, 0.8, 0, true},
		{"a neighbour VM", 1 * s, 600 * time.Millisecond, 1 * s, 0, 0.6, true},
		{"roles ahead of ticks", 900 * time.Millisecond, 0, 1 * s, 0, 0, false},
	} {
		m0 := proc.Machine{Busy: 100 * s, Steal: 5 * s}
		m1 := proc.Machine{Busy: m0.Busy + tc.busy, Steal: m0.Steal + tc.steal}
		l, ok := loadBetween(m0, m1, []time.Duration{0, 0}, []time.Duration{tc.roles / 2, tc.roles / 2}, s)
		if !ok || l.other != tc.other || l.steal != tc.stole || l.busy() != tc.isBusy {
			t.Errorf("%s: %+v (ok %v), want other %v steal %v busy %v", tc.name, l, ok, tc.other, tc.stole, tc.isBusy)
		}
	}
	if _, ok := loadBetween(proc.Machine{}, proc.Machine{Busy: s}, nil, nil, s); ok {
		t.Error("a missing sample gave a load")
	}
}
