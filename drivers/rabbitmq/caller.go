package rabbitmq

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rpcbench/rpcbench/drivers"
)

type client struct {
	url    string
	queue  string
	o      options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*callerConn
	next   atomic.Uint32
}

// Dial connects the caller side: o.connections connections (with
// o.channels shared channels each, or a channel per caller opened by
// NewCaller) to the responder at addr (Server.Addr: URL#queue).
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	o := t.o
	url, queue, ok := strings.Cut(addr, "#")
	if !ok || queue == "" {
		return nil, fmt.Errorf("%s: address %q has no request queue: want the responder's Server.Addr (amqp://...#queue)", Name, addr)
	}
	c := &client{url: url, queue: queue, o: o}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := 0; i < o.connections; i++ {
		cc := &callerConn{cl: c, idx: i, up: make(chan struct{})}
		for range o.channels {
			cc.slots = append(cc.slots, new(atomic.Pointer[session]))
		}
		conn, err := cc.connect(ctx)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.conns = append(c.conns, cc)
		c.wg.Add(1)
		go cc.run(conn)
	}
	return c, nil
}

// NewCaller returns a caller with a channel of its own (channels=per-caller,
// opened now when connected), or bound to the next shared channel,
// round-robin over connections first, then channels.
func (c *client) NewCaller() (drivers.Caller, error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	n := int(c.next.Add(1) - 1)
	cc := c.conns[n%len(c.conns)]
	var slot *atomic.Pointer[session]
	if c.o.channels > 0 {
		slot = cc.slots[(n/len(c.conns))%c.o.channels]
	} else {
		var err error
		if slot, err = cc.addSlot(); err != nil {
			return nil, err
		}
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	k := &caller{cc: cc, slot: slot, replies: make(chan reply, 1), timer: t, mode: c.o.v.deliveryMode(), confirm: c.o.v.confirms()}
	k.guardRan = make(chan struct{}, 1)
	k.guard = time.AfterFunc(time.Hour, k.publishTooLong)
	k.guard.Stop()
	return k, nil
}

// Close closes the connections; calls in flight fail.
func (c *client) Close() error {
	c.cancel()
	for _, cc := range c.conns {
		cc.close()
	}
	c.wg.Wait()
	return nil
}

// callerConn is one caller connection and its sessions (channels), redialled
// when lost.
type callerConn struct {
	cl  *client
	idx int
	// blocked is the broker's reason while it blocks this connection's
	// publishers (connection.blocked), nil otherwise.
	blocked atomic.Pointer[string]

	mu sync.Mutex
	// slots hold the sessions: fixed (shared channels) or one per caller.
	slots []*atomic.Pointer[session]
	conn  *amqp.Connection
	up    chan struct{} // closed while connected; replaced when lost
}

// connect dials and opens a session for every slot (slots added meanwhile
// included), then installs them.
func (cc *callerConn) connect(ctx context.Context) (*amqp.Connection, error) {
	conn, err := dial(ctx, cc.cl.url, "rpcbench-caller-"+strconv.Itoa(cc.idx))
	if err != nil {
		return nil, fmt.Errorf("%s: caller: dial: %w", Name, err)
	}
	defer guardSetup(ctx, conn)()
	var sessions []*session
	for {
		cc.mu.Lock()
		n := len(cc.slots)
		cc.mu.Unlock()
		for len(sessions) < n {
			s, err := openSession(conn, cc.cl.o.v)
			if err != nil {
				closeConn(conn)
				return nil, fmt.Errorf("%s: caller: %w", Name, err)
			}
			sessions = append(sessions, s)
		}
		cc.mu.Lock()
		if len(cc.slots) != len(sessions) {
			cc.mu.Unlock()
			continue
		}
		if cc.cl.ctx.Err() != nil {
			cc.mu.Unlock()
			closeConn(conn)
			return nil, ErrClosed
		}
		cc.conn = conn
		cc.watchBlocked(conn)
		for i, s := range sessions {
			s.conn = conn // before a caller can load the session
			cc.slots[i].Store(s)
			cc.startRouter(conn, s)
		}
		close(cc.up)
		cc.mu.Unlock()
		return conn, nil
	}
}

// addSlot adds a caller's own slot and, when connected, opens its session.
func (cc *callerConn) addSlot() (*atomic.Pointer[session], error) {
	slot := new(atomic.Pointer[session])
	cc.mu.Lock()
	cc.slots = append(cc.slots, slot)
	conn := cc.conn
	cc.mu.Unlock()
	if conn == nil {
		return slot, nil // the (re)dial opens it
	}
	guard := time.AfterFunc(setupTimeout, func() { closeConn(conn) })
	s, err := openSession(conn, cc.cl.o.v)
	guard.Stop()
	if err != nil {
		if conn.IsClosed() {
			return slot, nil // the redial opens it
		}
		return nil, fmt.Errorf("%s: caller: %w", Name, err)
	}
	cc.mu.Lock()
	if cc.conn == conn && slot.Load() == nil {
		s.conn = conn // before a caller can load the session
		slot.Store(s)
		cc.startRouter(conn, s)
		s = nil
	}
	cc.mu.Unlock()
	if s != nil {
		s.ch.Close()
	}
	return slot, nil
}

// startRouter runs s's reply router. A session that dies while its
// connection lives (a channel error) takes the connection down with it, so
// that everything is rebuilt the same way. cc.mu is held.
func (cc *callerConn) startRouter(conn *amqp.Connection, s *session) {
	cc.cl.wg.Add(1)
	go func() {
		defer cc.cl.wg.Done()
		s.route()
		closeConn(conn)
	}()
}

// watchBlocked follows connection.blocked / connection.unblocked.
func (cc *callerConn) watchBlocked(conn *amqp.Connection) {
	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	cc.cl.wg.Add(1)
	go func() {
		defer cc.cl.wg.Done()
		for b := range blocks {
			if b.Active {
				reason := b.Reason
				cc.blocked.Store(&reason)
			} else {
				cc.blocked.Store(nil)
			}
		}
		cc.blocked.Store(nil)
	}()
}

// run watches the connection and redials it until the client closes.
func (cc *callerConn) run(conn *amqp.Connection) {
	defer cc.cl.wg.Done()
	for {
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-cc.cl.ctx.Done():
			closeConn(conn)
			return
		case <-closed:
		}
		// The sessions die when their deliveries close (the routers fail
		// their calls); clear the slots so new calls wait for the redial.
		cc.mu.Lock()
		cc.conn = nil
		cc.up = make(chan struct{})
		for _, slot := range cc.slots {
			slot.Store(nil)
		}
		cc.mu.Unlock()
		for attempt := 0; ; attempt++ {
			if !backoff(cc.cl.ctx, attempt) {
				return
			}
			c, err := cc.connect(cc.cl.ctx)
			if err == nil {
				conn = c
				break
			}
		}
	}
}

func (cc *callerConn) close() {
	cc.mu.Lock()
	conn := cc.conn
	cc.conn = nil
	cc.mu.Unlock()
	if conn != nil {
		closeConn(conn)
	}
}

// session returns slot's live session, or nil and a channel closed on the
// next (re)connection.
func (cc *callerConn) session(slot *atomic.Pointer[session]) (*session, <-chan struct{}) {
	if s := slot.Load(); s != nil {
		select {
		case <-s.dead:
		default:
			return s, nil
		}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if s := slot.Load(); s != nil {
		select {
		case <-s.dead:
		default:
			return s, nil
		}
	}
	if cc.conn != nil {
		// Connected, but this session just died (or could not be opened):
		// the connection is being torn down; wait for the next one.
		return nil, make(chan struct{})
	}
	return nil, cc.up
}

// session is one caller channel: requests are published on it under pubMu
// and its reply deliveries are drained by route.
type session struct {
	ch         *amqp.Channel
	conn       *amqp.Connection
	replyTo    string
	deliveries <-chan amqp.Delivery
	confirm    bool
	pubMu      sync.Mutex
	seq        atomic.Uint64

	pendMu  sync.Mutex
	pending map[string]chan<- reply

	dead     chan struct{}
	deadOnce sync.Once
	deadErr  error
}

type reply struct {
	id   string
	body []byte
	err  string // the responder's error instead of a reply
}

func openSession(conn *amqp.Connection, v variant) (*session, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("channel: %w", err)
	}
	s := &session{ch: ch, confirm: v.confirms(), pending: map[string]chan<- reply{}, dead: make(chan struct{})}
	if s.confirm {
		if err := ch.Confirm(false); err != nil {
			return nil, fmt.Errorf("confirm mode: %w", err)
		}
	}
	switch v.pattern {
	case DirectReplyTo:
		s.replyTo = directReplyQueue
	default:
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return nil, fmt.Errorf("declare reply queue: %w", err)
		}
		s.replyTo = q.Name
	}
	// No-ack consumer on this channel: direct reply-to requires it before
	// the first publish, and reply queues need no acks either.
	s.deliveries, err = ch.Consume(s.replyTo, "", true, true, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", s.replyTo, err)
	}
	return s, nil
}

// route drains the reply deliveries until they close, handing each reply
// to the call waiting for its correlation id; then it fails the calls left.
func (s *session) route() {
	for d := range s.deliveries {
		s.pendMu.Lock()
		w, ok := s.pending[d.CorrelationId]
		if ok {
			delete(s.pending, d.CorrelationId)
		}
		s.pendMu.Unlock()
		if ok {
			r := reply{id: d.CorrelationId, body: d.Body}
			if e, isErr := d.Headers[errorHeader].(string); isErr {
				r.err = e
			}
			select {
			case w <- r:
			default: // a stale reply is still unread: the caller moved on
			}
		}
	}
	s.kill(ErrConnectionLost)
}

func (s *session) kill(err error) {
	s.deadOnce.Do(func() {
		s.deadErr = err
		close(s.dead)
		s.pendMu.Lock()
		clear(s.pending)
		s.pendMu.Unlock()
	})
}

func (s *session) register(id string, w chan<- reply) {
	s.pendMu.Lock()
	s.pending[id] = w
	s.pendMu.Unlock()
}

func (s *session) unregister(id string) {
	s.pendMu.Lock()
	delete(s.pending, id)
	s.pendMu.Unlock()
}

type caller struct {
	cc      *callerConn
	slot    *atomic.Pointer[session]
	replies chan reply
	timer   *time.Timer
	mode    uint8
	confirm bool
	// guard fires at the deadline of a publish still in progress
	// (publishing 1 -> 2) and closes its connection (publishingOn).
	guard        *time.Timer
	guardRan     chan struct{}
	publishing   atomic.Int32
	publishingOn atomic.Pointer[amqp.Connection]
}

// notConnectedWait is how long a call started while disconnected waits for
// the redial before failing with ErrNotConnected.
const notConnectedWait = 250 * time.Millisecond

// publishTooLong runs when a publish is still in progress at its call's
// deadline: the socket write is stuck (amqp091-go has no write deadline).
// Closing the connection with an immediate deadline fails the write.
func (c *caller) publishTooLong() {
	if c.publishing.CompareAndSwap(1, 2) {
		if conn := c.publishingOn.Load(); conn != nil {
			conn.CloseDeadline(time.Now())
		}
	}
	c.guardRan <- struct{}{}
}

func (c *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	if len(req) > MaxMessageSize {
		return nil, fmt.Errorf("%s: request of %d bytes exceeds the driver's limit %d (max_message_size)", Name, len(req), MaxMessageSize)
	}
	s, up := c.cc.session(c.slot)
	if s == nil {
		wait := time.Until(deadline)
		if wait > notConnectedWait {
			wait = notConnectedWait
		}
		c.timer.Reset(wait)
		select {
		case <-up:
			c.timer.Stop()
			s, _ = c.cc.session(c.slot)
		case <-c.timer.C:
		case <-ctx.Done():
			c.timer.Stop()
			return nil, ctx.Err()
		case <-c.cc.cl.ctx.Done():
			c.timer.Stop()
			return nil, ErrClosed
		}
		if s == nil {
			if !time.Now().Before(deadline) {
				return nil, fmt.Errorf("%w: not connected to the broker (%w)", drivers.ErrTimeout, drivers.ErrNotSent)
			}
			return nil, ErrNotConnected
		}
	}
	if reason := c.cc.blocked.Load(); reason != nil {
		return nil, fmt.Errorf("%w: %s", ErrBlocked, *reason)
	}
	// Drop a late reply to an earlier call of this caller.
	select {
	case <-c.replies:
	default:
	}
	id := strconv.FormatUint(s.seq.Add(1), 36)
	s.register(id, c.replies)
	msg := amqp.Publishing{CorrelationId: id, ReplyTo: s.replyTo, DeliveryMode: c.mode, Body: req}
	var dc *amqp.DeferredConfirmation
	var err error
	c.publishingOn.Store(s.conn)
	c.publishing.Store(1)
	c.guard.Reset(time.Until(deadline))
	s.pubMu.Lock()
	if c.confirm {
		dc, err = s.ch.PublishWithDeferredConfirmWithContext(ctx, "", c.cc.cl.queue, false, false, msg)
	} else {
		err = s.ch.PublishWithContext(ctx, "", c.cc.cl.queue, false, false, msg)
	}
	s.pubMu.Unlock()
	if !c.guard.Stop() {
		<-c.guardRan // it fired: let it finish before the next call
	}
	if !c.publishing.CompareAndSwap(1, 0) {
		c.publishing.Store(0)
		s.unregister(id)
		return nil, fmt.Errorf("%w: the publish was still blocked at the deadline (connection closed)", drivers.ErrTimeout)
	}
	if err != nil {
		s.unregister(id)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: publish: %v", ErrConnectionLost, err)
	}
	var confirmed <-chan struct{}
	if dc != nil {
		confirmed = dc.Done()
	}
	c.timer.Reset(time.Until(deadline))
	defer c.timer.Stop()
	var body []byte
	got, acked := false, false
	// ackedErr marks a failure after the broker confirmed the request
	ackedErr := func(err error) error {
		if acked {
			return fmt.Errorf("%w (%w)", err, drivers.ErrAcknowledged)
		}
		return err
	}
	for !got || confirmed != nil {
		select {
		case r := <-c.replies:
			if r.id == id {
				if r.err != "" {
					return nil, fmt.Errorf("%s: responder: %s", Name, r.err)
				}
				body, got = r.body, true
			}
		case <-confirmed:
			confirmed = nil
			if !dc.Acked() {
				s.unregister(id)
				select {
				case <-s.dead:
					return nil, fmt.Errorf("%w (awaiting confirm)", s.deadErr)
				default:
				}
				return nil, ErrNacked
			}
			acked = true
		case <-s.dead:
			// A reply routed just before the session died still counts.
			select {
			case r := <-c.replies:
				if r.id == id && r.err == "" && confirmed == nil {
					return append(buf, r.body...), nil
				}
			default:
			}
			return nil, ackedErr(s.deadErr)
		case <-c.timer.C:
			s.unregister(id)
			what := "reply"
			if got {
				what = "publisher confirm"
			}
			return nil, ackedErr(fmt.Errorf("%w: no %s from rabbitmq", drivers.ErrTimeout, what))
		case <-ctx.Done():
			s.unregister(id)
			return nil, ctx.Err()
		}
	}
	return append(buf, body...), nil
}
