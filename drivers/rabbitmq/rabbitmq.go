// Package rabbitmq is the rabbitmq driver: RPC over RabbitMQ with
// github.com/rabbitmq/amqp091-go.
//
// Variants are reply pattern × durability, named "PATTERN/DURABILITY".
// Reply patterns:
//
//   - reply-queue: every caller channel declares one exclusive, server-named
//     reply queue and consumes it; replies are routed to the waiting call by
//     correlation id (the tutorial's pattern, but declared once per channel,
//     not once per call). With channels=1 that is one reply queue per
//     connection.
//   - direct-reply-to: replies go to amq.rabbitmq.reply-to, consumed in
//     no-ack mode on the same channel that publishes the requests.
//
// Durabilities:
//
//   - transient: non-durable request queue, non-persistent messages.
//   - persistent: durable (classic) request queue, persistent requests, and
//     a publisher confirm awaited for every request (the call ends when both
//     the confirm and the reply arrived).
//   - quorum: quorum request queue (always durable: persistent requests and
//     publisher confirms as in persistent). Reply queues stay classic (or
//     direct reply-to): quorum queues cannot be exclusive.
//
// Options: connections and channels (per connection) on the caller side;
// the callers of a Client are spread over the channels round-robin and share
// them: one lock serialises publishing on a channel and one goroutine per
// channel drains its reply deliveries and routes them. The responder
// consumes with manual acks on `parallelism` channels, each with its own
// prefetch (`prefetch`) and one goroutine that owns the channel (it
// publishes replies and acks); requests that ask for service time run in
// their own goroutine and hand their reply back to that owner.
//
// Serve declares a request queue with a unique name (rpcbench.req.<random>)
// and Server.Addr returns the broker URL with the queue name as fragment
// ("amqp://...#rpcbench.req.x"), which Dial splits again. Replies are
// published with mandatory=false.
//
// Connection loss: the deliveries of every channel are drained until they
// close; then calls in flight fail with ErrConnectionLost, new calls wait
// briefly and fail with ErrNotConnected, and both sides redial in the
// background (backoff up to 2 s) until closed. Timeouts wrap
// drivers.ErrTimeout.
package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// Name is the driver's name.
const Name = "rabbitmq"

// Errors calls fail with besides timeouts (all transport errors).
var (
	// ErrConnectionLost: the connection or channel carrying the call closed
	// before its reply arrived.
	ErrConnectionLost = errors.New("rabbitmq: connection lost")
	// ErrNotConnected: no connection to the broker when the call started.
	ErrNotConnected = errors.New("rabbitmq: not connected to the broker")
	// ErrNacked: the broker refused the request (publisher confirm nack).
	ErrNacked = errors.New("rabbitmq: request nacked by the broker")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("rabbitmq: client closed")
)

// Reply patterns and durabilities.
const (
	ReplyQueue    = "reply-queue"
	DirectReplyTo = "direct-reply-to"

	Transient  = "transient"
	Persistent = "persistent"
	Quorum     = "quorum"
)

const directReplyQueue = "amq.rabbitmq.reply-to"

// variant is a parsed variant name.
type variant struct {
	pattern    string
	durability string
}

func (v variant) confirms() bool { return v.durability != Transient }

func (v variant) deliveryMode() uint8 {
	if v.durability == Transient {
		return amqp.Transient
	}
	return amqp.Persistent
}

func parseVariant(name string) (variant, error) {
	p, d, ok := strings.Cut(name, "/")
	if !ok || (p != ReplyQueue && p != DirectReplyTo) || (d != Transient && d != Persistent && d != Quorum) {
		return variant{}, fmt.Errorf("%s: unknown variant %q", Name, name)
	}
	return variant{p, d}, nil
}

var spec = drivers.Spec{
	Name:        Name,
	Description: "RPC over RabbitMQ (AMQP 0-9-1, amqp091-go): request queue, replies by reply queue or direct reply-to",
	Kind:        drivers.Broker,
	Broker:      "rabbitmq",
	Variants: []drivers.Variant{
		{Name: "reply-queue/transient", Description: "exclusive reply queue per caller channel; non-durable request queue, transient messages"},
		{Name: "direct-reply-to/transient", Description: "amq.rabbitmq.reply-to; non-durable request queue, transient messages"},
		{Name: "reply-queue/persistent", Description: "exclusive reply queue per caller channel; durable request queue, persistent messages, publisher confirm per request"},
		{Name: "direct-reply-to/persistent", Description: "amq.rabbitmq.reply-to; durable request queue, persistent messages, publisher confirm per request"},
		{Name: "reply-queue/quorum", Description: "exclusive reply queue per caller channel; quorum request queue, publisher confirm per request"},
		{Name: "direct-reply-to/quorum", Description: "amq.rabbitmq.reply-to; quorum request queue, publisher confirm per request"},
	},
	Options: []drivers.Option{
		{Name: "connections", Default: "1", Description: "caller connections per client (1-64)"},
		{Name: "channels", Default: "1", Description: "caller channels per connection, each with its own reply consumer (1-64)"},
		{Name: "prefetch", Default: "200", Description: "responder prefetch (basic.qos) per consumer channel (1-65535)"},
		{Name: "parallelism", Default: "2", Description: "responder consumer channels, each with one goroutine running the handler (1-256)"},
	},
	Libraries: []string{"github.com/rabbitmq/amqp091-go"},
}

// Driver is the rabbitmq driver.
type Driver struct{}

// New returns the driver.
func New() drivers.Driver { return Driver{} }

// Spec describes the driver.
func (Driver) Spec() drivers.Spec { return spec }

type options struct {
	v           variant
	connections int
	channels    int
	prefetch    int
	parallelism int
}

func parse(cfg drivers.Config) (options, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return options{}, err
	}
	var o options
	var err error
	if o.v, err = parseVariant(cfg.Variant); err != nil {
		return o, err
	}
	if o.connections, err = drivers.IntOption(spec, cfg, "connections", 1, 64); err != nil {
		return o, err
	}
	if o.channels, err = drivers.IntOption(spec, cfg, "channels", 1, 64); err != nil {
		return o, err
	}
	if o.prefetch, err = drivers.IntOption(spec, cfg, "prefetch", 1, 65535); err != nil {
		return o, err
	}
	if o.parallelism, err = drivers.IntOption(spec, cfg, "parallelism", 1, 256); err != nil {
		return o, err
	}
	return o, nil
}

// Validate checks the variant and options.
func (Driver) Validate(cfg drivers.Config) error {
	_, err := parse(cfg)
	return err
}

// dial connects to url, giving up when ctx ends.
func dial(ctx context.Context, url, name string) (*amqp.Connection, error) {
	type res struct {
		c   *amqp.Connection
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := amqp.DialConfig(url, amqp.Config{
			Dial:       amqp.DefaultDial(5 * time.Second),
			Heartbeat:  10 * time.Second,
			Properties: amqp.Table{"connection_name": name},
		})
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				closeConn(r.c)
			}
		}()
		return nil, ctx.Err()
	}
}

// backoff sleeps before the attempt-th redial; false when ctx ended.
func backoff(ctx context.Context, attempt int) bool {
	d := 50 * time.Millisecond << min(attempt, 6)
	if d > 2*time.Second {
		d = 2 * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// closeConn closes a connection without waiting more than 2 s for the
// broker's close-ok (Connection.Close waits for ever on a broker that no
// longer answers).
func closeConn(c *amqp.Connection) {
	_ = c.CloseDeadline(time.Now().Add(2 * time.Second))
}

// setupTimeout bounds the declarations and consumer set-up after a dial: a
// broker that is still recovering its queues may not answer them.
const setupTimeout = 15 * time.Second

// guardSetup closes conn if ctx ends or setup takes longer than
// setupTimeout, which fails the blocked AMQP call; the returned func ends
// the guard.
func guardSetup(ctx context.Context, conn *amqp.Connection) func() {
	t := time.AfterFunc(setupTimeout, func() { closeConn(conn) })
	stop := context.AfterFunc(ctx, func() { closeConn(conn) })
	return func() {
		t.Stop()
		stop()
	}
}

func randomName(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// queueArgs are the request queue's declare arguments. x-expires removes
// a queue left behind by a crashed run after 10 idle minutes.
func declareRequestQueue(ch *amqp.Channel, v variant, name string) error {
	args := amqp.Table{"x-expires": int32(10 * 60 * 1000)}
	durable := false
	switch v.durability {
	case Persistent:
		durable = true
		args["x-queue-type"] = "classic"
	case Quorum:
		durable = true
		args["x-queue-type"] = "quorum"
	}
	_, err := ch.QueueDeclare(name, durable, false, false, false, args)
	return err
}

// ---- responder ----

type server struct {
	url    string
	queue  string
	o      options
	h      drivers.Handler
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	conn *amqp.Connection
}

// Serve connects the responder to the broker at cfg.Addr (an amqp URL),
// declares a request queue with a unique name and consumes it.
func (Driver) Serve(ctx context.Context, cfg drivers.Config, h drivers.Handler) (drivers.Server, error) {
	o, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		return nil, fmt.Errorf("%s: no broker URL (Config.Addr)", Name)
	}
	url, _, _ := strings.Cut(cfg.Addr, "#")
	s := &server{url: url, queue: randomName("rpcbench.req."), o: o, h: h}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	conn, err := s.connect(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.wg.Add(1)
	go s.run(conn)
	return s, nil
}

func (s *server) Addr() string { return s.url + "#" + s.queue }

// connect dials, declares the request queue and opens the consumer
// channels.
func (s *server) connect(ctx context.Context) (*amqp.Connection, error) {
	conn, err := dial(ctx, s.url, "rpcbench-responder")
	if err != nil {
		return nil, fmt.Errorf("%s: responder: dial: %w", Name, err)
	}
	defer guardSetup(ctx, conn)()
	fail := func(what string, err error) (*amqp.Connection, error) {
		closeConn(conn)
		return nil, fmt.Errorf("%s: responder: %s: %w", Name, what, err)
	}
	setup, err := conn.Channel()
	if err != nil {
		return fail("channel", err)
	}
	if err := declareRequestQueue(setup, s.o.v, s.queue); err != nil {
		return fail("declare "+s.queue, err)
	}
	setup.Close()
	consumers := make([]<-chan amqp.Delivery, 0, s.o.parallelism)
	chans := make([]*amqp.Channel, 0, s.o.parallelism)
	for i := 0; i < s.o.parallelism; i++ {
		ch, err := conn.Channel()
		if err != nil {
			return fail("channel", err)
		}
		if err := ch.Qos(s.o.prefetch, 0, false); err != nil {
			return fail("qos", err)
		}
		d, err := ch.Consume(s.queue, "", false, false, false, false, nil)
		if err != nil {
			return fail("consume "+s.queue, err)
		}
		chans = append(chans, ch)
		consumers = append(consumers, d)
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		// Close ran meanwhile and will not see this connection.
		s.mu.Unlock()
		closeConn(conn)
		return nil, s.ctx.Err()
	}
	s.conn = conn
	s.startConsumers(chans, consumers)
	s.mu.Unlock()
	return conn, nil
}

// startConsumers runs one goroutine per consumer channel.
func (s *server) startConsumers(chans []*amqp.Channel, ds []<-chan amqp.Delivery) {
	for i := range chans {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.consume(chans[i], ds[i])
		}()
	}
}

// run watches the connection and reconnects until Close.
func (s *server) run(conn *amqp.Connection) {
	defer s.wg.Done()
	for {
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-s.ctx.Done():
			closeConn(conn)
			return
		case <-closed:
		}
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		for attempt := 0; ; attempt++ {
			if !backoff(s.ctx, attempt) {
				return
			}
			c, err := s.connect(s.ctx)
			if err == nil {
				conn = c
				break
			}
		}
	}
}

type slowReply struct {
	d     amqp.Delivery
	reply []byte
}

// consume owns ch: it publishes every reply and acks every request on it.
func (s *server) consume(ch *amqp.Channel, deliveries <-chan amqp.Delivery) {
	slow := make(chan slowReply, s.o.prefetch)
	var buf []byte
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			if wire.PeekServiceTime(d.Body) > 0 {
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					slow <- slowReply{d, s.h(d.Body, nil)}
				}()
				continue
			}
			buf = s.h(d.Body, buf[:0])
			s.reply(ch, &d, buf)
		case r := <-slow:
			s.reply(ch, &r.d, r.reply)
		}
	}
}

func (s *server) reply(ch *amqp.Channel, d *amqp.Delivery, body []byte) {
	if d.ReplyTo != "" {
		// mandatory=false: a reply to a caller that is gone is dropped, not
		// returned (basic.return on direct reply-to in 3.x).
		err := ch.PublishWithContext(s.ctx, "", d.ReplyTo, false, false, amqp.Publishing{
			CorrelationId: d.CorrelationId,
			Body:          body,
		})
		if err != nil {
			return // the channel is gone; deliveries will close
		}
	}
	d.Ack(false)
}

// Close stops the responder, deletes its request queue and waits for its
// goroutines.
func (s *server) Close() error {
	s.cancel()
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.mu.Unlock()
	var err error
	if conn != nil {
		// Bounded: a broker that stopped answering fails the delete when
		// the guard closes the connection.
		guard := time.AfterFunc(3*time.Second, func() { closeConn(conn) })
		if ch, cerr := conn.Channel(); cerr == nil {
			_, err = ch.QueueDelete(s.queue, false, false, false)
		}
		guard.Stop()
		closeConn(conn)
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("%s: responder close: %w", Name, err)
	}
	return nil
}

// ---- caller ----

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

// Dial connects the caller side: o.connections connections with o.channels
// sessions each, to the responder at addr (Server.Addr: URL#queue).
func (Driver) Dial(ctx context.Context, cfg drivers.Config, addr string) (drivers.Client, error) {
	o, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	url, queue, ok := strings.Cut(addr, "#")
	if !ok || queue == "" {
		return nil, fmt.Errorf("%s: address %q has no request queue: want the responder's Server.Addr (amqp://...#queue)", Name, addr)
	}
	c := &client{url: url, queue: queue, o: o}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := 0; i < o.connections; i++ {
		cc := &callerConn{cl: c, idx: i, slots: make([]atomic.Pointer[session], o.channels), up: make(chan struct{})}
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

// NewCaller returns a caller bound to the next session, round-robin over
// connections first, then channels.
func (c *client) NewCaller() (drivers.Caller, error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	n := int(c.next.Add(1) - 1)
	cc := c.conns[n%len(c.conns)]
	slot := (n / len(c.conns)) % c.o.channels
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &caller{cc: cc, slot: slot, replies: make(chan reply, 1), timer: t, mode: c.o.v.deliveryMode(), confirm: c.o.v.confirms()}, nil
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

// callerConn is one caller connection and its sessions, redialled when
// lost.
type callerConn struct {
	cl    *client
	idx   int
	slots []atomic.Pointer[session]

	mu   sync.Mutex
	conn *amqp.Connection
	up   chan struct{} // closed while connected; replaced when lost
}

func (cc *callerConn) connect(ctx context.Context) (*amqp.Connection, error) {
	conn, err := dial(ctx, cc.cl.url, "rpcbench-caller-"+strconv.Itoa(cc.idx))
	if err != nil {
		return nil, fmt.Errorf("%s: caller: dial: %w", Name, err)
	}
	defer guardSetup(ctx, conn)()
	sessions := make([]*session, len(cc.slots))
	for i := range sessions {
		s, err := openSession(conn, cc.cl.o.v)
		if err != nil {
			closeConn(conn)
			return nil, fmt.Errorf("%s: caller: %w", Name, err)
		}
		sessions[i] = s
	}
	cc.mu.Lock()
	if cc.cl.ctx.Err() != nil {
		cc.mu.Unlock()
		closeConn(conn)
		return nil, ErrClosed
	}
	cc.conn = conn
	for i, s := range sessions {
		cc.slots[i].Store(s)
		cc.cl.wg.Add(1)
		go func() {
			defer cc.cl.wg.Done()
			s.route()
		}()
	}
	close(cc.up)
	cc.mu.Unlock()
	return conn, nil
}

// run watches the connection and redials it until the client closes. A
// session that dies while its connection lives (a channel error) takes the
// connection down with it, so everything is rebuilt the same way.
func (cc *callerConn) run(conn *amqp.Connection) {
	defer cc.cl.wg.Done()
	for {
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		dead := make(chan struct{})
		for i := range cc.slots {
			if s := cc.slots[i].Load(); s != nil {
				go func() {
					select {
					case <-s.dead:
						closeConn(conn)
					case <-dead:
					}
				}()
			}
		}
		select {
		case <-cc.cl.ctx.Done():
			close(dead)
			closeConn(conn)
			return
		case <-closed:
		}
		close(dead)
		cc.mu.Lock()
		cc.conn = nil
		cc.up = make(chan struct{})
		cc.mu.Unlock()
		// The sessions die when their deliveries close (the routers fail
		// their calls); clear the slots so new calls wait for the redial.
		for i := range cc.slots {
			cc.slots[i].Store(nil)
		}
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

// session returns slot i's live session, or nil and a channel closed on
// the next (re)connection.
func (cc *callerConn) session(i int) (*session, <-chan struct{}) {
	if s := cc.slots[i].Load(); s != nil {
		select {
		case <-s.dead:
		default:
			return s, nil
		}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if s := cc.slots[i].Load(); s != nil {
		select {
		case <-s.dead:
		default:
			return s, nil
		}
	}
	if cc.conn != nil {
		// Connected, but this session just died: the connection is being
		// torn down; wait for the next one.
		return nil, make(chan struct{})
	}
	return nil, cc.up
}

// session is one caller channel: requests are published on it under pubMu
// and its reply deliveries are drained by route.
type session struct {
	ch         *amqp.Channel
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
			select {
			case w <- reply{d.CorrelationId, d.Body}:
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
	slot    int
	replies chan reply
	timer   *time.Timer
	mode    uint8
	confirm bool
}

// notConnectedWait is how long a call started while disconnected waits for
// the redial before failing with ErrNotConnected.
const notConnectedWait = 250 * time.Millisecond

func (c *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
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
				return nil, fmt.Errorf("%w: not connected to the broker", drivers.ErrTimeout)
			}
			return nil, ErrNotConnected
		}
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
	s.pubMu.Lock()
	if c.confirm {
		dc, err = s.ch.PublishWithDeferredConfirmWithContext(ctx, "", c.cc.cl.queue, false, false, msg)
	} else {
		err = s.ch.PublishWithContext(ctx, "", c.cc.cl.queue, false, false, msg)
	}
	s.pubMu.Unlock()
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
	got := false
	for !got || confirmed != nil {
		select {
		case r := <-c.replies:
			if r.id == id {
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
		case <-s.dead:
			// A reply routed just before the session died still counts.
			select {
			case r := <-c.replies:
				if r.id == id && confirmed == nil {
					return append(buf, r.body...), nil
				}
			default:
			}
			return nil, s.deadErr
		case <-c.timer.C:
			s.unregister(id)
			what := "reply"
			if got {
				what = "publisher confirm"
			}
			return nil, fmt.Errorf("%w: no %s from rabbitmq", drivers.ErrTimeout, what)
		case <-ctx.Done():
			s.unregister(id)
			return nil, ctx.Err()
		}
	}
	return append(buf, body...), nil
}
