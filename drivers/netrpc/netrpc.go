// Package netrpc is the standard library's net/rpc: a Bench.Call method
// taking and returning the Call as a Go struct, encoded with gob (net/rpc's
// own codec) or JSON-RPC 1.0 (net/rpc/jsonrpc) over the same kind of
// persistent TCP connection, so the codec is the only difference.
//
// An rpc.Client multiplexes calls from many goroutines over one
// connection (sequence numbers); the server runs each request in its own
// goroutine.
package netrpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// Driver is the netrpc driver.
type Driver struct{}

// New returns the netrpc driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "netrpc",
	Description: "the standard library's net/rpc over persistent TCP connections, gob or JSON-RPC codec",
	Kind:        drivers.Direct,
	Variants: []drivers.Variant{
		{Name: "gob", Description: "net/rpc's default codec (encoding/gob)"},
		{Name: "jsonrpc", Description: "net/rpc/jsonrpc: the call as JSON-RPC 1.0 at both ends (encoding/json, payload base64)"},
	},
	Options: []drivers.Option{
		{Name: "connections", Default: "1", Description: "caller connections, each an rpc.Client shared by its callers (1-256)"},
	},
	// The standard library's version is the run's go_version.
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Transport is the netrpc driver configured for one unit.
type Transport struct {
	drivers.DirectBase
	connections int
}

// Configure checks the variant and options.
func (*Driver) Configure(cfg drivers.Config) (drivers.Transport, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return nil, err
	}
	n, err := drivers.IntOption(spec, cfg, "connections", 1, 256)
	if err != nil {
		return nil, err
	}
	return &Transport{DirectBase: drivers.DirectBase{Cfg: drivers.Effective(spec, cfg)}, connections: n}, nil
}

// MaxMessage is the largest Call carried. Neither codec has a limit of its
// own; this is the largest reply rpcbench asks for and its fields.
const MaxMessage = wire.MaxResponseSize + 1<<20

// Limits are MaxMessage both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessage, MaxReply: MaxMessage}
}

// AsyncAbove is the request size beyond which Client.Go runs on a
// goroutine of its own while the caller waits for the reply or its
// deadline.
const AsyncAbove = 64 << 10

// Method is the method callers call.
const Method = "Bench.Call"

// Bench is the service: its one method answers with the handler.
type Bench struct{ h drivers.Handler }

// Call answers one call.
func (b *Bench) Call(args *Call, reply *Call) error {
	out := b.h(args.AppendWire(nil), nil)
	return reply.FromWire(out)
}

// ---- responder ----

type server struct {
	ln    net.Listener
	rs    *rpc.Server
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// Serve listens on at.Listen (default 127.0.0.1:0) and serves Bench on
// every connection with the codec the client speaks (either variant).
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	ln, err := drivers.Listen(ctx, at.Listen)
	if err != nil {
		return nil, fmt.Errorf("netrpc: listen: %w", err)
	}
	rs := rpc.NewServer()
	if err := rs.RegisterName("Bench", &Bench{h: h}); err != nil {
		ln.Close()
		return nil, fmt.Errorf("netrpc: %w", err)
	}
	s := &server{ln: ln, rs: rs, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			// ServeConn and ServeCodec return once the connection ends and
			// every call read from it has been answered.
			// The codec is the client's: JSON-RPC's first bytes are an
			// object ({"), gob's a message length and a negative type id.
			// So one responder serves both variants (as with --target).
			bc := &bufferedConn{Conn: c, br: bufio.NewReader(c)}
			if first, _ := bc.br.Peek(2); len(first) == 2 && first[0] == '{' && (first[1] == '"' || first[1] == ' ' || first[1] == '\n') {
				s.rs.ServeCodec(jsonrpc.NewServerCodec(bc))
			} else {
				s.rs.ServeConn(bc)
			}
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// bufferedConn reads through the reader that sniffed the codec.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

func (s *server) Close() error {
	s.mu.Lock()
	s.done = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// ---- caller ----

type conn struct {
	nc   net.Conn
	rc   *rpc.Client
	dead atomic.Bool
}

type client struct {
	addr    string
	jsonrpc bool
	next    atomic.Uint32

	mu     sync.Mutex // guards conns, lastTry, closed
	conns  []*conn
	closed bool
	// lastTry is when each connection was last redialled: a lost one is
	// redialled on a call at most once per redialInterval.
	lastTry []time.Time
}

// redialInterval: calls on a lost connection in between fail at once,
// not sent.
const redialInterval = 100 * time.Millisecond

func (cl *client) newConn(nc net.Conn) *conn {
	c := &conn{nc: nc}
	if cl.jsonrpc {
		c.rc = jsonrpc.NewClient(nc)
	} else {
		c.rc = rpc.NewClient(nc)
	}
	return c
}

// Dial opens the connections to addr.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	cl := &client{addr: addr, jsonrpc: t.Cfg.Variant == "jsonrpc", lastTry: make([]time.Time, t.connections)}
	var d net.Dialer
	for i := 0; i < t.connections; i++ {
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("netrpc: dial %s: %w", addr, err)
		}
		cl.conns = append(cl.conns, cl.newConn(nc))
	}
	return cl, nil
}

// redial replaces connection i, found lost as old, with a new one (or
// returns the one another caller already put in its place).
func (cl *client) redial(ctx context.Context, i int, old *conn, deadline time.Time) (*conn, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return nil, errors.New("netrpc: client closed")
	}
	if cur := cl.conns[i]; cur != old {
		return cur, nil
	}
	if time.Since(cl.lastTry[i]) < redialInterval {
		return nil, errors.New("netrpc: connection lost")
	}
	cl.lastTry[i] = time.Now()
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", cl.addr)
	if err != nil {
		return nil, fmt.Errorf("netrpc: connection lost, redial: %w", err)
	}
	old.rc.Close()
	c := cl.newConn(nc)
	cl.conns[i] = c
	return c, nil
}

func (cl *client) NewCaller() (drivers.Caller, error) {
	i := int(cl.next.Add(1)-1) % len(cl.lastTry)
	cl.mu.Lock()
	cn := cl.conns[i]
	cl.mu.Unlock()
	c := &caller{cl: cl, i: i, done: make(chan *rpc.Call, doneCap), reply: new(Call)}
	c.conn.Store(cn)
	c.wd = drivers.NewWatchdog(c.expire)
	return c, nil
}

func (cl *client) Close() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.closed = true
	for _, c := range cl.conns {
		c.rc.Close()
	}
	return nil
}

type caller struct {
	cl   *client
	i    int // the client's connection this caller uses
	conn atomic.Pointer[conn]
	// wd expires call gen at its deadline or when its context is
	// cancelled: it closes the connection if the caller is still inside
	// Client.Go (net/rpc writes the request there, and a peer that
	// stopped reading blocks the write), and wakes the waiting caller
	// with a wake-up on done. fired is the last call it expired.
	wd      *drivers.Watchdog
	fired   atomic.Uint64
	sending atomic.Bool
	args    Call
	// done receives net/rpc's completion of the call and the watchdog's
	// wake-up (a Call with no ServiceMethod, Args the call's number): the
	// caller waits on one channel, which costs a call less than a select
	// over three. It holds both. done and reply are reused while every
	// call of this caller has returned its reply; a call given up on may
	// still be answered into them, so the next call gets new ones.
	done  chan *rpc.Call
	reply *Call
}

// doneCap: a call's completion and one wake-up.
const doneCap = 2

func (cl *caller) expire(g uint64) {
	cl.fired.Store(g)
	if c := cl.conn.Load(); cl.sending.Load() {
		c.dead.Store(true)
		c.nc.Close()
	}
	select {
	case cl.done <- &rpc.Call{Args: g}:
	default:
	}
}

func (cl *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	c := cl.conn.Load()
	if c.dead.Load() {
		// lost: dial it again (a restarted responder is there), or fail
		// at once with nothing sent
		nc, err := cl.cl.redial(ctx, cl.i, c, deadline)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", drivers.ErrNotSent, err)
		}
		c = nc
		cl.conn.Store(c)
	}
	if err := cl.args.FromWire(req); err != nil {
		return nil, fmt.Errorf("netrpc: request: %w", err)
	}
	*cl.reply = Call{}
	select {
	case <-cl.done: // a wake-up from a watchdog that fired as the last call returned
	default:
	}
	wait := max(time.Until(deadline), 1)
	done, reply := cl.done, cl.reply
	var inGo *atomic.Bool
	cl.wd.Watch(ctx)
	g := cl.wd.Begin(deadline)
	defer cl.wd.End()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if len(req) > AsyncAbove {
		// Encoding a large request takes long enough (1 MiB as JSON:
		// hundreds of milliseconds under the race detector) to hold
		// Client.Go past the deadline: it runs on a goroutine of its
		// own, with its own copy of the payload.
		args := cl.args
		args.Payload = bytes.Clone(args.Payload)
		inGo = new(atomic.Bool)
		inGo.Store(true)
		go func() {
			c.rc.Go(Method, &args, reply, done)
			inGo.Store(false)
		}()
	} else {
		cl.sending.Store(true)
		c.rc.Go(Method, &cl.args, reply, done)
		cl.sending.Store(false)
	}
	var call *rpc.Call
	for {
		call = <-done
		if call.ServiceMethod != "" {
			// net/rpc's completion
			if cl.fired.Load() == g && c.dead.Load() && call.Error != nil {
				return nil, fmt.Errorf("netrpc: %w after %v: the request could not be written in time (the peer stopped reading)", drivers.ErrTimeout, wait)
			}
			break
		}
		if call.Args.(uint64) != g {
			continue // a wake-up for an earlier call
		}
		if inGo != nil && inGo.Load() {
			// still encoding or writing: half a request may follow
			c.dead.Store(true)
			c.nc.Close()
		}
		cl.abandon()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("netrpc: %w after %v", drivers.ErrTimeout, wait)
	}
	if err := call.Error; err != nil {
		var se rpc.ServerError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("netrpc: responder: %w", err)
		}
		// A write that failed may have left half a request on the
		// connection: it is of no further use.
		c.dead.Store(true)
		c.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("netrpc: connection lost: %w", err)
	}
	return reply.AppendWire(buf), nil
}

func (cl *caller) abandon() {
	cl.done = make(chan *rpc.Call, doneCap)
	cl.reply = new(Call)
}
