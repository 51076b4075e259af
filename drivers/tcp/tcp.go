// Package tcp is rpcbench's own direct RPC: length-prefixed frames carrying
// a request id, many calls multiplexed over a small pool of persistent
// connections, one reader at a time per connection handing replies to the
// waiting callers. It is the floor every other driver is compared with.
//
// Frame: 4-byte big-endian length of what follows, 8-byte big-endian
// request id, then the message bytes.
package tcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/tcp/frame"
	"github.com/rpcbench/rpcbench/internal/pending"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// MaxFrame bounds a frame's body (id + message).
const MaxFrame = frame.Max

const headerLen = frame.HeaderLen

// Driver is the tcp driver.
type Driver struct{}

// New returns the tcp driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "tcp",
	Description: "rpcbench's own direct RPC: length-prefixed frames multiplexed over persistent TCP connections",
	Kind:        drivers.Direct,
	Variants:    []drivers.Variant{{Name: "mux", Description: "calls multiplexed over a pool of persistent connections"}},
	Options: []drivers.Option{
		{Name: "connections", Default: "2", Description: "caller connections in the pool (1-256)"},
	},
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Transport is the tcp driver configured for one unit.
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

// frameWriter combines frames from many goroutines into few writes. A
// writer appends its frame to the pending buffer; if no write is under way
// it becomes the flusher and writes everything pending, again and again
// until nothing is left, outside the lock. Frames added meanwhile ride
// along with the next write. One call in flight costs one write, as in a
// plain ping-pong; many in flight share their syscalls, with no writer
// goroutine and no hand-off.
type frameWriter struct {
	conn     net.Conn
	mu       sync.Mutex
	pending  []byte
	spare    []byte
	flushing bool
	err      error
	kick     chan struct{} // to the flusher goroutine (callers' side only)
	// latest is the latest deadline of the frames pending: a write still
	// blocked then is of no use to any of them.
	latest time.Time
}

func newFrameWriter(c net.Conn) *frameWriter {
	return &frameWriter{conn: c, pending: make([]byte, 0, 64<<10), spare: make([]byte, 0, 64<<10)}
}

// maxPending is how much a writer asked not to flush may leave pending.
const maxPending = 256 << 10

// maxQueued bounds what may wait behind a write under way: beyond it the
// peer is not keeping up (or not reading at all) and a call fails at once
// instead of queueing without bound.
const maxQueued = 2 * MaxFrame

// ErrQueueFull is returned for a call whose frame would grow the queue of
// unwritten frames past maxQueued.
var ErrQueueFull = errors.New("tcp: write queue full (the peer is not reading)")

// How write flushes.
const (
	flushNow   = iota // write at once (or ride with a write under way)
	flushLater        // another frame follows at once: only queue
	flushSoon         // many calls in flight: let the flusher goroutine write
)

// write queues a frame and flushes as mode says. A write error, or a write
// still blocked at the deadline of the call flushing it (the peer stopped
// reading), closes the connection, which fails every call waiting on it:
// a half-written frame cannot be taken back.
func (w *frameWriter) write(id uint64, msg []byte, mode int, deadline time.Time) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if w.flushing && len(w.pending)+len(msg) > maxQueued {
		w.mu.Unlock()
		return ErrQueueFull
	}
	if deadline.After(w.latest) {
		w.latest = deadline
	}
	w.pending = binary.BigEndian.AppendUint32(w.pending, uint32(8+len(msg)))
	w.pending = binary.BigEndian.AppendUint64(w.pending, id)
	w.pending = append(w.pending, msg...)
	if w.flushing || (mode != flushNow && len(w.pending) < maxPending) {
		w.mu.Unlock()
		if mode == flushSoon {
			w.kickFlusher()
		}
		return nil
	}
	err := w.flushLocked(deadline)
	w.mu.Unlock()
	return err
}

// kickFlusher hands the flush to the connection's flusher goroutine, which
// first yields so the other callers running now can add their frames:
// with many calls in flight they share one write.
func (w *frameWriter) kickFlusher() {
	select {
	case w.kick <- struct{}{}:
	default: // a flush is already due
	}
}

// flusher writes what callers queued with kickFlusher until done closes.
func (w *frameWriter) flusher(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-w.kick:
		}
		runtime.Gosched()
		w.mu.Lock()
		if !w.flushing && w.err == nil {
			w.flushLocked(w.latest)
		}
		w.mu.Unlock()
	}
}

// flushLocked writes everything pending, outside the lock, until nothing
// is left, giving up at deadline (zero: none). It is called with w.mu held
// and returns with it held.
func (w *frameWriter) flushLocked(deadline time.Time) error {
	w.flushing = true
	for len(w.pending) > 0 && w.err == nil {
		buf := w.pending
		w.pending = w.spare[:0]
		w.mu.Unlock()
		w.conn.SetWriteDeadline(deadline)
		_, err := w.conn.Write(buf)
		w.mu.Lock()
		w.spare = buf[:0]
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("tcp: a write was still blocked at the deadline (the peer stopped reading): %w", err)
			}
			w.err = err
			w.conn.Close()
		}
	}
	w.flushing = false
	return w.err
}

// Limits: a frame's body holds an 8-byte id and the message.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxFrame - 8, MaxReply: MaxFrame - 8}
}

// ---- responder ----

type server struct {
	ln    net.Listener
	h     drivers.Handler
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  chan struct{}
}

// Serve listens on at.Listen (default 127.0.0.1:0) and answers every frame
// with h.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	ln, err := drivers.Listen(ctx, at.Listen)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen: %w", err)
	}
	s := &server{ln: ln, h: h, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
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
		select {
		case <-s.done:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	fw := newFrameWriter(c)
	var in, out []byte
	var slow sync.WaitGroup
	defer slow.Wait()
	for {
		id, msg, buf, err := frame.Read(br, in)
		in = buf
		if err != nil {
			return
		}
		if wire.PeekServiceTime(msg) > 0 {
			// A request that asks for service time gets its own goroutine so
			// it does not hold up the others on this connection.
			req := append([]byte(nil), msg...)
			slow.Add(1)
			go func() {
				defer slow.Done()
				fw.write(id, s.h(req, nil), flushNow, time.Time{})
			}()
			continue
		}
		out = s.h(msg, out[:0])
		// Flush only when no further request is already buffered: replies
		// to a burst of pipelined requests share one write.
		mode := flushNow
		if br.Buffered() >= headerLen {
			mode = flushLater // replies to a burst of requests share one write
		}
		if fw.write(id, out, mode, time.Time{}) != nil {
			return
		}
	}
}

func (s *server) Close() error {
	s.mu.Lock()
	close(s.done)
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// ---- caller ----
//
// There is no reader goroutine. The callers of a connection share one read
// role, a token: the caller holding it reads frames for everyone,
// handing each reply to its caller, until its own reply arrives; then it
// passes the token on to a waiting caller. With one call in flight the
// caller reads its own reply straight off the socket, exactly like a plain
// ping-pong (no wake-up of a second goroutine); with many, one reader at a
// time dispatches replies to the waiting callers.

type client struct {
	addr string
	next atomic.Uint32

	mu     sync.Mutex // guards conns and lastTry
	conns  []*conn
	closed bool
	// lastTry is when each connection was last redialled: a dead one is
	// redialled at most once per redialInterval.
	lastTry []time.Time
	// lostOrphans: the orphan replies of connections replaced since
	lostOrphans int64
}

// redialInterval: a lost connection is dialled again on the next call, at
// most this often (calls in between fail at once, not sent).
const redialInterval = 100 * time.Millisecond

func newConn(nc net.Conn) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), fw: newFrameWriter(nc), token: make(chan struct{}, 1), done: make(chan struct{})}
	c.token <- struct{}{}
	c.fw.kick = make(chan struct{}, 1)
	go c.fw.flusher(c.done)
	return c
}

// redial replaces connection i, found dead as old, with a new one (or
// returns the one another caller already put in its place).
func (cl *client) redial(ctx context.Context, i int, old *conn, deadline time.Time) (*conn, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return nil, net.ErrClosed
	}
	if cur := cl.conns[i]; cur != old {
		return cur, nil
	}
	if time.Since(cl.lastTry[i]) < redialInterval {
		return nil, *old.dead.Load()
	}
	cl.lastTry[i] = time.Now()
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", cl.addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: connection lost, redial: %w", err)
	}
	c := newConn(nc)
	close(old.done)
	cl.lostOrphans += old.calls.Orphans()
	cl.conns[i] = c
	return c, nil
}

type conn struct {
	nc    net.Conn
	br    *bufio.Reader // read only by the holder of token
	fw    *frameWriter
	token chan struct{} // the read role; holds one value when free
	// outstanding counts calls in flight: alone, a caller writes at once;
	// among many, it leaves the write to the flusher goroutine.
	outstanding atomic.Int32
	done        chan struct{}
	calls       pending.Table
	dead        atomic.Pointer[error]
}

// Dial opens the connection pool to addr.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	n := t.connections
	cl := &client{addr: addr, lastTry: make([]time.Time, n)}
	var dialer net.Dialer
	for i := 0; i < n; i++ {
		nc, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("tcp: dial %s: %w", addr, err)
		}
		cl.conns = append(cl.conns, newConn(nc))
	}
	return cl, nil
}

func (cl *client) NewCaller() (drivers.Caller, error) {
	i := int(cl.next.Add(1)-1) % cap(cl.lastTry)
	cl.mu.Lock()
	c := cl.conns[i]
	cl.mu.Unlock()
	s, _ := c.calls.Add()
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &caller{cl: cl, i: i, c: c, s: s, timer: t}, nil
}

// Orphans counts the replies that arrived for calls no longer waiting
// (drivers.OrphanCounter), on every connection the client has had.
func (cl *client) Orphans() int64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	n := cl.lostOrphans
	for _, c := range cl.conns {
		n += c.calls.Orphans()
	}
	return n
}

func (cl *client) Close() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.closed = true
	for _, c := range cl.conns {
		c.nc.Close()
		close(c.done)
	}
	return nil
}

// lead reads frames for every caller until s's reply has arrived (true),
// or until the deadline passes, ctx ends or the connection fails (false).
func (c *conn) lead(ctx context.Context, s *pending.Slot, deadline time.Time) bool {
	c.nc.SetReadDeadline(deadline)
	for {
		if ctx.Err() != nil {
			return false
		}
		if s.Arrived() {
			return true
		}
		id, size, err := frame.ReadHeader(c.br)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && c.dead.Load() == nil {
				if ctx.Err() != nil || !time.Now().Before(deadline) {
					return false
				}
				c.nc.SetReadDeadline(deadline) // woken for another caller's ctx
				continue
			}
			c.fail(err)
			return false
		}
		// The body follows its header at once. A peer that stops in the
		// middle of a frame past this caller's deadline has lost the
		// framing: the connection fails (every call on it with it) rather
		// than leave this call blocked.
		if err := c.deliver(id, size); err != nil {
			c.fail(err)
			return false
		}
	}
}

// deliver reads one reply body into its caller's buffer and signals it;
// replies to calls that gave up are discarded.
func (c *conn) deliver(id uint64, size int) error {
	if s := c.calls.Lookup(id); s != nil {
		ok, err := s.Deliver(id, func(buf []byte) ([]byte, error) {
			if cap(buf) < size {
				buf = make([]byte, size)
			}
			buf = buf[:size]
			_, err := io.ReadFull(c.br, buf)
			return buf, err
		})
		if ok || err != nil {
			return err
		}
	}
	// no such caller, or a reply to a call that already timed out
	c.calls.Orphan()
	_, err := c.br.Discard(size)
	return err
}

// fail marks the connection dead and fails every call waiting on it.
func (c *conn) fail(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("tcp: connection closed")
	}
	err = fmt.Errorf("tcp: connection lost: %w", err)
	c.dead.CompareAndSwap(nil, &err)
	c.nc.Close()
	c.calls.FailAll(err)
}

type caller struct {
	cl      *client
	i       int // the client's connection this caller uses
	c       *conn
	s       *pending.Slot
	timer   *time.Timer
	ctx     context.Context
	stopCtx func() bool
}

// watch makes the end of ctx interrupt a caller blocked reading for the
// others: registered once per run context, not per call.
func (cl *caller) watch(ctx context.Context) {
	if ctx == cl.ctx {
		return
	}
	if cl.stopCtx != nil {
		cl.stopCtx()
	}
	cl.ctx = ctx
	nc := cl.c.nc
	cl.stopCtx = context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Now()) })
}

func (cl *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	c := cl.c
	if e := c.dead.Load(); e != nil {
		// the connection was lost: dial it again (a restarted responder
		// is there), or fail at once with nothing sent
		nc, err := cl.cl.redial(ctx, cl.i, c, deadline)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", drivers.ErrNotSent, err)
		}
		if cl.stopCtx != nil {
			cl.stopCtx()
			cl.stopCtx = nil
		}
		cl.ctx = nil
		c = nc
		cl.c = c
		cl.s, _ = c.calls.Add()
	}
	cl.watch(ctx)
	s := cl.s
	id := s.Begin(buf)
	mode := flushNow
	if c.outstanding.Add(1) > 1 {
		mode = flushSoon
	}
	defer c.outstanding.Add(-1)
	if err := c.fw.write(id, req, mode, deadline); err != nil {
		if err != ErrQueueFull {
			c.fail(err)
		}
		if s.Withdraw() {
			return s.Result()
		}
		return nil, fmt.Errorf("tcp: write: %w", err)
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		wait = 1
	}
	cl.timer.Reset(wait)
	for {
		select {
		case <-s.Done():
			cl.timer.Stop()
			return s.Result()
		case <-c.token:
			got := c.lead(ctx, s, deadline)
			c.token <- struct{}{}
			if got {
				cl.timer.Stop()
				<-s.Done()
				return s.Result()
			}
			if ctx.Err() == nil && time.Now().Before(deadline) && c.dead.Load() == nil {
				continue
			}
			// the connection failed (our signal is waiting), the deadline
			// passed or the run ended: the cases below sort it out
		case <-cl.timer.C:
			if s.Withdraw() {
				return s.Result()
			}
			return nil, fmt.Errorf("tcp: %w after %v", drivers.ErrTimeout, wait)
		case <-ctx.Done():
			cl.timer.Stop()
			if s.Withdraw() {
				return s.Result()
			}
			return nil, ctx.Err()
		}
	}
}
