// Package nats is MQ-RPC over NATS (github.com/nats-io/nats.go): the caller
// publishes each request with the subject its reply must go to, and the
// responder publishes the reply there.
//
// Variants:
//   - core: plain NATS request-reply. Each caller connection has one shared
//     reply inbox, a single wildcard subscription "_INBOX.<id>.*", and every
//     call gets its own last token, exactly the pattern of nats.go's
//     Conn.Request. The driver routes replies itself so it can reuse each
//     caller's channel and timer across calls and honour ctx (Conn.Request
//     allocates a channel per call and ignores ctx). The responders are a
//     queue group on the request subject. Nothing is stored: a request
//     published while no responder is subscribed fails at once with
//     nats: no responders, and requests in flight at a responder that dies
//     are lost.
//   - jetstream: RPC over JetStream. A file-backed work-queue stream
//     captures the request subject; the caller publishes each request with
//     a JetStream publish, which returns once the stream has stored it (the
//     publish ack), carrying its reply inbox in the Rpcbench-Reply header,
//     then waits for the reply on that inbox. The responders consume
//     through one durable pull consumer with explicit acks (AckWait
//     AckWait, at most responder_concurrency unacknowledged at once), reply
//     with a core publish and then ack the request (reply first: a
//     responder that dies between the two leaves the request to be
//     redelivered after AckWait, a duplicate the caller has stopped waiting
//     for; acked first it would be lost). An acked request leaves the
//     stream. A call therefore costs the store's write and ack before the
//     responder sees the request, and a responder started later (or
//     restarted) gets the requests stored meanwhile.
//   - core+stream-copy: core request-reply while a JetStream stream with
//     NoAck on file storage captures the request subject, so every request
//     is also stored. The server stores the request and delivers it to the
//     responder in parallel: the reply does not wait for the write, and
//     nobody ever consumes the copy (the stream keeps at most
//     StreamMaxBytes, oldest discarded). What this variant measures is the
//     cost of storing beside core request-reply, not RPC over a durable
//     queue.
//
// The streams of jetstream and core+stream-copy are deleted when the
// responder closes, unless the responder was given its subject
// ("URL#subject", e.g. by rpcbench serve): then the jetstream variant's
// stream and durable consumer are named after the subject and kept, so
// that a responder served again on that subject resumes with the requests
// stored meanwhile.
//
// The option sync (default or always) is not a stream setting: NATS syncs
// its file store on a server-wide interval (sync_interval, every 2 minutes
// by default; "always" fsyncs every stored message before the publish
// ack). BrokerParams asks the run for a broker started with it, and the
// brokers rpcbench starts (internal/broker) set server.Options.SyncAlways
// and record the effective setting in the broker's details
// (jetstream_sync). Against an external broker (--broker nats=URL) the
// driver cannot change or check it: sync=always then only labels the
// cells, and that server must itself be configured with
// jetstream { sync_interval: always }.
//
// Options: connections (caller connections, each with its own reply inbox
// and calls spread round-robin) and responders (responder connections:
// queue-group members, or subscribers of the durable consumer). How many
// requests the responders handle at once is the scenario's
// responder_concurrency (drivers.Config.Concurrency), shared by all
// responder connections; see responder.
//
// Limits: a message's payload plus headers must fit the server's
// max_payload. Limits asks the broker for it (nats.Conn.MaxPayload,
// what the server announces); without an address it assumes
// DefaultMaxPayload, the max_payload of the servers rpcbench starts. A
// jetstream request also carries its reply inbox in a header
// (HeaderReserve bytes are kept for it). A request over the limit fails at
// once with nats: maximum payload exceeded; a reply over the limit is
// answered with an error the caller reports (Rpcbench-Error).
//
// Addresses: Serve gets the broker URL in Config.Addr ("nats://host:port",
// several comma-separated for a cluster) and picks a fresh request subject
// "rpcbench.<random>.req" unless the URL ends in "#subject". Server.Addr()
// returns "<broker URL>#<subject>", the string Dial needs: the part before
// the last '#' is what the caller connects to, the rest the subject it
// publishes requests on.
//
// Failures: a call that gets no reply (or, in jetstream, no publish ack) by
// its deadline returns an error wrapping drivers.ErrTimeout at that
// deadline. A publish still stuck in its socket write at the deadline (a
// stopped broker that reads nothing, large requests: nats.go's write waits
// up to its FlusherTimeout holding the connection's lock) closes the
// connection's socket, which fails the write; the call times out and the
// connection reconnects. While the broker is unreachable the client keeps reconnecting,
// buffers nothing (a publish fails at once) and fails the calls waiting on
// a lost connection, so a stopped broker makes calls fail within their
// timeout, never hang. A request nobody can take fails at once with an
// error wrapping nats.ErrNoResponders: in core when no responder is
// subscribed, in jetstream when no stream captures the subject (in
// core+stream-copy the stream itself is an interested party, so such calls
// time out).
package nats

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
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

// Variants.
const (
	Core           = "core"
	JetStream      = "jetstream"
	CoreStreamCopy = "core+stream-copy"
)

// StreamMaxBytes caps the streams of the jetstream and core+stream-copy
// variants. core+stream-copy discards its oldest copies past it, so a long
// run does not fill the disk; jetstream refuses new requests past it
// (a backlog that large is a failing cell, not one to hide).
const StreamMaxBytes = 256 << 20

// AckWait is how long the jetstream consumer waits for a responder's ack
// before it delivers a request again.
const AckWait = 30 * time.Second

// DefaultMaxPayload is the max_payload of the nats-servers rpcbench starts
// (internal/broker.NATSMaxPayload): Limits assumes it when it has no server
// to ask.
const DefaultMaxPayload = 8 << 20

// HeaderReserve is what Limits keeps out of max_payload for the header a
// jetstream request carries ("NATS/1.0\r\nRpcbench-Reply: <inbox>\r\n\r\n").
const HeaderReserve = 256

// ReplyHeader carries a jetstream request's reply subject; ErrorHeader
// carries the error of a responder that could not send its reply.
const (
	ReplyHeader = "Rpcbench-Reply"
	ErrorHeader = "Rpcbench-Error"
)

// queueGroup is the queue group every core responder subscription joins;
// durableName the jetstream variant's durable consumer.
const (
	queueGroup  = "rpcbench-responders"
	durableName = "rpcbench-responders"
)

// connectTimeout bounds one connection attempt when ctx has no earlier
// deadline.
const connectTimeout = 10 * time.Second

// reconnectWait is the pause between reconnect attempts after the broker
// went away.
const reconnectWait = 100 * time.Millisecond

// writeTimeout bounds every socket write of a connection (nats.go's
// FlusherTimeout, one minute by default): a broker that reads nothing for
// that long is treated as gone and the connection reconnects. A caller's
// own publish is cut off earlier, at its call's deadline (caller.guard),
// which closes the socket and so makes the connection reconnect.
const writeTimeout = 5 * time.Second

// Driver is the nats driver.
type Driver struct {
	mu       sync.Mutex
	payloads map[string]int // max_payload by broker URL
}

// New returns the nats driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "nats",
	Description: "NATS request-reply and RPC over JetStream through a nats-server (started by rpcbench unless --broker nats=URL)",
	Kind:        drivers.Broker,
	Broker:      "nats",
	Variants: []drivers.Variant{
		{Name: Core, Description: "core NATS request-reply: a shared reply inbox per caller connection, a queue group of responders; nothing stored"},
		{Name: JetStream, Description: "RPC over JetStream: the caller's publish waits for the file-backed work-queue stream's ack, responders consume through a durable pull consumer, reply, then ack"},
		{Name: CoreStreamCopy, Description: "core request-reply while a JetStream stream (NoAck, file storage) stores a copy of every request nobody consumes; the reply never waits for the store"},
	},
	Options: []drivers.Option{
		{Name: "connections", Default: "1", Description: "caller connections, each with its own reply inbox (1-256)"},
		{Name: "responders", Default: "1", Description: "responder connections (1-64): queue-group members (core, core+stream-copy) or subscribers of the durable consumer (jetstream); they share responder_concurrency"},
		{Name: "sync", Default: "default", Description: "jetstream and core+stream-copy: default (fsync every 2 min) or always (fsync every stored request before its publish ack). A nats-server setting: the brokers rpcbench starts are started with it; an external server must be configured with jetstream { sync_interval: always } itself"},
	},
	Libraries: []string{"github.com/nats-io/nats.go", "github.com/nats-io/nats-server/v2"},
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

type settings struct {
	variant     string
	connections int
	responders  int
	concurrency int
	sync        string
}

func (s settings) stored() bool { return s.variant != Core }

func parse(cfg drivers.Config) (settings, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return settings{}, err
	}
	var s settings
	var err error
	s.variant = cfg.Variant
	s.concurrency = cfg.Concurrency()
	if s.connections, err = drivers.IntOption(spec, cfg, "connections", 1, 256); err != nil {
		return s, err
	}
	if s.responders, err = drivers.IntOption(spec, cfg, "responders", 1, 64); err != nil {
		return s, err
	}
	s.sync = drivers.OptionValue(spec, cfg, "sync")
	if s.sync != "default" && s.sync != "always" {
		return s, fmt.Errorf("nats: option sync=%q: want default or always", s.sync)
	}
	return s, nil
}

// Transport is the nats driver configured for one unit.
type Transport struct {
	d   *Driver
	cfg drivers.Config
	st  settings
}

// Configure checks the variant and options.
func (d *Driver) Configure(cfg drivers.Config) (drivers.Transport, error) {
	st, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	return &Transport{d: d, cfg: drivers.Effective(spec, cfg), st: st}, nil
}

// Config is the effective configuration.
func (t *Transport) Config() drivers.Config { return t.cfg }

// ReportsAcks: the jetstream variant knows when the stream acknowledged a
// request (drivers.AckReporter).
func (t *Transport) ReportsAcks() bool { return t.st.variant == JetStream }

// RedeliveryAfter is how long the jetstream consumer waits before it hands
// a request a responder never acked to another (0 for the core variants:
// nothing is redelivered).
func (t *Transport) RedeliveryAfter() time.Duration {
	if t.st.variant == JetStream {
		return AckWait
	}
	return 0
}

// BrokerParams returns the broker.StartOptions.Params a broker started for
// the transport needs (nil when any will do): a stored variant with
// sync=always needs a server with per-message fsync, which NATS sets
// server-wide. The run asks for such a broker under its own key (e.g.
// "nats/sync=always").
func (t *Transport) BrokerParams() map[string]string {
	if !t.st.stored() || t.st.sync != "always" {
		return nil
	}
	return map[string]string{"sync": "always"}
}

// CheckTarget checks a responder's address: <broker URL>#<request subject>.
func (t *Transport) CheckTarget(addr string) error {
	url, subj := SplitAddr(addr)
	if url == "" || subj == "" {
		return fmt.Errorf("want <broker URL>#<request subject>, the address `rpcbench serve` printed")
	}
	return checkSubject(subj)
}

// Limits returns the largest request and reply the variant carries: the
// max_payload the server at broker announces (asked once per URL), or
// DefaultMaxPayload without a broker or when the server cannot be
// reached; a jetstream request keeps HeaderReserve bytes for its header.
func (t *Transport) Limits(ctx context.Context, broker string) drivers.Limits {
	mp := t.d.maxPayload(ctx, broker)
	l := drivers.Limits{MaxRequest: mp, MaxReply: mp}
	if t.st.variant == JetStream {
		l.MaxRequest = mp - HeaderReserve
	}
	return l
}

func (d *Driver) maxPayload(ctx context.Context, addr string) int {
	url, _ := SplitAddr(addr)
	if url == "" {
		return DefaultMaxPayload
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if mp, ok := d.payloads[url]; ok {
		return mp
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	nc, err := connect(ctx, url, "rpcbench-limits")
	if err != nil {
		return DefaultMaxPayload
	}
	mp := int(nc.MaxPayload())
	nc.Close()
	if d.payloads == nil {
		d.payloads = map[string]int{}
	}
	d.payloads[url] = mp
	return mp
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
		natsgo.FlusherTimeout(writeTimeout),
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
	addr string
	// stream is the stream Close deletes ("" when none, or when it is kept).
	stream   string
	conns    []*natsgo.Conn
	subs     []*natsgo.Subscription
	consumes []jetstream.ConsumeContext
	// sem admits responder_concurrency requests at once across all
	// responder connections.
	sem chan struct{}
	// mu is held for reading while a request is taken on and for writing
	// by Close, which then waits for the handlers in progress (wg).
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// Serve connects the responders to the broker at at.Broker (a URL,
// optionally with "#subject" to serve a given request subject) and
// subscribes them to the request subject: as one queue group (core,
// core+stream-copy), or to a durable consumer of the request stream
// (jetstream).
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	st := t.st
	url, subj := SplitAddr(at.Broker)
	if url == "" {
		return nil, errors.New("nats: no broker URL to serve on: start a broker or give --broker nats=nats://host:port")
	}
	given := subj != ""
	if !given {
		subj = "rpcbench." + rand.Text() + ".req"
	}
	if err := checkSubject(subj); err != nil {
		return nil, err
	}
	s := &server{addr: url + "#" + subj, sem: make(chan struct{}, st.concurrency)}
	fail := func(err error) (drivers.Server, error) {
		s.Close()
		return nil, err
	}
	var stream string
	for i := 0; i < st.responders; i++ {
		nc, err := connect(ctx, url, fmt.Sprintf("rpcbench-responder-%d", i))
		if err != nil {
			return fail(err)
		}
		s.conns = append(s.conns, nc)
		r := &responder{s: s, nc: nc, h: h}
		switch st.variant {
		case JetStream:
			js, err := jetstream.New(nc)
			if err != nil {
				return fail(fmt.Errorf("nats: jetstream: %w", err))
			}
			if i == 0 {
				if stream, err = s.createWorkQueue(ctx, js, subj, given, st.concurrency); err != nil {
					return fail(err)
				}
			}
			cons, err := js.Consumer(ctx, stream, durableName)
			if err != nil {
				return fail(fmt.Errorf("nats: consumer %s on %s: %w", durableName, stream, err))
			}
			cc, err := cons.Consume(r.handleJS,
				jetstream.PullMaxMessages(st.concurrency),
				jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {}))
			if err != nil {
				return fail(fmt.Errorf("nats: consume %s: %w", stream, err))
			}
			s.consumes = append(s.consumes, cc)
		default:
			if i == 0 && st.variant == CoreStreamCopy {
				if err := s.createStreamCopy(ctx, nc, subj); err != nil {
					return fail(err)
				}
			}
			sub, err := nc.QueueSubscribe(subj, queueGroup, r.handle)
			if err != nil {
				return fail(fmt.Errorf("nats: subscribe %s: %w", subj, err))
			}
			s.subs = append(s.subs, sub)
		}
		// The subscription is live on the server once it answers a flush.
		if err := flush(ctx, nc); err != nil {
			return fail(fmt.Errorf("nats: subscribe %s: %w", subj, err))
		}
	}
	return s, nil
}

// responder is one responder connection. A request without service time
// is answered inline on the subscription's goroutine (no hand-off, the
// fastest path); a request that asks for service time runs on its own
// goroutine so it holds up no other. At most responder_concurrency
// requests are in progress at once over all of a server's responders (the
// shared sem): when all are, a responder takes no further message until
// one finishes (the rest wait in the connection's pending buffer, or in the
// stream). So the responders can reach responder_concurrency requests at
// once, and never exceed it.
type responder struct {
	s   *server
	nc  *natsgo.Conn
	h   drivers.Handler
	out []byte
}

// begin takes a slot for one request; false when the server is closing.
// On true, s.mu is held for reading.
func (r *responder) begin() bool {
	r.s.sem <- struct{}{}
	r.s.mu.RLock()
	if r.s.closed {
		r.s.mu.RUnlock()
		<-r.s.sem
		return false
	}
	return true
}

// serve runs the handler for data and sends the reply to subject; done is
// run after the reply was sent (the jetstream ack). It is called with s.mu
// held for reading (begin) and releases it.
func (r *responder) serve(subject string, data []byte, done func()) {
	if wire.PeekServiceTime(data) > 0 {
		r.s.wg.Add(1)
		r.s.mu.RUnlock()
		go func() {
			defer r.s.wg.Done()
			r.reply(subject, r.h(data, nil))
			if done != nil {
				done()
			}
			<-r.s.sem
		}()
		return
	}
	r.out = r.h(data, r.out[:0])
	r.reply(subject, r.out)
	if done != nil {
		done()
	}
	r.s.mu.RUnlock()
	<-r.s.sem
}

// reply publishes out to subject. A failed publish because of a lost
// connection leaves the caller to time out or fail on its own disconnect;
// a reply too large for the server is replaced by an error the caller
// reports.
func (r *responder) reply(subject string, out []byte) {
	err := r.nc.Publish(subject, out)
	if errors.Is(err, natsgo.ErrMaxPayload) {
		m := natsgo.NewMsg(subject)
		m.Header.Set(ErrorHeader, fmt.Sprintf("reply of %d bytes exceeds the server's max_payload %d", len(out), r.nc.MaxPayload()))
		r.nc.PublishMsg(m)
	}
}

func (r *responder) handle(m *natsgo.Msg) {
	if m.Reply == "" {
		return
	}
	if !r.begin() {
		return
	}
	r.serve(m.Reply, m.Data, nil)
}

func (r *responder) handleJS(m jetstream.Msg) {
	reply := m.Headers().Get(ReplyHeader)
	if reply == "" {
		m.Term() // not an rpcbench request: never deliver it again
		return
	}
	if !r.begin() {
		// Closing: the request stays unacknowledged, for the next
		// responder (after AckWait).
		return
	}
	r.serve(reply, m.Data(), func() { m.Ack() })
}

func jetStreamErr(err error, what string) error {
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) || errors.Is(err, natsgo.ErrNoResponders) {
		return fmt.Errorf("nats: this variant needs a server with JetStream enabled: %w", err)
	}
	return fmt.Errorf("nats: %s: %w", what, err)
}

// streamName is the name of the jetstream variant's stream for a given
// subject (tokens joined by '_').
func streamName(subj string) string {
	return "RPCBENCH_" + strings.NewReplacer(".", "_", "/", "_", "\\", "_").Replace(subj)
}

// createWorkQueue makes the jetstream variant's stream and durable
// consumer. For a subject the responder was given, both are named after
// it, created or updated, and kept by Close; otherwise they are fresh and
// deleted by Close.
func (s *server) createWorkQueue(ctx context.Context, js jetstream.JetStream, subj string, keep bool, concurrency int) (string, error) {
	// named after the subject either way: a responder restarted on the
	// subject (a fault run's) finds the stream and consumer its killed
	// predecessor made, with the requests it never acked
	name := streamName(subj)
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "rpcbench requests on " + subj,
		Subjects:    []string{subj},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    StreamMaxBytes,
		Replicas:    1,
	})
	if err != nil {
		return "", jetStreamErr(err, "create stream for "+subj)
	}
	if !keep {
		s.stream = name
	}
	_, err = js.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{
		Durable:       durableName,
		Description:   "rpcbench responders",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxAckPending: concurrency,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return "", fmt.Errorf("nats: create consumer on %s: %w", name, err)
	}
	return name, nil
}

// createStreamCopy makes core+stream-copy's stream.
func (s *server) createStreamCopy(ctx context.Context, nc *natsgo.Conn, subj string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: jetstream: %w", err)
	}
	name := streamName(subj) + "_COPY"
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "rpcbench request copies on " + subj,
		Subjects:    []string{subj},
		Storage:     jetstream.FileStorage,
		NoAck:       true,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxBytes:    StreamMaxBytes,
		Replicas:    1,
	})
	if err != nil {
		return jetStreamErr(err, "create stream for "+subj)
	}
	s.stream = name
	return nil
}

// Addr is "<broker URL>#<request subject>", what Dial takes.
func (s *server) Addr() string { return s.addr }

// Close stops consuming, deletes the stream it made (when the broker is
// still there), unsubscribes, closes the responder connections and waits
// for handlers in progress.
func (s *server) Close() error {
	s.once.Do(func() {
		for _, cc := range s.consumes {
			cc.Stop()
		}
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
		}
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.wg.Wait()
		for _, nc := range s.conns {
			nc.Close()
		}
	})
	return s.err
}

// ---- caller ----

type client struct {
	subject   string
	jetstream bool
	conns     []*conn
	next      atomic.Uint32
}

// conn is one caller connection with its shared reply inbox.
type conn struct {
	nc *natsgo.Conn
	js jetstream.JetStream
	// raw is the current socket under nc (captured by its dialer), which a
	// caller's guard closes to cut off a stuck publish.
	raw atomic.Pointer[net.Conn]
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
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	st := t.st
	url, subj := SplitAddr(addr)
	if url == "" || subj == "" {
		return nil, fmt.Errorf("nats: address %q: want <broker URL>#<request subject>, the responder's address", addr)
	}
	if err := checkSubject(subj); err != nil {
		return nil, err
	}
	cl := &client{subject: subj, jetstream: st.variant == JetStream}
	for i := 0; i < st.connections; i++ {
		c := &conn{}
		nc, err := connect(ctx, url, fmt.Sprintf("rpcbench-caller-%d", i),
			natsgo.SetCustomDialer(&captureDialer{c: c, timeout: connectTimeout}),
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
		if cl.jetstream {
			if c.js, err = jetstream.New(nc); err != nil {
				cl.Close()
				return nil, fmt.Errorf("nats: jetstream: %w", err)
			}
		}
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

// captureDialer dials like nats.go does and remembers the socket.
type captureDialer struct {
	c       *conn
	timeout time.Duration
}

func (d *captureDialer) Dial(network, address string) (net.Conn, error) {
	raw, err := (&net.Dialer{Timeout: d.timeout}).Dial(network, address)
	if err == nil {
		d.c.raw.Store(&raw)
	}
	return raw, err
}

// cutWrite makes a socket write in progress on c fail now, and every later
// one until nats.go has reconnected: it closes the socket (a broker that
// has read nothing for a whole call timeout is treated as gone).
func (c *conn) cutWrite() {
	if raw := c.raw.Load(); raw != nil {
		(*raw).Close()
	}
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
		c.calls.Orphan()
		return
	}
	if len(m.Data) == 0 && m.Header != nil {
		switch {
		case m.Header.Get(ErrorHeader) != "":
			s.Fail(id, fmt.Errorf("nats: responder: %s", m.Header.Get(ErrorHeader)))
			return
		case m.Header.Get("Status") == "503":
			// A status message from the server instead of a reply.
			s.Fail(id, natsgo.ErrNoResponders)
			return
		case m.Header.Get("Status") != "":
			s.Fail(id, fmt.Errorf("nats: broker answered status %s %s", m.Header.Get("Status"), m.Header.Get("Description")))
			return
		}
	}
	if ok, _ := s.Deliver(id, func(buf []byte) ([]byte, error) { return append(buf, m.Data...), nil }); !ok {
		c.calls.Orphan()
	}
}

// Orphans counts the replies that arrived for calls no longer waiting
// (drivers.OrphanCounter).
func (cl *client) Orphans() int64 {
	var n int64
	for _, c := range cl.conns {
		n += c.calls.Orphans()
	}
	return n
}

// failAll fails every call waiting on this connection.
func (c *conn) failAll(err error) { c.calls.FailAll(err) }

func (cl *client) NewCaller() (drivers.Caller, error) {
	c := cl.conns[int(cl.next.Add(1)-1)%len(cl.conns)]
	s, _ := c.calls.Add()
	t := time.NewTimer(time.Hour)
	t.Stop()
	k := &caller{c: c, s: s, subject: cl.subject, timer: t,
		reply:    append(make([]byte, 0, len(c.prefix)+24), c.prefix+"."...),
		guardRan: make(chan struct{}, 1)}
	k.guard = time.AfterFunc(time.Hour, k.publishTooLong)
	k.guard.Stop()
	if cl.jetstream {
		k.msg = &natsgo.Msg{Subject: cl.subject, Header: natsgo.Header{ReplyHeader: make([]string, 1)}}
	}
	return k, nil
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
	// msg is the jetstream request, reused across calls.
	msg *natsgo.Msg
	// guard fires at the deadline of a publish still in progress
	// (publishing 1 -> 2): the publish is stuck in a socket write (the
	// broker reads nothing: stopped, or its buffers full), and nats.go
	// would wait up to writeTimeout, holding the connection's lock.
	guard      *time.Timer
	guardRan   chan struct{}
	publishing atomic.Int32
}

func (cl *caller) publishTooLong() {
	if cl.publishing.CompareAndSwap(1, 2) {
		cl.c.cutWrite()
	}
	cl.guardRan <- struct{}{}
}

// guarded runs publish, cutting off its socket write at deadline; it
// reports false when the guard fired.
func (cl *caller) guarded(deadline time.Time, publish func() error) (bool, error) {
	cl.publishing.Store(1)
	cl.guard.Reset(time.Until(deadline))
	err := publish()
	if !cl.guard.Stop() {
		<-cl.guardRan // it fired: let it finish before the next call
	}
	if !cl.publishing.CompareAndSwap(1, 0) {
		cl.publishing.Store(0)
		return false, err
	}
	return true, err
}

var errPublishStuck = fmt.Errorf("nats: %w: the publish was still blocked in its socket write at the deadline (the broker reads nothing)", drivers.ErrTimeout)

// noRetry makes a JetStream publish fail at once when no stream captures
// the subject (the library retries twice, 250 ms apart, by default).
var noRetry = jetstream.WithRetryAttempts(0)

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
	var err error
	var ok bool
	if cl.msg != nil {
		ok, err = cl.guarded(deadline, func() error { return cl.publishJS(ctx, deadline, req) })
	} else {
		ok, err = cl.guarded(deadline, func() error { return cl.c.nc.PublishRequest(cl.subject, string(cl.reply), req) })
		if err != nil {
			err = fmt.Errorf("nats: publish: %w", err)
		}
	}
	if !ok {
		s.Withdraw()
		return nil, errPublishStuck
	}
	if err != nil {
		if s.Withdraw() {
			return s.Result()
		}
		return nil, err
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
		if cl.msg != nil {
			// the stream had acked the publish
			return nil, fmt.Errorf("nats: %w: no reply by the deadline (%w)", drivers.ErrTimeout, drivers.ErrAcknowledged)
		}
		return nil, fmt.Errorf("nats: %w: no reply by the deadline", drivers.ErrTimeout)
	case <-ctx.Done():
		cl.timer.Stop()
		if s.Withdraw() {
			return s.Result()
		}
		return nil, ctx.Err()
	}
}

// publishJS publishes a jetstream request and waits for the stream's ack,
// until deadline.
func (cl *caller) publishJS(ctx context.Context, deadline time.Time, req []byte) error {
	cl.msg.Header[ReplyHeader][0] = string(cl.reply)
	cl.msg.Data = req
	dctx, cancel := context.WithDeadline(ctx, deadline)
	_, err := cl.c.js.PublishMsg(dctx, cl.msg, noRetry)
	cancel()
	cl.msg.Data = nil
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, natsgo.ErrTimeout):
		return fmt.Errorf("nats: %w: no publish ack from the stream by the deadline", drivers.ErrTimeout)
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("nats: no stream captures %s: %w", cl.subject, natsgo.ErrNoResponders)
	default:
		return fmt.Errorf("nats: jetstream publish: %w", err)
	}
}
