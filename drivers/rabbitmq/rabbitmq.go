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
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rpcbench/rpcbench/drivers"
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
	// It wraps drivers.ErrNotSent: nothing of the call left the caller.
	ErrNotConnected = fmt.Errorf("rabbitmq: not connected to the broker (%w)", drivers.ErrNotSent)
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

// ReportsAcks: the variants with publisher confirms know when the broker
// acknowledged a request (drivers.AckReporter).
func (t *Transport) ReportsAcks() bool { return t.o.v.confirms() }
