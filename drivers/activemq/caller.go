package activemq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/rpcbench/rpcbench/drivers"
)

// replyQueue is each caller connection's temporary reply queue (its name
// is scoped to the connection).
const replyQueue = "/temp-queue/rep"

// notConnectedWait is how long a call started while disconnected waits for
// the redial before failing with ErrNotConnected.
const notConnectedWait = 250 * time.Millisecond

type client struct {
	ep         endpoint
	dest       string
	persistent bool
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	conns      []*callerConn
	next       atomic.Uint32
	orphans    atomic.Int64
	once       sync.Once
}

// Dial opens the caller connections to the responder at addr
// (Server.Addr: stomp://HOST:PORT#QUEUE), each with its reply queue.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	ep, queue, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	if queue == "" {
		return nil, fmt.Errorf("%s: address has no request queue: want stomp://HOST:PORT#QUEUE", Name)
	}
	c := &client{ep: ep, dest: "/queue/" + queue, persistent: t.o.variant == Persistent}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := 0; i < t.o.conns; i++ {
		cc := &callerConn{cl: c, up: make(chan struct{})}
		s, err := cc.connect(ctx)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.conns = append(c.conns, cc)
		c.wg.Add(1)
		go cc.run(s)
	}
	return c, nil
}

// Orphans counts the replies that came for calls no longer waiting
// (drivers.OrphanCounter).
func (c *client) Orphans() int64 { return c.orphans.Load() }

func (c *client) NewCaller() (drivers.Caller, error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	cc := c.conns[int(c.next.Add(1)-1)%len(c.conns)]
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &caller{cc: cc, ev: make(chan event, 4), timer: t}, nil
}

// Close closes the connections; calls in flight fail.
func (c *client) Close() error {
	c.once.Do(func() {
		c.cancel()
		for _, cc := range c.conns {
			cc.close()
		}
		c.wg.Wait()
	})
	return nil
}

// callerConn is one caller connection, redialled when lost.
type callerConn struct {
	cl  *client
	seq atomic.Uint64 // call ids, never reused across sessions

	mu   sync.Mutex
	sess *session
	up   chan struct{} // closed while connected; replaced when lost
}

// session is one live connection and the calls waiting on it.
type session struct {
	c       *stompConn
	pmu     sync.Mutex
	pending map[uint64]chan<- event
}

type eventKind uint8

const (
	evReply eventKind = iota
	evReceipt
	evError
)

// event is a reply, a receipt or a broker's ERROR for call id.
type event struct {
	id   uint64
	kind eventKind
	body []byte
	err  string
}

// connect dials, subscribes the reply queue and installs the session.
func (cc *callerConn) connect(ctx context.Context) (*session, error) {
	ep := cc.cl.ep
	c, err := dialStomp(ctx, ep.hostport, ep.login, ep.passcode)
	if err != nil {
		return nil, fmt.Errorf("%s: caller: connect to %s: %w", Name, ep.hostport, err)
	}
	s := &session{c: c, pending: map[uint64]chan<- event{}}
	c.onFrame = s.route(cc.cl)
	c.start(&cc.cl.wg)
	sub := frame.New(frame.SUBSCRIBE, frame.Id, "rep", frame.Destination, replyQueue, frame.Ack, "auto")
	if err := c.control(sub, 15*time.Second); err != nil {
		c.kill(err)
		return nil, fmt.Errorf("%s: caller: subscribe %s: %w", Name, replyQueue, err)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.cl.ctx.Err() != nil {
		c.kill(ErrClosed)
		return nil, ErrClosed
	}
	cc.sess = s
	close(cc.up)
	return s, nil
}

// run waits for the session to die, then redials until the client closes.
func (cc *callerConn) run(s *session) {
	defer cc.cl.wg.Done()
	for {
		select {
		case <-cc.cl.ctx.Done():
			s.c.close()
			return
		case <-s.c.dead:
		}
		cc.mu.Lock()
		cc.sess = nil
		cc.up = make(chan struct{})
		cc.mu.Unlock()
		for attempt := 0; ; attempt++ {
			if !backoff(cc.cl.ctx, attempt) {
				return
			}
			ns, err := cc.connect(cc.cl.ctx)
			if err == nil {
				s = ns
				break
			}
		}
	}
}

func (cc *callerConn) close() {
	cc.mu.Lock()
	s := cc.sess
	cc.mu.Unlock()
	if s != nil {
		s.c.kill(ErrClosed)
	}
}

// session returns the live session, or nil and a channel closed on the
// next (re)connection.
func (cc *callerConn) session() (*session, <-chan struct{}) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.sess != nil && cc.sess.c.alive() {
		return cc.sess, nil
	}
	if cc.sess != nil {
		// dead, not yet noticed by run: the next connection comes later
		return nil, make(chan struct{})
	}
	return nil, cc.up
}

// route hands each reply, receipt or ERROR to the call waiting for it.
func (s *session) route(cl *client) func(*frame.Frame) {
	return func(f *frame.Frame) {
		var ev event
		var raw string
		switch f.Command {
		case frame.MESSAGE:
			raw = f.Header.Get("correlation-id")
			ev = event{kind: evReply, body: f.Body, err: f.Header.Get(errorHeader)}
		case frame.RECEIPT:
			raw = f.Header.Get(frame.ReceiptId)
			ev = event{kind: evReceipt}
		case frame.ERROR:
			raw = f.Header.Get(frame.ReceiptId)
			ev = event{kind: evError, err: f.Header.Get(frame.Message)}
		default:
			return
		}
		id, err := strconv.ParseUint(raw, 36, 64)
		if err != nil {
			return
		}
		ev.id = id
		s.pmu.Lock()
		ch := s.pending[id]
		if ch != nil {
			select {
			case ch <- ev:
			default:
			}
		}
		s.pmu.Unlock()
		if ch == nil && ev.kind == evReply {
			cl.orphans.Add(1)
		}
	}
}

func (s *session) register(id uint64, ch chan<- event) {
	s.pmu.Lock()
	s.pending[id] = ch
	s.pmu.Unlock()
}

func (s *session) unregister(id uint64) {
	s.pmu.Lock()
	delete(s.pending, id)
	s.pmu.Unlock()
}

type caller struct {
	cc    *callerConn
	ev    chan event
	timer *time.Timer
}

func (k *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	if len(req) > MaxMessageSize {
		return buf, fmt.Errorf("%s: request of %d bytes exceeds the driver's limit of %d", Name, len(req), MaxMessageSize)
	}
	cl := k.cc.cl
	s, up := k.cc.session()
	if s == nil {
		k.timer.Reset(min(time.Until(deadline), notConnectedWait))
		select {
		case <-up:
			k.timer.Stop()
			s, _ = k.cc.session()
		case <-k.timer.C:
		case <-ctx.Done():
			k.timer.Stop()
			return buf, ctx.Err()
		case <-cl.ctx.Done():
			k.timer.Stop()
			return buf, ErrClosed
		}
		if s == nil {
			if !time.Now().Before(deadline) {
				return buf, fmt.Errorf("%w: not connected to the broker (%w)", drivers.ErrTimeout, drivers.ErrNotSent)
			}
			return buf, ErrNotConnected
		}
	}
	// events of earlier calls that came before they unregistered
	for len(k.ev) > 0 {
		<-k.ev
	}
	id := k.cc.seq.Add(1)
	cid := strconv.FormatUint(id, 36)
	s.register(id, k.ev)
	defer s.unregister(id)
	f := frame.New(frame.SEND, frame.Destination, cl.dest, "reply-to", replyQueue, "correlation-id", cid,
		frame.ContentLength, strconv.Itoa(len(req)))
	if cl.persistent {
		f.Header.Add("persistent", "true")
		f.Header.Add(frame.Receipt, cid)
	}
	f.Body = req // encoded before send returns
	if err := s.c.send(deadline, f); err != nil {
		var se *sendError
		if errors.As(err, &se) && !se.queued {
			return buf, fmt.Errorf("%w: %v (%w)", ErrConnectionLost, err, drivers.ErrNotSent)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return buf, fmt.Errorf("%w: the request was still being written at the deadline (connection closed)", drivers.ErrTimeout)
		}
		return buf, fmt.Errorf("%w: send: %v", ErrConnectionLost, err)
	}
	k.timer.Reset(time.Until(deadline))
	defer k.timer.Stop()
	got, acked := false, !cl.persistent
	// ackedErr marks a failure after the broker's receipt
	ackedErr := func(err error) error {
		if cl.persistent && acked {
			return fmt.Errorf("%w (%w)", err, drivers.ErrAcknowledged)
		}
		return err
	}
	for !got || !acked {
		select {
		case e := <-k.ev:
			if e.id != id {
				continue
			}
			switch e.kind {
			case evReply:
				if e.err != "" {
					return buf, fmt.Errorf("%s: responder: %s", Name, e.err)
				}
				buf = append(buf, e.body...)
				got = true
			case evReceipt:
				acked = true
			case evError:
				return buf, fmt.Errorf("%w: %s", ErrRefused, e.err)
			}
		case <-s.c.dead:
			// an event routed just before the connection died still counts
			for len(k.ev) > 0 {
				if e := <-k.ev; e.id == id && e.kind == evReply && e.err == "" && !got {
					buf = append(buf, e.body...)
					got = true
				} else if e.id == id && e.kind == evReceipt {
					acked = true
				}
			}
			if got && acked {
				return buf, nil
			}
			return buf, ackedErr(fmt.Errorf("%w: %v", ErrConnectionLost, s.c.deadErr))
		case <-k.timer.C:
			what := "reply"
			if got {
				what = "receipt"
			} else if !acked {
				what = "receipt or reply"
			}
			return buf, ackedErr(fmt.Errorf("%w: no %s from activemq", drivers.ErrTimeout, what))
		case <-ctx.Done():
			return buf, ctx.Err()
		case <-cl.ctx.Done():
			return buf, ErrClosed
		}
	}
	return buf, nil
}
