// Package chain lets a responder take part in a call chain (a scenario's
// chain key): a request whose chain_depth is above 1 is served by the
// responder's own work and then handed on to the next hop, the same
// service reached through the same driver, with the depth less one.
//
//   - sync: the hop waits for the rest of the chain and replies after it,
//     with chain_hops the hops that ran (the whole depth when every hop
//     did); a hop that fails makes the first reply an error reply, so the
//     caller counts the call failed.
//   - async-tail: the hop sends the rest of the chain as fire-and-forget
//     calls (the driver's request-reply call on a goroutine of its own,
//     its reply discarded) and replies at once, chain_hops 1.
//
// Every hop is a separate call through the transport. A hop's own work
// takes a responder slot as any request's does; a hop waiting for the rest
// of a synchronous chain holds whatever its driver runs requests on (a
// goroutine, a consumer's worker: the driver sizes those to the responder
// concurrency), as a thread-per-request server holds its thread. A chain
// of depth d at concurrency c needs c×d of them, which the scenario
// checks.
package chain

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// MaxTails bounds the asynchronous tail calls in flight at once; a tail
// beyond it is dropped and counted as failed.
const MaxTails = 4096

// DefaultTimeout bounds an onward call whose request carries no timeout.
const DefaultTimeout = 10 * time.Second

// Responder wraps a responder's handler for chains. Bind it to the
// service's own address once its server is up; until a chain request
// arrives it dials nothing.
type Responder struct {
	h drivers.Handler

	mu   sync.Mutex
	ctx  context.Context // the responder's; onward calls end with it
	tr   drivers.Transport
	addr string

	dial   sync.Once
	client drivers.Client
	err    error

	idle  chan drivers.Caller
	tails chan struct{}
	wg    sync.WaitGroup

	tailOK, tailFailed atomic.Int64
}

// New wraps h.
func New(h drivers.Handler) *Responder {
	return &Responder{h: h, idle: make(chan drivers.Caller, MaxTails), tails: make(chan struct{}, MaxTails)}
}

// Bind says how to reach the next hop: tr dialled at addr (the server's
// own Addr, or any responder of the same service), for as long as ctx.
func (r *Responder) Bind(ctx context.Context, tr drivers.Transport, addr string) {
	r.mu.Lock()
	r.ctx, r.tr, r.addr = ctx, tr, addr
	r.mu.Unlock()
}

// Handle is the handler: h for requests outside a chain (and for every
// hop's own work), and the onward call for the others.
func (r *Responder) Handle(req, buf []byte) []byte {
	var in wire.Fields
	if wire.Parse(req, &in) != nil || in.ChainDepth <= 1 {
		return r.h(req, buf)
	}
	start := time.Now()
	n := len(buf)
	reply := r.h(req, buf)
	var own wire.Fields
	if wire.Parse(reply[n:], &own) != nil || len(own.Error) != 0 {
		return reply
	}
	next := wire.Append(nil, &wire.Fields{
		ID: in.ID, Payload: in.Payload, Checksum: in.Checksum, ServiceTimeNs: in.ServiceTimeNs,
		ResponseSize: in.ResponseSize, SentUnixNano: time.Now().UnixNano(),
		ChainDepth: in.ChainDepth - 1, ChainAsync: in.ChainAsync, TimeoutNs: in.TimeoutNs,
	})
	timeout := DefaultTimeout
	if in.TimeoutNs > 0 {
		timeout = time.Duration(in.TimeoutNs)
	}
	if in.ChainAsync {
		r.tail(next, timeout)
		return wire.Append(reply[:n], &wire.Fields{ID: own.ID, Payload: own.Payload, Checksum: own.Checksum,
			HandlerNs: int64(max(time.Since(start), 1)), QueuedNs: own.QueuedNs, ChainHops: 1})
	}
	down, err := r.call(next, timeout)
	if err != nil {
		return wire.Append(reply[:n], &wire.Fields{ID: in.ID, HandlerNs: int64(max(time.Since(start), 1)),
			Error: fmt.Appendf(nil, "chain: hop %d of %d: %v", 2, in.ChainDepth, err)})
	}
	var d wire.Fields
	var after uint32 // the hops that ran after this one (the last hop's reply is a plain one)
	switch {
	case wire.Parse(down, &d) != nil:
		err = errors.New("reply is not a Call message")
	case len(d.Error) != 0:
		err = errors.New(string(d.Error))
	case d.ID != in.ID:
		err = fmt.Errorf("reply %d to call %d", d.ID, in.ID)
	default:
		if after = max(d.ChainHops, 1); after != in.ChainDepth-1 {
			err = fmt.Errorf("%d hops ran after this one, want %d", after, in.ChainDepth-1)
		}
	}
	if err != nil {
		return wire.Append(reply[:n], &wire.Fields{ID: in.ID, HandlerNs: int64(max(time.Since(start), 1)),
			Error: fmt.Appendf(nil, "chain: after hop 1 of %d: %v", in.ChainDepth, err)})
	}
	// the hop's time covers the rest of the chain, as its caller sees it
	return wire.Append(reply[:n], &wire.Fields{ID: own.ID, Payload: own.Payload, Checksum: own.Checksum,
		HandlerNs: int64(max(time.Since(start), 1)), QueuedNs: own.QueuedNs, ChainHops: 1 + after})
}

// tail sends req on a goroutine of its own, not waiting for it.
func (r *Responder) tail(req []byte, timeout time.Duration) {
	select {
	case r.tails <- struct{}{}:
	default:
		r.tailFailed.Add(1)
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() { <-r.tails }()
		if _, err := r.call(req, timeout); err != nil {
			r.tailFailed.Add(1)
			return
		}
		r.tailOK.Add(1)
	}()
}

// call makes one onward call with an idle caller (or a new one).
func (r *Responder) call(req []byte, timeout time.Duration) ([]byte, error) {
	client, ctx, err := r.connect()
	if err != nil {
		return nil, err
	}
	var c drivers.Caller
	select {
	case c = <-r.idle:
	default:
		if c, err = client.NewCaller(); err != nil {
			return nil, err
		}
	}
	reply, err := c.Call(ctx, time.Now().Add(timeout), req, nil)
	select {
	case r.idle <- c:
	default:
	}
	return reply, err
}

// connect dials the next hop the first time a chain needs it.
func (r *Responder) connect() (drivers.Client, context.Context, error) {
	r.mu.Lock()
	ctx, tr, addr := r.ctx, r.tr, r.addr
	r.mu.Unlock()
	if tr == nil {
		return nil, nil, errors.New("this responder cannot call a next hop (not bound to its service's address)")
	}
	r.dial.Do(func() {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r.client, r.err = tr.Dial(dctx, addr)
		if r.err != nil {
			r.err = fmt.Errorf("dial the next hop at %s: %w", addr, r.err)
		}
	})
	return r.client, ctx, r.err
}

// Tails are the asynchronous tail calls that completed and that failed
// (or were dropped) so far.
func (r *Responder) Tails() (ok, failed int64) { return r.tailOK.Load(), r.tailFailed.Load() }

// Close waits for the tails in flight (they end by their timeouts, or at
// once once the bound context has ended) and closes the onward client.
func (r *Responder) Close() error {
	r.wg.Wait()
	r.dial.Do(func() {}) // no dial after this; and r.client is visible
	if r.client != nil {
		return r.client.Close()
	}
	return nil
}

// Serve starts tr's responder at at with h wrapped for chains, bound to
// the server's own address: the next hop is the same service.
func Serve(ctx context.Context, tr drivers.Transport, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	return ServeVia(ctx, tr, at, h, "")
}

// ServeVia is Serve with the next hop dialled at next instead of the
// server's own address, when next is set: a delay proxy in front of the
// service (a direct driver's chain with a network delay: its onward hops
// cross the delay as its first does).
func ServeVia(ctx context.Context, tr drivers.Transport, at drivers.Place, h drivers.Handler, next string) (drivers.Server, error) {
	r := New(h)
	srv, err := tr.Serve(ctx, at, r.Handle)
	if err != nil {
		return nil, err
	}
	if next == "" {
		next = srv.Addr()
	}
	r.Bind(ctx, tr, next)
	return &server{Server: srv, r: r}, nil
}

type server struct {
	drivers.Server
	r *Responder
}

// Close stops the responder, then the chain's onward calls.
func (s *server) Close() error {
	return errors.Join(s.Server.Close(), s.r.Close())
}
