package runner

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/ledger"
)

// TestJournal: a journalled cell records every call due once, with a
// unique id carrying the cell's tag, and what the caller saw of it.
func TestJournal(t *testing.T) {
	fn := func(n int64, req, buf []byte) ([]byte, error) {
		switch {
		case n == 1:
			time.Sleep(100 * time.Millisecond) // the others overflow meanwhile
		case n%10 == 0:
			return nil, fmt.Errorf("down: %w", drivers.ErrNotSent)
		case n%10 == 5:
			return nil, errors.New("lost")
		}
		return append(buf, req...), nil
	}
	const base = uint64(7) << 56
	m, err := RunCell(context.Background(), &funcClient{fn: fn}, Load{Payload: 8, Concurrency: 1, Rate: 1000, Calls: 300, Timeout: 20 * time.Millisecond, Journal: true, IDBase: base}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Counts
	if int64(len(m.Journal)) != c.Scheduled {
		t.Fatalf("%d journal entries, %d calls scheduled", len(m.Journal), c.Scheduled)
	}
	ids := map[uint64]bool{}
	var ok, notSent, failed int64
	for _, j := range m.Journal {
		switch j.Outcome {
		case ledger.OK:
			ok++
		case ledger.NotSent:
			notSent++
			if j.ID == 0 {
				continue // never started: no id was drawn
			}
		default:
			failed++
		}
		if j.ID&(0xff<<56) != base || ids[j.ID] {
			t.Fatalf("id %x: duplicate or without the cell's tag", j.ID)
		}
		ids[j.ID] = true
		if j.End < j.Start || j.Start < j.Intended {
			t.Fatalf("times out of order: %+v", j)
		}
	}
	if ok != c.OK || notSent == 0 || notSent-c.Overflow == 0 || failed == 0 {
		t.Fatalf("ok %d (counts %d), not sent %d (overflow %d), failed %d", ok, c.OK, notSent, c.Overflow, failed)
	}
}

// TestPhasesSchedule: a phased open loop runs each phase's rate for its
// duration, after a warm-up at the first phase's rate.
func TestPhasesSchedule(t *testing.T) {
	s := newShared(Load{Payload: 8, Concurrency: 4, Rate: 1, Warmup: time.Second, Timeout: time.Second,
		Phases: []Phase{{Duration: 2 * time.Second, Rate: 10}, {Duration: time.Second, Rate: 100}, {Duration: time.Second, Rate: 10}}})
	if s.scheduled != 10+20+100+10 {
		t.Fatalf("%d calls scheduled, want 140", s.scheduled)
	}
	for _, tc := range []struct {
		i    int64
		want time.Duration
	}{{0, 0}, {9, 900 * time.Millisecond}, {10, time.Second}, {29, 2900 * time.Millisecond}, {30, 3 * time.Second}, {31, 3010 * time.Millisecond}, {130, 4 * time.Second}, {139, 4900 * time.Millisecond}} {
		if got := s.schedule(tc.i); got != tc.want {
			t.Errorf("call %d at %v, want %v", tc.i, got, tc.want)
		}
	}
	if s.end != 5*time.Second || s.measureStart != time.Second {
		t.Fatalf("window %v-%v", s.measureStart, s.end)
	}
}
