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
