package ledger

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

func request(id uint64) []byte {
	return wire.NewRequestTemplate([]byte("payload"), 0).Append(nil, id, 0, 0)
}

// TestWriteRead: records written by two incarnations come back whole, in
// order, and a partial record at the end is left for the next read.
func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	if n, err := Size(path); err != nil || n != 0 {
		t.Fatalf("size of a missing ledger: %d, %v", n, err)
	}
	for inc := 1; inc <= 2; inc++ {
		w, err := Open(path, inc)
		if err != nil {
			t.Fatal(err)
		}
		h := Wrap(wire.Respond, w)
		for id := uint64(1); id <= 3; id++ {
			if reply := h(request(id), nil); len(reply) == 0 {
				t.Fatal("no reply")
			}
		}
		if err := w.Close(); err != nil || w.Err() != nil {
			t.Fatal(err, w.Err())
		}
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{1, 2, 3}) // a record cut short
	f.Close()
	recs, next, err := Read(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || next != 6*RecordSize {
		t.Fatalf("%d records, next %d; want 6, %d", len(recs), next, 6*RecordSize)
	}
	for i, r := range recs {
		if r.ID != uint64(i%3+1) || r.Incarnation != uint32(i/3+1) || r.Start <= 0 {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	later, _, _ := Read(path, 3*RecordSize)
	if len(later) != 3 || later[0].Incarnation != 2 {
		t.Fatalf("read from offset: %+v", later)
	}
	if n, _ := Size(path); n != 6*RecordSize {
		t.Fatalf("size %d, want whole records only", n)
	}
	if _, err := Open(path, 0); err == nil {
		t.Fatal("incarnation 0 accepted")
	}
}

// TestAccount classifies every kind of call once and the counts add up.
func TestAccount(t *testing.T) {
	ms := time.Millisecond
	calls := []Call{
		{ID: 1, Outcome: OK},      // exactly once
		{ID: 2, Outcome: OK},      // duplicated, caller saw ok
		{ID: 3, Outcome: Failed},  // lost
		{ID: 4, Outcome: Failed},  // handled, caller gave up
		{ID: 5, Outcome: Failed},  // handled twice, caller gave up
		{ID: 6, Outcome: NotSent}, // never left
		{ID: 7, Outcome: NotSent}, // said not sent, but handled: sent
		{ID: 8, Outcome: OK},      // ok without a record: a broken ledger
	}
	for i := range calls {
		calls[i].End = time.Duration(i) * ms
	}
	recs := []Record{{ID: 1, Incarnation: 1}, {ID: 2, Incarnation: 1}, {ID: 2, Incarnation: 2}, {ID: 4, Incarnation: 1},
		{ID: 5, Incarnation: 1}, {ID: 5, Incarnation: 2}, {ID: 7, Incarnation: 2}, {ID: 99, Incarnation: 2}}
	calls[2].Acked = true // lost although acknowledged
	l := Account(calls, recs, true)
	if l.LostAcknowledged == nil || *l.LostAcknowledged != 1 {
		t.Fatalf("lost acknowledged %v, want 1", l.LostAcknowledged)
	}
	l.LostAcknowledged = nil
	if Account(calls, recs, false).LostAcknowledged != nil {
		t.Fatal("lost_acknowledged counted for a driver that reports no acks")
	}
	want := results.Ledger{Attempted: 7, NotSent: 1, ExactlyOnce: 1, Duplicated: 2, DuplicatedOK: 1, Lost: 2, ExecutedAfterTimeout: 2,
		OKUnrecorded: 1, Unexpected: 1, Redelivered: 2, Handlings: 8, Incarnations: 2}
	if l != want {
		t.Fatalf("ledger\n got %+v\nwant %+v", l, want)
	}
	if !recs[2].Redelivered || !recs[5].Redelivered || recs[1].Redelivered || recs[4].Redelivered {
		t.Fatalf("redelivered flags: %+v", recs)
	}
	if l.Attempted != l.ExactlyOnce+l.Duplicated+l.Lost+l.ExecutedAfterTimeout {
		t.Fatal("the classes do not add up to attempted")
	}
}

// TestTimeline counts calls by the step they ended in and the calls in
// flight at each step's end.
func TestTimeline(t *testing.T) {
	ms := time.Millisecond
	calls := []Call{
		{Start: 10 * ms, End: 20 * ms, Outcome: OK},
		{Start: 50 * ms, End: 250 * ms, Outcome: Failed},
		{Start: 150 * ms, End: 160 * ms, Outcome: OK},
		{Intended: 120 * ms, Start: 120 * ms, End: 180 * ms, Outcome: NotSent},
	}
	tl := Timeline(calls, 100*ms, 300*ms)
	if len(tl) != 3 {
		t.Fatalf("%d points, want 3", len(tl))
	}
	type p struct{ ok, failed, inflight int64 }
	want := []p{{1, 0, 1}, {1, 1, 1}, {0, 1, 0}}
	for i, w := range want {
		got := p{tl[i].OK, tl[i].Failed, tl[i].InFlight}
		if got != w {
			t.Errorf("step %d: %+v, want %+v", i, got, w)
		}
	}
	if tl[0].P50 != 10000 || tl[1].T != 0.1 {
		t.Errorf("p50 %v µs, t %v", tl[0].P50, tl[1].T)
	}
}

// TestRecovery: the first ok call after a restore, and the time until the
// p99 of every later window is back within 1.5× of the baseline.
func TestRecovery(t *testing.T) {
	ms := time.Millisecond
	var calls []Call
	for i := 0; i < 1000; i++ { // one call every 10 ms for 10 s
		at := time.Duration(i) * 10 * ms
		c := Call{ID: uint64(i), Intended: at, Start: at, End: at + ms, Outcome: OK}
		switch {
		case at >= 3000*ms && at < 4000*ms: // the outage
			c.Outcome, c.End = Failed, at+100*ms
		case at >= 4000*ms && at < 5000*ms: // slow after the restore
			c.End = at + 10*ms
		}
		calls = append(calls, c)
	}
	var ev results.FaultEvent
	Recovery(calls, 3000*ms, 4000*ms, 10000*ms, &ev)
	if ev.BaselineP99Us != 1000 {
		t.Fatalf("baseline %v µs, want 1000", ev.BaselineP99Us)
	}
	if ev.FirstOKMs == nil || *ev.FirstOKMs != 10 {
		t.Fatalf("first ok %v, want 10 ms", ev.FirstOKMs)
	}
	if ev.RecoveredMs == nil || *ev.RecoveredMs != 1000 {
		t.Fatalf("recovered %v, want 1000 ms", ev.RecoveredMs)
	}
	// never back: slow to the end
	for i := range calls {
		if calls[i].Intended >= 4000*ms {
			calls[i].End = calls[i].Start + 10*ms
		}
	}
	ev = results.FaultEvent{}
	Recovery(calls, 3000*ms, 4000*ms, 10000*ms, &ev)
	if ev.RecoveredMs != nil {
		t.Fatalf("recovered %v ms with every later call slow", *ev.RecoveredMs)
	}
}
