// Package activemq is RPC over ActiveMQ Classic (5.x) with STOMP 1.2, on
// go-stomp's frame codec (github.com/go-stomp/stomp/v3/frame), in the JMS
// request-reply pattern: a request is SENT to the request queue with
// reply-to (the caller connection's temporary queue) and correlation-id;
// the responder SENDs the reply to the reply-to destination it was given
// (the broker rewrites /temp-queue/NAME to /remote-temp-queue/ID:...) with
// the same correlation-id, so any JMS responder that answers
// JMSReplyTo with JMSCorrelationID serves rpcbench callers.
//
// Why not stomp.Conn: in go-stomp v3.1.5 Conn.Send holds the connection's
// lock while it waits for a RECEIPT (so requests with receipts on one
// connection go one at a time, and Ack and Subscribe wait behind them),
// Send takes no context or deadline (it blocks up to MsgSendTimeout, 10 s,
// on a broker that stopped reading), and every received frame crosses
// three goroutine hand-offs (readLoop, processLoop, the subscription's
// loop) before the caller sees it. This package keeps go-stomp's codec and
// does the connection itself: one reader goroutine per connection that
// routes replies and receipts to the waiting call by id, and writes by the
// sending goroutine, combined under contention (conn.go).
//
// Serve subscribes `responders` connections to the request queue
// (/queue/rpcbench.req.<random>, or the queue given as "URL#QUEUE" by a
// fault run's restarted responder) with ack:client-individual and
// activemq.prefetchSize `prefetch` (auto: the responder concurrency split
// over the responders): a request is ACKed after its reply is sent, so a
// killed responder's unanswered requests are delivered again to the next.
// A request without service time is answered inline by the connection's
// reader (reply and ACK in one write); one with service time runs on a
// goroutine of its own. Every request in hand holds one of
// drivers.Config.Concurrency() slots shared by the responders: the
// responder reaches that many at once and never more. Server.Addr is
// "stomp://HOST:PORT#QUEUE".
//
// Dial opens `connections` caller connections, shared round-robin by the
// callers; each subscribes its own temporary queue (/temp-queue/rep, ack
// auto: one per connection, deleted by the broker when the connection
// closes) and routes its replies by correlation id. A call ends when its
// reply (and, persistent, its receipt) has come, or at its deadline,
// whatever the broker does: a write still blocked at the deadline fails
// and closes its connection.
//
// Variants (what is acknowledged before the reply: README's durability
// table):
//   - transient: non-persistent requests (STOMP's default on ActiveMQ), no
//     receipt: nothing is written to disk on the way.
//   - persistent: persistent:true and a receipt per request, the analogue
//     of a publisher confirm; the call waits for both the receipt and the
//     reply. The broker sends the receipt once KahaDB has stored the
//     request (journal write, fsynced per batch by default) or, as
//     concurrentStoreAndDispatchQueues is on by default, once the
//     responder has acknowledged it first, in which case the store is
//     cancelled and the request is never written. Replies go to a
//     temporary queue, non-persistent: not stored.
//
// Connection loss: calls in flight fail with ErrConnectionLost (wrapping
// drivers.ErrAcknowledged after a receipt), new calls wait briefly and
// fail with ErrNotConnected (drivers.ErrNotSent), and both sides redial in
// the background (backoff up to 2 s) until closed; the responder
// subscribes again. Broker ERROR frames without a receipt (e.g. for a
// reply to a temporary queue whose caller is gone) are counted, not
// fatal; if the broker closes the connection after one, it is redialled.
//
// Limits: requests and replies up to MaxMessageSize (8 MiB), under
// ActiveMQ's STOMP maxDataLength (100 MB) and the memory limit of the
// broker rpcbench starts (70% of a 512 MB heap).
package activemq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rpcbench/rpcbench/drivers"
)

// Name is the driver's name.
const Name = "activemq"

// Module is the client library the results record.
const Module = "github.com/go-stomp/stomp/v3"

// MaxMessageSize is the largest request and reply (wire.Call bytes) the
// driver carries.
const MaxMessageSize = 8 << 20

// Variants.
const (
	Transient  = "transient"
	Persistent = "persistent"
)

// errorHeader carries the error of a responder that could not send the
// real reply.
const errorHeader = "rpcbench-error"

// Errors calls fail with besides timeouts (transport errors).
var (
	// ErrConnectionLost: the connection carrying the call closed before
	// its reply arrived.
	ErrConnectionLost = errors.New("activemq: connection lost")
	// ErrNotConnected: no connection to the broker when the call started;
	// it wraps drivers.ErrNotSent: nothing of the call left the caller.
	ErrNotConnected = fmt.Errorf("activemq: not connected to the broker (%w)", drivers.ErrNotSent)
	// ErrRefused: the broker answered the request with an ERROR frame.
	ErrRefused = errors.New("activemq: the broker refused the request")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("activemq: client closed")
)

var spec = drivers.Spec{
	Name:        Name,
	Description: "RPC over ActiveMQ Classic (STOMP 1.2, go-stomp's codec), JMS request-reply: request queue, a temporary reply queue per caller connection, reply-to and correlation-id",
	Kind:        drivers.Broker,
	Broker:      "activemq",
	Variants: []drivers.Variant{
		{Name: Transient, Description: "non-persistent requests, no receipt: nothing is written to disk before the reply"},
		{Name: Persistent, Description: "persistent:true with a RECEIPT per request (the call waits for the receipt and the reply): KahaDB has stored the request (journal, fsynced per batch) before the receipt, unless the responder acknowledged it first (concurrent store and dispatch: then it is never written)"},
	},
	Options: []drivers.Option{
		{Name: "connections", Default: "1", Description: "caller connections per client (1-64), shared round-robin by the callers, each with its own temporary reply queue"},
		{Name: "prefetch", Default: "auto", Description: "activemq.prefetchSize of each responder subscription (1-65535; auto: the responder concurrency split over the responders): unacknowledged requests the broker hands a responder connection at once"},
		{Name: "responders", Default: "1", Description: "responder connections (1-64), each subscribed to the request queue"},
	},
	Libraries: []string{Module},
	// a JVM broker runs several times slower until its JIT has compiled
	// the hot paths
	BrokerWarmup: true,
}

// Driver is the activemq driver.
type Driver struct{}

// New returns the driver.
func New() drivers.Driver { return Driver{} }

// Spec describes the driver.
func (Driver) Spec() drivers.Spec { return spec }

type options struct {
	variant     string
	conns       int
	responders  int
	prefetch    int // 0: auto
	concurrency int
}

// prefetchOf is responder i's prefetch.
func (o options) prefetchOf(i int) int {
	if o.prefetch > 0 {
		return o.prefetch
	}
	n := o.concurrency / o.responders
	if i < o.concurrency%o.responders {
		n++
	}
	return max(n, 1)
}

func parse(cfg drivers.Config) (options, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return options{}, err
	}
	o := options{variant: cfg.Variant, concurrency: cfg.Concurrency()}
	var err error
	if o.conns, err = drivers.IntOption(spec, cfg, "connections", 1, 64); err != nil {
		return o, err
	}
	if o.responders, err = drivers.IntOption(spec, cfg, "responders", 1, 64); err != nil {
		return o, err
	}
	if drivers.OptionValue(spec, cfg, "prefetch") != "auto" {
		if o.prefetch, err = drivers.IntOption(spec, cfg, "prefetch", 1, 65535); err != nil {
			return o, fmt.Errorf("%w (or auto)", err)
		}
	}
	if o.concurrency > 1<<20 {
		return o, fmt.Errorf("%s: responder concurrency %d: at most %d", Name, o.concurrency, 1<<20)
	}
	return o, nil
}

// Transport is the activemq driver configured for one unit.
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

// BrokerParams: any ActiveMQ broker will do.
func (*Transport) BrokerParams() map[string]string { return nil }

// Limits are MaxMessageSize both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessageSize, MaxReply: MaxMessageSize}
}

// ReportsAcks: the persistent variant knows when the broker acknowledged
// (stored) a request: its receipt (drivers.AckReporter).
func (t *Transport) ReportsAcks() bool { return t.o.variant == Persistent }

// CheckTarget checks a responder's address: stomp://HOST:PORT#QUEUE.
func (*Transport) CheckTarget(addr string) error {
	_, queue, err := parseAddr(addr)
	if err != nil {
		return err
	}
	if queue == "" {
		return fmt.Errorf("no request queue: want stomp://HOST:PORT#QUEUE, the address `rpcbench serve` printed")
	}
	return nil
}

// endpoint is a parsed broker URL.
type endpoint struct {
	raw             string // the URL as given, without the fragment
	hostport        string
	login, passcode string
}

// parseAddr splits "stomp://[user:pass@]HOST:PORT[#QUEUE]". Errors never
// repeat the password.
func parseAddr(addr string) (endpoint, string, error) {
	raw, queue, _ := strings.Cut(strings.TrimSpace(addr), "#")
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "stomp" {
		return endpoint{}, "", fmt.Errorf("%s: address is not stomp://HOST:PORT[#QUEUE]", Name)
	}
	if err := drivers.CheckHostPort(u.Host, true); err != nil {
		return endpoint{}, "", fmt.Errorf("%s: address %s: %v: want stomp://HOST:PORT[#QUEUE]", Name, u.Host, err)
	}
	e := endpoint{raw: raw, hostport: u.Host}
	if u.User != nil {
		e.login = u.User.Username()
		e.passcode, _ = u.User.Password()
	}
	if strings.ContainsAny(queue, "/ \n:") {
		return endpoint{}, "", fmt.Errorf("%s: queue %q: want a plain queue name", Name, queue)
	}
	return e, queue, nil
}
