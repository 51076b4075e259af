// Package pending matches replies to the calls waiting for them: the
// rendezvous every multiplexing driver needs (tcp over a connection, nats
// over a reply inbox). Each caller owns a Slot; a call id carries the slot's
// index in its top 32 bits, so whoever receives a reply finds its caller
// without a map or a lock on the table.
package pending

import (
	"sync"
	"sync/atomic"
)

// Slot is one caller's pending call. Its buffers and channel are reused
// across calls, so waiting for a reply allocates nothing.
type Slot struct {
	index uint64 // in its table
	seq   uint32 // of the owner's latest call; only the owner touches it
	mu    sync.Mutex
	want  uint64 // id awaited; 0 when none
	buf   []byte
	err   error
	done  chan struct{}
}

// Table holds the slots of one connection or inbox.
type Table struct {
	mu    sync.Mutex
	slots atomic.Pointer[[]*Slot]
	// orphans counts replies that found no call waiting for them
	orphans atomic.Int64
}

// Orphan counts a reply no call was waiting for (the call had given up,
// or the id is unknown).
func (t *Table) Orphan() { t.orphans.Add(1) }

// Orphans is how many replies found no call waiting.
func (t *Table) Orphans() int64 { return t.orphans.Load() }

// Add makes a slot and returns it with its index.
func (t *Table) Add() (*Slot, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old []*Slot
	if p := t.slots.Load(); p != nil {
		old = *p
	}
	s := &Slot{index: uint64(len(old)), done: make(chan struct{}, 1)}
	slots := append(append(make([]*Slot, 0, len(old)+1), old...), s)
	t.slots.Store(&slots)
	return s, uint64(len(old))
}

// ID is the call id of a slot's seq-th call (seq never 0).
func ID(index uint64, seq uint32) uint64 { return index<<32 | uint64(seq) }

// Lookup returns the slot a call id belongs to, or nil.
func (t *Table) Lookup(id uint64) *Slot {
	p := t.slots.Load()
	if p == nil {
		return nil
	}
	if i := id >> 32; i < uint64(len(*p)) {
		return (*p)[i]
	}
	return nil
}

// FailAll ends every pending call with err.
func (t *Table) FailAll(err error) {
	p := t.slots.Load()
	if p == nil {
		return
	}
	for _, s := range *p {
		s.mu.Lock()
		if s.want == 0 {
			s.mu.Unlock()
			continue
		}
		s.want, s.err = 0, err
		s.mu.Unlock()
		s.done <- struct{}{}
	}
}

// Begin starts the owner's next call: it picks the call id (the slot's
// index and the next sequence number, never 0) and waits for the reply as
// Expect does. Only the slot's owner calls it.
func (s *Slot) Begin(buf []byte) uint64 {
	s.seq++
	if s.seq == 0 {
		s.seq = 1
	}
	id := ID(s.index, s.seq)
	s.Expect(id, buf)
	return id
}

// Expect starts waiting for the reply to call id, to be appended to buf.
func (s *Slot) Expect(id uint64, buf []byte) {
	s.mu.Lock()
	s.want, s.buf, s.err = id, buf, nil
	s.mu.Unlock()
}

// Deliver hands the reply to call id to its caller: fill gets the caller's
// buffer and returns it filled. It reports false, without calling fill,
// when the slot no longer waits for id (the call gave up): the reply is
// the receiver's to discard. An error from fill leaves the call pending.
func (s *Slot) Deliver(id uint64, fill func(buf []byte) ([]byte, error)) (bool, error) {
	s.mu.Lock()
	if s.want != id {
		s.mu.Unlock()
		return false, nil
	}
	b, err := fill(s.buf)
	if err != nil {
		s.mu.Unlock()
		return false, err
	}
	s.buf, s.want = b, 0
	s.mu.Unlock()
	s.done <- struct{}{}
	return true, nil
}

// Fail ends call id with err, if the slot still waits for it.
func (s *Slot) Fail(id uint64, err error) {
	s.mu.Lock()
	if s.want != id {
		s.mu.Unlock()
		return
	}
	s.want, s.err = 0, err
	s.mu.Unlock()
	s.done <- struct{}{}
}

// Arrived reports whether the current call has its reply (or failure).
func (s *Slot) Arrived() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.want == 0
}

// Done is signalled once per call, when its reply or failure is in.
func (s *Slot) Done() <-chan struct{} { return s.done }

// Result is the current call's reply or failure, valid after Done.
func (s *Slot) Result() ([]byte, error) { return s.buf, s.err }

// Withdraw stops waiting for the current call. It reports true when the
// reply (or a failure) arrived meanwhile, and consumes its signal: then
// Result holds it.
func (s *Slot) Withdraw() bool {
	s.mu.Lock()
	arrived := s.want == 0
	s.want = 0
	s.mu.Unlock()
	if arrived {
		<-s.done
	}
	return arrived
}
