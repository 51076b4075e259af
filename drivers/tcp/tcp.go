// Package tcp is rpcbench's own direct RPC: length-prefixed frames carrying
// a request id, many calls multiplexed over a small pool of persistent
// connections, one reader per connection handing replies to the waiting
// callers. It is the floor every other driver is compared with.
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// MaxFrame bounds a frame's body (id + message): a larger length prefix is
// a protocol error, not an allocation.
const MaxFrame = wire.MaxResponseSize + 1<<20

const headerLen = 12

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

// Validate checks the variant and options.
func (*Driver) Validate(cfg drivers.Config) error {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return err
	}
	_, err := drivers.IntOption(spec, cfg, "connections", 1, 256)
	return err
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns
// the request id and the message bytes, which alias buf.
func ReadFrame(r *bufio.Reader, buf []byte) (id uint64, msg []byte, out []byte, err error) {
	id, size, err := readHeader(r)
	if err != nil {
		return 0, nil, buf, err
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, err
	}
	return id, buf, buf, nil
}

// readHeader reads a frame header (peeked from the buffer: no copy, no
// allocation) and returns the request id and the message size.
func readHeader(r *bufio.Reader) (id uint64, size int, err error) {
	hdr, err := r.Peek(headerLen)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 8 || n > MaxFrame {
		return 0, 0, fmt.Errorf("tcp: bad frame length %d", n)
	}
	id = binary.BigEndian.Uint64(hdr[4:])
	r.Discard(headerLen)
	return id, int(n) - 8, nil
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
}

func newFrameWriter(c net.Conn) *frameWriter {
	return &frameWriter{conn: c, pending: make([]byte, 0, 64<<10), spare: make([]byte, 0, 64<<10)}
}

// maxPending is how much a writer asked not to flush may leave pending.
const maxPending = 256 << 10

// write queues a frame. With flush false (the caller knows another frame
// follows at once) it only queues, unless a lot is pending already. A
// write error closes the connection, which fails every call waiting on it.
func (w *frameWriter) write(id uint64, msg []byte, flush bool) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.pending = binary.BigEndian.AppendUint32(w.pending, uint32(8+len(msg)))
	w.pending = binary.BigEndian.AppendUint64(w.pending, id)
	w.pending = append(w.pending, msg...)
	if w.flushing || (!flush && len(w.pending) < maxPending) {
		w.mu.Unlock()
		return nil
	}
	w.flushing = true
	for len(w.pending) > 0 && w.err == nil {
		buf := w.pending
		w.pending = w.spare[:0]
		w.mu.Unlock()
		_, err := w.conn.Write(buf)
		w.mu.Lock()
		w.spare = buf[:0]
		if err != nil {
			w.err = err
			w.conn.Close()
		}
	}
	w.flushing = false
	err := w.err
	w.mu.Unlock()
	return err
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

// Serve listens on cfg.Addr (default 127.0.0.1:0) and answers every frame
// with h.
func (d *Driver) Serve(ctx context.Context, cfg drivers.Config, h drivers.Handler) (drivers.Server, error) {
	if err := d.Validate(cfg); err != nil {
		return nil, err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
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
		id, msg, buf, err := ReadFrame(br, in)
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
				fw.write(id, s.h(req, nil), true)
			}()
			continue
		}
		out = s.h(msg, out[:0])
		// Flush only when no further request is already buffered: replies
		// to a burst of pipelined requests share one write.
		if fw.write(id, out, br.Buffered() < headerLen) != nil {
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

type client struct {
	conns []*conn
	next  atomic.Uint32
}

type conn struct {
	nc     net.Conn
	fw     *frameWriter
	smu    sync.Mutex
	slots  atomic.Pointer[[]*slot]
	dead   atomic.Pointer[error]
	readWG sync.WaitGroup
}

type slot struct {
	mu   sync.Mutex
	want uint64
	buf  []byte
	err  error
	done chan struct{}
}

// Dial opens the connection pool to addr.
func (d *Driver) Dial(ctx context.Context, cfg drivers.Config, addr string) (drivers.Client, error) {
	if err := d.Validate(cfg); err != nil {
		return nil, err
	}
	n, _ := drivers.IntOption(spec, cfg, "connections", 1, 256)
	cl := &client{}
	var dialer net.Dialer
	for i := 0; i < n; i++ {
		nc, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("tcp: dial %s: %w", addr, err)
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c := &conn{nc: nc, fw: newFrameWriter(nc)}
		empty := []*slot{}
		c.slots.Store(&empty)
		c.readWG.Add(1)
		go c.read()
		cl.conns = append(cl.conns, c)
	}
	return cl, nil
}

func (cl *client) NewCaller() (drivers.Caller, error) {
	c := cl.conns[int(cl.next.Add(1)-1)%len(cl.conns)]
	s := &slot{done: make(chan struct{}, 1)}
	c.smu.Lock()
	old := *c.slots.Load()
	idx := len(old)
	slots := append(append(make([]*slot, 0, idx+1), old...), s)
	c.slots.Store(&slots)
	c.smu.Unlock()
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &caller{c: c, s: s, idx: uint64(idx), timer: t}, nil
}

func (cl *client) Close() error {
	for _, c := range cl.conns {
		c.nc.Close()
		c.readWG.Wait()
	}
	return nil
}

// read dispatches replies to their callers until the connection fails.
func (c *conn) read() {
	defer c.readWG.Done()
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var err error
	for {
		var id uint64
		var size int
		if id, size, err = readHeader(br); err != nil {
			break
		}
		slots := *c.slots.Load()
		var s *slot
		if i := id >> 32; i < uint64(len(slots)) {
			s = slots[i]
		}
		if s == nil {
			if _, err = br.Discard(size); err != nil {
				break
			}
			continue
		}
		s.mu.Lock()
		if s.want != id {
			// a reply to a call that already timed out
			s.mu.Unlock()
			if _, err = br.Discard(size); err != nil {
				break
			}
			continue
		}
		if cap(s.buf) < size {
			s.buf = make([]byte, size)
		}
		s.buf = s.buf[:size]
		_, err = io.ReadFull(br, s.buf)
		if err != nil {
			s.mu.Unlock()
			break
		}
		s.want = 0
		s.mu.Unlock()
		s.done <- struct{}{}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = errors.New("tcp: connection closed")
	}
	err = fmt.Errorf("tcp: connection lost: %w", err)
	c.dead.Store(&err)
	for _, s := range *c.slots.Load() {
		s.mu.Lock()
		if s.want != 0 {
			s.want = 0
			s.err = err
			s.mu.Unlock()
			s.done <- struct{}{}
			continue
		}
		s.mu.Unlock()
	}
}

type caller struct {
	c     *conn
	s     *slot
	idx   uint64
	seq   uint32
	timer *time.Timer
}

func (cl *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	if e := cl.c.dead.Load(); e != nil {
		return nil, *e
	}
	cl.seq++
	if cl.seq == 0 {
		cl.seq = 1
	}
	id := cl.idx<<32 | uint64(cl.seq)
	s := cl.s
	s.mu.Lock()
	s.want, s.buf, s.err = id, buf, nil
	s.mu.Unlock()
	if err := cl.c.fw.write(id, req, true); err != nil {
		cl.withdraw()
		return nil, fmt.Errorf("tcp: write: %w", err)
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		wait = 1
	}
	cl.timer.Reset(wait)
	select {
	case <-s.done:
		cl.timer.Stop()
		return s.buf, s.err
	case <-cl.timer.C:
		if cl.withdraw() {
			return s.buf, s.err
		}
		return nil, fmt.Errorf("tcp: %w after %v", drivers.ErrTimeout, wait)
	case <-ctx.Done():
		cl.timer.Stop()
		if cl.withdraw() {
			return s.buf, s.err
		}
		return nil, ctx.Err()
	}
}

// withdraw stops waiting for the current call; it reports true when the
// reply arrived meanwhile (and consumes its signal).
func (cl *caller) withdraw() bool {
	s := cl.s
	s.mu.Lock()
	arrived := s.want == 0
	s.want = 0
	s.mu.Unlock()
	if arrived {
		<-s.done
	}
	return arrived
}
