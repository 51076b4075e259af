// Package rabbitmq is the rabbitmq driver: RPC over RabbitMQ with
// github.com/rabbitmq/amqp091-go.
//
// Variants are reply pattern × durability, named "PATTERN/DURABILITY".
// Reply patterns:
//
//   - reply-queue: every caller channel declares one exclusive, server-named
//     reply queue and consumes it; replies are routed to the waiting call by
//     correlation id (the tutorial's pattern, but declared once per channel,
//     not once per call).
//   - direct-reply-to: replies go to amq.rabbitmq.reply-to, consumed in
//     no-ack mode on the same channel that publishes the requests.
//
// Durabilities (what is acknowledged before the reply: see the README's
// durability table):
//
//   - transient: non-durable request queue, non-persistent messages, no
//     publisher confirms: nothing is written to disk on the way.
//   - persistent: durable (classic) request queue, persistent requests, and
//     a publisher confirm awaited for every request (the call ends when both
//     the confirm and the reply arrived). The broker confirms a persistent
//     message once it is written to disk (fsync, batched) or once it was
//     consumed and acknowledged, whichever comes first: with a waiting
//     responder the confirm may come before any fsync.
//   - quorum: quorum request queue (always durable: persistent requests and
//     publisher confirms as in persistent; the broker confirms once the
//     Raft log entry is fsynced). Reply queues stay classic (or direct
//     reply-to): quorum queues cannot be exclusive.
//
// Caller: connections, and channels on them. By default every caller gets
// its own channel (channels=per-caller, RabbitMQ's advice of one channel
// per publishing thread), with its own reply consumer; channels=N instead
// opens N channels per connection shared round-robin by the callers, one
// publish lock each (channels=1 is the common naive setup: every caller of
// a connection on one channel). One goroutine per channel drains its reply
// deliveries and routes them by correlation id.
//
// Responder: `parallelism` consumer channels with manual acks share the
// responder concurrency (drivers.Config.Concurrency, N): channel i has
// prefetch (basic.qos) N/parallelism (the first N%parallelism one more), so
// the broker hands the responder at most N unacknowledged requests at once
// and it handles all of them: one goroutine per channel owns the channel
// (publishes replies, acks), answers requests without service time inline
// and runs each request with service time on its own goroutine, which hands
// its reply back to the owner. It reaches N requests at once and never
// exceeds it.
//
// Serve declares a request queue with a unique name (rpcbench.req.<random>)
// and Server.Addr returns the broker URL with the queue name as fragment
// ("amqp://...#rpcbench.req.x"), which Dial splits again. Replies are
// published with mandatory=false.
//
// Limits: requests and replies of at most MaxMessageSize (16 MiB, the
// default max_message_size of RabbitMQ 4.x; 3.8-3.13 default to 128 MiB,
// so it holds for every broker rpcbench may meet with defaults). Call
// refuses a larger request at once; the responder answers a request whose
// reply would be larger with an error the caller reports.
//
// Deadlines: a call ends by its deadline whatever the broker does. While
// the broker blocks the connection's publishers (connection.blocked: a
// memory or disk alarm), calls fail at once with ErrBlocked instead of
// publishing into a connection the broker no longer reads. A publish still
// stuck in the socket write at the call's deadline (a stopped broker, large
// requests: amqp091-go has no write deadline) closes its connection, which
// fails the write; the call returns a timeout and the connection redials.
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

// MaxMessageSize is the largest request and reply body (wire.Call bytes)
// the driver carries.
const MaxMessageSize = 16 << 20

// errorHeader carries the error of a responder that could not send its
// reply.
const errorHeader = "rpcbench-error"

// Errors calls fail with besides timeouts (all transport errors).
var (
	// ErrBlocked: the broker blocks this connection's publishers
	// (connection.blocked, a resource alarm); the call was not sent.
	ErrBlocked = errors.New("rabbitmq: the broker blocks publishers")
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
		{Name: "channels", Default: PerCaller, Description: "caller channels: per-caller (each caller its own channel and reply consumer, RabbitMQ's advice) or N (1-64) channels per connection shared round-robin by the callers, one publish lock each; channels=1 is the common naive setup, every caller of a connection on one channel"},
		{Name: "parallelism", Default: "2", Description: "responder consumer channels (1-256, at most the responder concurrency); they share the responder concurrency as their prefetch, so the responder holds and handles at most that many requests at once"},
	},
	Libraries: []string{"github.com/rabbitmq/amqp091-go"},
}

// Driver is the rabbitmq driver.
type Driver struct{}

// New returns the driver.
func New() drivers.Driver { return Driver{} }

// Spec describes the driver.
func (Driver) Spec() drivers.Spec { return spec }

// PerCaller is the channels option's default: a channel per caller.
const PerCaller = "per-caller"

type options struct {
	v           variant
	connections int
	// channels per connection shared by the callers; 0: one per caller.
	channels    int
	parallelism int
	concurrency int
}

// prefetch is consumer channel i's share of the responder concurrency.
func (o options) prefetch(i int) int {
	n := o.concurrency / o.parallelism
	if i < o.concurrency%o.parallelism {
		n++
	}
	return n
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
	if drivers.OptionValue(spec, cfg, "channels") != PerCaller {
		if o.channels, err = drivers.IntOption(spec, cfg, "channels", 1, 64); err != nil {
			return o, fmt.Errorf("%w (or %s)", err, PerCaller)
		}
	}
	if o.parallelism, err = drivers.IntOption(spec, cfg, "parallelism", 1, 256); err != nil {
		return o, err
	}
	o.concurrency = cfg.Concurrency()
	if o.concurrency > 65535*o.parallelism {
		return o, fmt.Errorf("%s: responder concurrency %d: at most 65535 (the largest prefetch) per consumer channel; raise parallelism", Name, o.concurrency)
	}
	// Never a consumer channel with prefetch 0 (unlimited).
	o.parallelism = min(o.parallelism, o.concurrency)
	return o, nil
}

// Transport is the rabbitmq driver configured for one unit.
type Transport struct {
	cfg drivers.Config
	o   options
}

// Configure checks the variant and options.
func (Driver) Configure(cfg drivers.Config) (drivers.Transport, error) {
	o, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	return &Transport{cfg: drivers.Effective(spec, cfg), o: o}, nil
}

// Config is the effective configuration.
func (t *Transport) Config() drivers.Config { return t.cfg }

// BrokerParams: any RabbitMQ broker will do.
func (*Transport) BrokerParams() map[string]string { return nil }

// CheckTarget checks a responder's address: <amqp URL>#<request queue>.
func (*Transport) CheckTarget(addr string) error {
	url, queue, ok := strings.Cut(addr, "#")
	if !ok || queue == "" || url == "" {
		return fmt.Errorf("want <amqp URL>#<request queue>, the address `rpcbench serve` printed")
	}
	return nil
}

// Limits are MaxMessageSize both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessageSize, MaxReply: MaxMessageSize}
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

// Serve connects the responder to the broker at at.Broker (an amqp URL),
// declares a request queue with a unique name and consumes it.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	o := t.o
	if at.Broker == "" {
		return nil, fmt.Errorf("%s: no broker URL to serve on: start a broker or give --broker rabbitmq=amqp://host:port", Name)
	}
	url, _, _ := strings.Cut(at.Broker, "#")
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
		if err := ch.Qos(s.o.prefetch(i), 0, false); err != nil {
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
			s.consume(chans[i], ds[i], s.o.prefetch(i))
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
// At most prefetch requests are delivered and unacknowledged at once, so
// the slow replies never outnumber the buffer.
func (s *server) consume(ch *amqp.Channel, deliveries <-chan amqp.Delivery, prefetch int) {
	slow := make(chan slowReply, prefetch)
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
		msg := amqp.Publishing{CorrelationId: d.CorrelationId, Body: body}
		if len(body) > MaxMessageSize {
			msg.Body = nil
			msg.Headers = amqp.Table{errorHeader: fmt.Sprintf("reply of %d bytes exceeds the driver's limit %d (max_message_size)", len(body), MaxMessageSize)}
		}
		// mandatory=false: a reply to a caller that is gone is dropped, not
		// returned (basic.return on direct reply-to in 3.x).
		err := ch.PublishWithContext(s.ctx, "", d.ReplyTo, false, false, msg)
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
				return nil, fmt.Errorf("%w: not connected to the broker", drivers.ErrTimeout)
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
	got := false
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
		case <-s.dead:
			// A reply routed just before the session died still counts.
			select {
			case r := <-c.replies:
				if r.id == id && r.err == "" && confirmed == nil {
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
