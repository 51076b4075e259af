// Package rpcx is the rpcx driver: github.com/smallnest/rpcx in direct
// (registry-free) mode, a client.Client per connection dialled straight
// at the responder, carrying the Call's bytes with rpcx's SerializeNone
// (raw []byte arguments and replies, no codec).
//
// An rpcx client multiplexes calls from many goroutines over one
// connection (sequence numbers; each request is written from its own
// goroutine); the server handles each request in its own goroutine.
package rpcx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	rpcxclient "github.com/smallnest/rpcx/client"
	rpcxlog "github.com/smallnest/rpcx/log"
	"github.com/smallnest/rpcx/protocol"
	rpcxserver "github.com/smallnest/rpcx/server"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

func init() {
	// rpcx logs every closed connection and failed call at info level to
	// stderr; the core reports errors itself.
	rpcxlog.SetDummyLogger()
}

// Driver is the rpcx driver.
type Driver struct{}

// New returns the rpcx driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "rpcx",
	Description: "rpcx in direct mode (no registry), raw bytes (SerializeNone) over persistent TCP connections",
	Kind:        drivers.Direct,
	Variants: []drivers.Variant{
		{Name: "direct", Description: "client.Client dialled straight at the responder, calls multiplexed per connection"},
	},
	Options: []drivers.Option{
		{Name: "connections", Default: "1", Description: "caller connections, each an rpcx client shared by its callers (1-256)"},
	},
	Libraries: []string{"github.com/smallnest/rpcx"},
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Transport is the rpcx driver configured for one unit.
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

// MaxMessage is the largest Call carried: rpcx's own limit (server option
// and protocol.MaxMessageLength) is unset by default; this is the largest
// reply rpcbench asks for and its fields.
const MaxMessage = wire.MaxResponseSize + 1<<20

// Limits are MaxMessage both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessage, MaxReply: MaxMessage}
}

// Service and method the callers call.
const (
	Service = "Bench"
	Method  = "Call"
)

// Bench is the service: its one method answers with the handler.
type Bench struct{ h drivers.Handler }

// Call answers one call with the raw request bytes.
func (b *Bench) Call(_ context.Context, args []byte, reply *[]byte) error {
	*reply = b.h(args, nil)
	return nil
}

// ---- responder ----

type server struct {
	s    *rpcxserver.Server
	ln   net.Listener
	done chan struct{}
}

// Serve listens on at.Listen (default 127.0.0.1:0) and serves Bench.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	ln, err := drivers.Listen(ctx, at.Listen)
	if err != nil {
		return nil, fmt.Errorf("rpcx: listen: %w", err)
	}
	s := rpcxserver.NewServer()
	if err := s.RegisterName(Service, &Bench{h: h}, ""); err != nil {
		ln.Close()
		return nil, fmt.Errorf("rpcx: %w", err)
	}
	srv := &server{s: s, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(srv.done)
		s.ServeListener("tcp", ln)
	}()
	return srv, nil
}

func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) Close() error {
	err := s.s.Close()
	<-s.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// ---- caller ----

type client struct {
	addr string
	next atomic.Uint32

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

// conn is one rpcx client (one connection) and whether it is lost.
type conn struct {
	c *rpcxclient.Client
	// lost is set by rpcx (ClientConnectionClose) just before it marks
	// the client shut down or closing: a caller reads it with one atomic
	// load, where Client.IsShutdown and IsClosing take the client's
	// mutex, which its reader and every request's sender also take.
	lost atomic.Bool
}

// ClientConnectionClose is rpcx's connection-close plugin hook.
func (cn *conn) ClientConnectionClose(net.Conn) error {
	cn.lost.Store(true)
	return nil
}

// connect dials one rpcx client to addr.
func connect(addr string, o rpcxclient.Option) (*conn, error) {
	cn := &conn{c: rpcxclient.NewClient(o)}
	cn.c.Plugins = rpcxclient.NewPluginContainer()
	cn.c.Plugins.Add(cn)
	if err := cn.c.Connect("tcp", addr); err != nil {
		return nil, err
	}
	return cn, nil
}

// redial replaces connection i, found lost as old, with a new one (or
// returns the one another caller already put in its place).
func (cl *client) redial(i int, old *conn) (*conn, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return nil, errors.New("rpcx: client closed")
	}
	if cur := cl.conns[i]; cur != old {
		return cur, nil
	}
	if time.Since(cl.lastTry[i]) < redialInterval {
		return nil, errors.New("rpcx: connection lost")
	}
	cl.lastTry[i] = time.Now()
	o := Option()
	o.ConnectTimeout = time.Second
	c, err := connect(cl.addr, o)
	if err != nil {
		return nil, fmt.Errorf("rpcx: connection lost, redial: %w", err)
	}
	old.c.Close()
	cl.conns[i] = c
	return c, nil
}

// Option is the rpcx client option the driver uses: the defaults, raw
// bytes instead of MessagePack, and no retries (the core counts calls).
func Option() rpcxclient.Option {
	o := rpcxclient.DefaultOption
	o.SerializeType = protocol.SerializeNone
	o.Retries = 0
	o.ConnectTimeout = 10 * time.Second
	return o
}

// Dial opens the connections to addr.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	cl := &client{addr: addr, lastTry: make([]time.Time, t.connections)}
	for i := 0; i < t.connections; i++ {
		c, err := connect(addr, Option())
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("rpcx: dial %s: %w", addr, err)
		}
		cl.conns = append(cl.conns, c)
	}
	return cl, nil
}

func (cl *client) NewCaller() (drivers.Caller, error) {
	i := int(cl.next.Add(1)-1) % len(cl.lastTry)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	c := &caller{cl: cl, i: i, cn: cl.conns[i], done: make(chan *rpcxclient.Call, doneCap)}
	c.wd = drivers.NewWatchdog(func(g uint64) {
		select {
		case c.done <- &rpcxclient.Call{Args: g}:
		default:
		}
	})
	return c, nil
}

func (cl *client) Close() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.closed = true
	for _, c := range cl.conns {
		c.c.Close()
	}
	return nil
}

type caller struct {
	cl *client
	i  int // the client's connection this caller uses
	cn *conn
	// wd wakes the caller with a Call of no ServicePath on done, Args
	// the call's number, when the call passes its deadline or its
	// context is cancelled.
	wd *drivers.Watchdog
	// done receives rpcx's completion of the call and the watchdog's
	// wake-up: the caller waits on one channel, which costs a call less
	// than a select over three. It is reused while every call of this
	// caller has returned normally; after a call given up on or failed
	// (rpcx may still complete it, or complete it twice), the next call
	// gets a new one.
	done chan *rpcxclient.Call
}

// doneCap: a call's completion and one wake-up.
const doneCap = 2

// Call uses Client.Go and waits itself: Client.Call, given up on by its
// context, reads the sequence number its send goroutine writes without
// synchronisation (a data race in rpcx v1.9.1, client.go:329 against :542).
func (c *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	if c.cn.lost.Load() {
		// lost: dial it again (a restarted responder is there), or fail
		// at once with nothing sent
		nc, err := c.cl.redial(c.i, c.cn)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", drivers.ErrNotSent, err)
		}
		c.cn = nc
	}
	wait := max(time.Until(deadline), 1)
	select {
	case <-c.done: // a wake-up from a watchdog that fired as the last call returned
	default:
	}
	c.wd.Watch(ctx)
	g := c.wd.Begin(deadline)
	if ctx.Err() != nil {
		c.wd.End()
		return nil, ctx.Err()
	}
	var reply []byte
	// rpcx writes the request from a goroutine of its own, which may
	// still hold it after a call that timed out has returned: it gets a
	// copy, not the caller's buffer.
	call := c.cn.c.Go(ctx, Service, Method, append([]byte(nil), req...), &reply, c.done)
	woken := false
	for !woken {
		got := <-c.done
		if got == call {
			break
		}
		// a wake-up for an earlier call is passed over (reading this
		// call's Error before its own completion would race with rpcx's
		// write of it)
		woken = got.ServicePath == "" && got.Args.(uint64) == g
	}
	// after End the watchdog no longer touches done
	c.wd.End()
	if woken {
		c.done = make(chan *rpcxclient.Call, doneCap)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("rpcx: %w after %v", drivers.ErrTimeout, wait)
	}
	// A reply is never empty (it is an encoded wire.Call), so an empty one
	// is a failed call. Its Error is not read: on a lost connection rpcx
	// v1.9.1 completes a call twice, once from its reader's shutdown and
	// again from the send goroutine's failed write (client.go:600-611),
	// which writes Error after the first completion was delivered here
	// (a data race, TestResponderGone under -race).
	if len(reply) == 0 {
		c.done = make(chan *rpcxclient.Call, doneCap) // the second completion goes there
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errors.New("rpcx: the call failed: the connection was lost or the call refused (rpcx's error is not read: it may still be written)")
	}
	return append(buf, reply...), nil
}
