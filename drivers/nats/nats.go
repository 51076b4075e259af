// Package nats is MQ-RPC over NATS request-reply (github.com/nats-io/nats.go):
// the caller publishes each request with a reply subject and the responder,
// a queue group subscribed to the request subject, publishes the reply to it.
//
// Variants:
//   - core: plain NATS request-reply. Each caller connection has one shared
//     reply inbox, a single wildcard subscription "_INBOX.<id>.*", and every
//     call gets its own last token, exactly the pattern of nats.go's
//     Conn.Request. The driver routes replies itself so it can reuse each
//     caller's channel and timer across calls and honour ctx (Conn.Request
//     allocates a channel per call and ignores ctx).
//   - jetstream: the same calls, plus a JetStream stream with NoAck on file
//     storage that captures the request subject, so every request is stored
//     while the reply still flows. The server stores the request and delivers
//     it to the responder in parallel: the reply does not wait for the write.
//     The stream keeps at most StreamMaxBytes (oldest discarded) and is
//     deleted when the responder closes.
//
// The jetstream option sync (default or always) is not a stream setting:
// NATS syncs its file store on a server-wide interval (sync_interval, every
// 2 minutes by default; "always" fsyncs every stored message). BrokerParams
// asks the run for a broker started with it, and the embedded broker
// (internal/broker.NATSEmbedded) sets server.Options.SyncAlways and records
// the effective setting in the broker's details (jetstream_sync). Against an
// external broker (--broker nats=URL) the driver cannot change or check it:
// sync=always then only labels the cells, and that server must itself be
// configured with jetstream { sync_interval: always }.
//
// Options: connections (caller connections, each with its own reply inbox
// and calls spread round-robin), responders (queue-group members, each its
// own connection with one subscription) and handlers (requests one responder
// handles at once; see responder).
//
// Addresses: Serve gets the broker URL in Config.Addr ("nats://host:port",
// several comma-separated for a cluster) and picks a fresh request subject
// "rpcbench.<random>.req" unless the URL ends in "#subject". Server.Addr()
// returns "<broker URL>#<subject>", the string Dial needs: the part before
// the last '#' is what the caller connects to, the rest the subject it
// publishes requests on.
//
// Failures: a call that gets no reply by its deadline returns an error
// wrapping drivers.ErrTimeout. While the broker is unreachable the client
// keeps reconnecting, buffers nothing (a publish fails at once) and fails the
// calls waiting on a lost connection, so a stopped broker makes calls fail
// within their timeout, never hang. A request nobody is subscribed to fails
// at once with nats: no responders (core only: in jetstream the stream
// itself is an interested party, so such calls time out).
package nats

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/pending"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// StreamMaxBytes caps the jetstream variant's stream; older requests are
// discarded past it, so a long run does not fill the disk.
const StreamMaxBytes = 256 << 20

// queueGroup is the queue group every responder subscription joins.
const queueGroup = "rpcbench-responders"

// connectTimeout bounds one connection attempt when ctx has no earlier
// deadline.
const connectTimeout = 10 * time.Second

// reconnectWait is the pause between reconnect attempts after the broker
// went away.
const reconnectWait = 100 * time.Millisecond

// Driver is the nats driver.
type Driver struct{}

// New returns the nats driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "nats",
	Description: "NATS request-reply through a nats-server (embedded in rpcbench unless --broker nats=URL)",
	Kind:        drivers.Broker,
	Broker:      "nats",
	Variants: []drivers.Variant{
		{Name: "core", Description: "core NATS request-reply: a shared reply inbox per caller connection, a queue group of responders"},
		{Name: "jetstream", Description: "core request-reply while a JetStream stream (NoAck, file storage) stores every request"},
	},
	Options: []drivers.Option{
		{Name: "connections", Default: "1", Description: "caller connections, each with its own reply inbox (1-256)"},
		{Name: "responders", Default: "1", Description: "responder connections, each a member of the queue group (1-64)"},
		{Name: "handlers", Default: "64", Description: "requests one responder handles at once (1-4096): zero-service-time requests are answered inline, requests with service time each on their own goroutine"},
		{Name: "sync", Default: "default", Description: "jetstream only: default or always (fsync every stored request). A nats-server setting: the embedded broker is started with it; an external server must be configured with jetstream { sync_interval: always } itself"},
	},
	Libraries: []string{"github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2"},
}

var _ drivers.BrokerParams = (*Driver)(nil)

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

type settings struct {
	variant     string
	connections int
	responders  int
	handlers    int
	sync        string
}

func parse(cfg drivers.Config) (settings, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return settings{}, err
	}
	var s settings
	var err error
	s.variant = cfg.Variant
	if s.connections, err = drivers.IntOption(spec, cfg, "connections", 1, 256); err != nil {
		return s, err
	}
	if s.responders, err = drivers.IntOption(spec, cfg, "responders", 1, 64); err != nil {
		return s, err
	}
	if s.handlers, err = drivers.IntOption(spec, cfg, "handlers", 1, 4096); err != nil {
		return s, err
	}
	s.sync = drivers.OptionValue(spec, cfg, "sync")
	if s.sync != "default" && s.sync != "always" {
		return s, fmt.Errorf("nats: option sync=%q: want default or always", s.sync)
	}
	return s, nil
}

// Validate checks the variant and options.
func (*Driver) Validate(cfg drivers.Config) error {
	_, err := parse(cfg)
	return err
}

// BrokerParams returns the broker.StartOptions.Params a broker started for
// cfg needs (nil when any will do): the jetstream variant with sync=always
// needs a server with per-message fsync, which NATS sets server-wide. The
// run asks for such a broker under its own key (e.g. "nats/sync=always").
func (*Driver) BrokerParams(cfg drivers.Config) map[string]string {
	s, err := parse(cfg)
	if err != nil || s.variant != "jetstream" || s.sync != "always" {
		return nil
	}
	return map[string]string{"sync": "always"}
}

// SplitAddr splits a Server.Addr() string into the broker URL and the
// request subject (empty when addr has no "#subject").
func SplitAddr(addr string) (url, subject string) {
	if i := strings.LastIndexByte(addr, '#'); i >= 0 {
		return addr[:i], addr[i+1:]
	}
	return addr, ""
}

func checkSubject(subj string) error {
	if subj == "" || strings.ContainsAny(subj, " \t\r\n*>") || strings.HasPrefix(subj, ".") || strings.HasSuffix(subj, ".") || strings.Contains(subj, "..") {
		return fmt.Errorf("nats: bad request subject %q: want dot-separated tokens without spaces or wildcards", subj)
	}
	return nil
}

// connect opens one connection to url, honouring ctx. The connection keeps
// reconnecting after a broker outage, without buffering publishes meanwhile.
func connect(ctx context.Context, url, name string, extra ...natsgo.Option) (*natsgo.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timeout := connectTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	opts := append([]natsgo.Option{
		natsgo.Name(name),
		natsgo.Timeout(timeout),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(reconnectWait),
		natsgo.ReconnectJitter(0, 0),
		natsgo.ReconnectBufSize(-1),
		natsgo.NoCallbacksAfterClientClose(),
		// Slow-consumer and other async errors show up as failed calls;
		// nothing is printed from inside the benchmark.
		natsgo.ErrorHandler(func(*natsgo.Conn, *natsgo.Subscription, error) {}),
	}, extra...)
	type result struct {
		nc  *natsgo.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := natsgo.Connect(url, opts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("nats: connect %s: %w", url, r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("nats: connect %s: %w", url, ctx.Err())
	}
}

// flush waits for the broker to have processed everything sent so far.
func flush(ctx context.Context, nc *natsgo.Conn) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, connectTimeout)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}

// ---- responder ----

type server struct {
	addr   string
	stream string
	conns  []*natsgo.Conn
	subs   []*natsgo.Subscription
	// mu is held for reading while a request is taken on and for writing
	// by Close, which then waits for the handlers in progress (wg).
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// Serve connects the responders to the broker at cfg.Addr and subscribes
// them, as one queue group, to the request subject.
func (d *Driver) Serve(ctx context.Context, cfg drivers.Config, h drivers.Handler) (drivers.Server, error) {
	st, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	url, subj := SplitAddr(cfg.Addr)
	if url == "" {
		return nil, errors.New("nats: no broker URL to serve on: start a broker or give --broker nats=nats://host:port")
	}
	if subj == "" {
		subj = "rpcbench." + rand.Text() + ".req"
	}
	if err := checkSubject(subj); err != nil {
		return nil, err
	}
	s := &server{addr: url + "#" + subj}
	fail := func(err error) (drivers.Server, error) {
		s.Close()
		return nil, err
	}
	for i := 0; i < st.responders; i++ {
		nc, err := connect(ctx, url, fmt.Sprintf("rpcbench-responder-%d", i))
		if err != nil {
			return fail(err)
		}
		s.conns = append(s.conns, nc)
		if i == 0 && st.variant == "jetstream" {
			if err := s.createStream(ctx, nc, subj); err != nil {
				return fail(err)
			}
		}
		r := &responder{s: s, nc: nc, h: h, sem: make(chan struct{}, st.handlers)}
		sub, err := nc.QueueSubscribe(subj, queueGroup, r.handle)
		if err != nil {
			return fail(fmt.Errorf("nats: subscribe %s: %w", subj, err))
		}
		s.subs = append(s.subs, sub)
		// The subscription is live on the server once it answers a flush.
		if err := flush(ctx, nc); err != nil {
			return fail(fmt.Errorf("nats: subscribe %s: %w", subj, err))
		}
	}
	return s, nil
}

// responder is one member of the queue group: a connection with one
// subscription. A request without service time is answered inline on the
// subscription's goroutine (no hand-off, the fastest path); a request that
// asks for service time runs on its own goroutine so it holds up no other.
// At most cap(sem) requests are in progress at once; when all are, the
// responder takes no further message until one finishes (the rest wait in
// the connection's pending buffer).
type responder struct {
	s   *server
	nc  *natsgo.Conn
	h   drivers.Handler
	sem chan struct{}
	out []byte
}

func (r *responder) handle(m *natsgo.Msg) {
	if m.Reply == "" {
		return
	}
	r.sem <- struct{}{}
	r.s.mu.RLock()
	if r.s.closed {
		r.s.mu.RUnlock()
		<-r.sem
		return
	}
	if wire.PeekServiceTime(m.Data) > 0 {
		r.s.wg.Add(1)
		r.s.mu.RUnlock()
		go func() {
			defer r.s.wg.Done()
			// A failed publish (connection lost) leaves the caller to time
			// out or fail on its own disconnect.
			r.nc.Publish(m.Reply, r.h(m.Data, nil))
			<-r.sem
		}()
		return
	}
	r.out = r.h(m.Data, r.out[:0])
	r.nc.Publish(m.Reply, r.out)
	r.s.mu.RUnlock()
	<-r.sem
}

func (s *server) createStream(ctx context.Context, nc *natsgo.Conn, subj string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: jetstream: %w", err)
	}
	name := "RPCBENCH_" + rand.Text()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "rpcbench requests on " + subj,
		Subjects:    []string{subj},
		Storage:     jetstream.FileStorage,
		NoAck:       true,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxBytes:    StreamMaxBytes,
		Replicas:    1,
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, natsgo.ErrNoResponders) {
			return fmt.Errorf("nats: the jetstream variant needs a server with JetStream enabled: %w", err)
		}
		return fmt.Errorf("nats: create stream for %s: %w", subj, err)
	}
	s.stream = name
	return nil
}

// Addr is "<broker URL>#<request subject>", what Dial takes.
func (s *server) Addr() string { return s.addr }

// Close deletes the jetstream variant's stream (when the broker is still
// there), unsubscribes, closes the responder connections and waits for
// handlers in progress.
func (s *server) Close() error {
	s.once.Do(func() {
		if s.stream != "" && len(s.conns) > 0 && s.conns[0].IsConnected() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if js, err := jetstream.New(s.conns[0]); err == nil {
				if err := js.DeleteStream(ctx, s.stream); err != nil {
					s.err = fmt.Errorf("nats: delete stream %s: %w", s.stream, err)
				}
			}
			cancel()
		}
		// Unsubscribe and wait for the broker to confirm, so that once Close
		// returns no request is routed to this responder any more.
		for _, sub := range s.subs {
			sub.Unsubscribe()
		}
		for _, nc := range s.conns {
			if nc.IsConnected() {
				nc.FlushTimeout(2 * time.Second)
			}
			nc.Close()
		}
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s.err
}

// ---- caller ----

type client struct {
	subject string
	conns   []*conn
	next    atomic.Uint32
}

// conn is one caller connection with its shared reply inbox.
type conn struct {
	nc *natsgo.Conn
	// prefix is the inbox subject; a call's reply subject is prefix.<id>.
	prefix string
	calls  pending.Table
	// closed is set once the client closed the connection.
	closed atomic.Bool
}

var (
	errDisconnected = errors.New("nats: connection to the broker lost")
	errClosed       = errors.New("nats: client closed")
)

// Dial connects the caller connections to the broker named in addr
// ("<broker URL>#<request subject>", a Server.Addr()).
func (d *Driver) Dial(ctx context.Context, cfg drivers.Config, addr string) (drivers.Client, error) {
	st, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	url, subj := SplitAddr(addr)
	if url == "" || subj == "" {
		return nil, fmt.Errorf("nats: address %q: want <broker URL>#<request subject>, the responder's address", addr)
	}
	if err := checkSubject(subj); err != nil {
		return nil, err
	}
	cl := &client{subject: subj}
	for i := 0; i < st.connections; i++ {
		c := &conn{}
		nc, err := connect(ctx, url, fmt.Sprintf("rpcbench-caller-%d", i),
			natsgo.DisconnectErrHandler(func(*natsgo.Conn, error) { c.failAll(errDisconnected) }),
			natsgo.ClosedHandler(func(*natsgo.Conn) { c.failAll(errDisconnected) }),
		)
		if err != nil {
			cl.Close()
			return nil, err
		}
		c.nc = nc
		c.prefix = nc.NewInbox()
		cl.conns = append(cl.conns, c)
		if _, err := nc.Subscribe(c.prefix+".*", c.dispatch); err != nil {
			cl.Close()
			return nil, fmt.Errorf("nats: subscribe reply inbox: %w", err)
		}
		if err := flush(ctx, nc); err != nil {
			cl.Close()
			return nil, fmt.Errorf("nats: subscribe reply inbox: %w", err)
		}
	}
	return cl, nil
}

// dispatch hands a reply to the caller waiting for it; replies to calls
// that already gave up are dropped.
func (c *conn) dispatch(m *natsgo.Msg) {
	if len(m.Subject) <= len(c.prefix)+1 {
		return
	}
	id, err := strconv.ParseUint(m.Subject[len(c.prefix)+1:], 10, 64)
	if err != nil {
		return
	}
	s := c.calls.Lookup(id)
	if s == nil {
		return
	}
	if len(m.Data) == 0 && m.Header != nil && m.Header.Get("Status") != "" {
		// A status message from the server instead of a reply.
		if m.Header.Get("Status") == "503" {
			s.Fail(id, natsgo.ErrNoResponders)
		} else {
			s.Fail(id, fmt.Errorf("nats: broker answered status %s %s", m.Header.Get("Status"), m.Header.Get("Description")))
		}
		return
	}
	s.Deliver(id, func(buf []byte) ([]byte, error) { return append(buf, m.Data...), nil })
}

// failAll fails every call waiting on this connection.
func (c *conn) failAll(err error) { c.calls.FailAll(err) }

func (cl *client) NewCaller() (drivers.Caller, error) {
	c := cl.conns[int(cl.next.Add(1)-1)%len(cl.conns)]
	s, _ := c.calls.Add()
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &caller{c: c, s: s, subject: cl.subject, timer: t,
		reply: append(make([]byte, 0, len(c.prefix)+24), c.prefix+"."...)}, nil
}

func (cl *client) Close() error {
	for _, c := range cl.conns {
		c.closed.Store(true)
		if c.nc != nil {
			c.nc.Close()
		}
		c.failAll(errClosed)
	}
	return nil
}

type caller struct {
	c       *conn
	s       *pending.Slot
	subject string
	timer   *time.Timer
	reply   []byte // prefix + "." + room for the id
}

func (cl *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cl.c.closed.Load() {
		return nil, errClosed
	}
	s := cl.s
	id := s.Begin(buf)
	n := len(cl.c.prefix) + 1
	cl.reply = strconv.AppendUint(cl.reply[:n], id, 10)
	if err := cl.c.nc.PublishRequest(cl.subject, string(cl.reply), req); err != nil {
		if s.Withdraw() {
			return s.Result()
		}
		return nil, fmt.Errorf("nats: publish: %w", err)
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		wait = 1
	}
	cl.timer.Reset(wait)
	select {
	case <-s.Done():
		cl.timer.Stop()
		return s.Result()
	case <-cl.timer.C:
		if s.Withdraw() {
			return s.Result()
		}
		return nil, fmt.Errorf("nats: %w after %v", drivers.ErrTimeout, wait)
	case <-ctx.Done():
		cl.timer.Stop()
		if s.Withdraw() {
			return s.Result()
		}
		return nil, ctx.Err()
	}
}
