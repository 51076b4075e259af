// Package rocketmq is RPC over RocketMQ request-reply, with
// github.com/apache/rocketmq-client-go/v2 v2.1.2 against a real 4.6+/5.x
// broker (name server + broker, remoting protocol; not the 5.x proxy).
//
// Caller: each Caller makes a synchronous producer.Request per call, with a
// new message per call; a client holds one or more producers (each its own
// client instance and broker connection) shared by its callers. Responder:
// a push consumer on the request topic runs the handler on up to
// responder_concurrency goroutines (drivers.Config.Concurrency, the push
// consumer's ConsumeGoroutineNums, a per-topic semaphore in the library:
// it reaches that many requests at once and never more), and a separate
// reply producer sends each reply (consumer.CreateReplyMessage + SendSync);
// the broker pushes the reply to the caller's connection.
//
// Durability: the broker acknowledges a request (the send result Request
// waits for before it waits for the reply) once it is in the commit log:
// written to the page cache under async-flush, flushed to disk (the
// group-commit flush waited for, syncFlushTimeout 5 s) under sync-flush.
// The reply goes through the broker too, which pushes it to the caller's
// connection first and only then stores it in the commit log
// (ReplyMessageProcessor, storeReplyMessageEnable, default true): the
// reply never waits for a flush.
//
// Limits: the broker refuses a message whose body exceeds its
// maxMessageSize (MessageStoreConfig, 4 MiB by default; the brokers
// rpcbench starts keep the default), so requests and replies are limited
// to MaxMessageSize bytes. The library does not check it and hides the
// broker's refusal of a request until Request times out (defect 4), so Call
// refuses a larger request at once, and the responder answers a request
// whose reply would be larger with an error reply the caller reports.
//
// Addresses: the driver's endpoint (drivers.Config.Addr, the broker URL) is
// the name server list, "HOST:PORT" or "HOST:PORT;HOST:PORT" (an optional
// "rocketmq://" prefix is ignored). Serve makes a request topic of its own;
// Server.Addr is "NAMESRVS#TOPIC", e.g. "127.0.0.1:9876#rpcbench_req_1f2e3d",
// which Dial takes.
//
// Workarounds for the known defects of v2.1.2 (docs/brokers.md),
// each marked "defect N" in the code:
//  1. CreateReplyMessage drops the body: build it with a nil body, then set
//     Body (replyMessage).
//  2. RequestAsync runs callbacks twice and times out late: only sync
//     Request is used, from N goroutines.
//  3. an async send error nil-dereferences in a library goroutine: a
//     primitive.PanicHandler is installed (counted by RecoveredPanics).
//  4. a failed send still waits out the whole timeout: every call is bounded
//     by its own deadline and reported as a timeout then; failures the
//     library reports synchronously (refused connection, no route, closed
//     client) return at once as transport errors.
//  5. Request ignores retries and hard-codes a 3 s send timeout: the call's
//     deadline bounds it regardless.
//  6. the consumer cannot start before its topic exists: Serve creates the
//     topic on every master through rmqadmin (not the library's admin, which
//     shares a client instance) and waits for its route; every producer and
//     consumer gets its own instance name.
//  7. replies are lost before the caller's first heartbeat: Dial warms every
//     producer up with requests until one is answered (marked with
//     WarmupProperty: the responder echoes them without the handler).
//  8. a new group replays old requests: one fresh topic and group per Serve,
//     consumed from the first offset; Close deletes them.
//  9. interceptors break Request: none are used.
//  10. every reply logs at Info: the library's logger is replaced by a quiet
//     one unless ROCKETMQ_GO_LOG_LEVEL is set.
//  11. handler parallelism is the push consumer's ConsumeGoroutineNums
//     (responder_concurrency); never the orderly consumer.
//  12. TTL is written in whole seconds and the message is mutated: the wait
//     given to Request is rounded up to whole seconds (never a TTL of 0) and
//     every call sends a new message with its own copy of the bytes.
//
// Two more defects cost CPU and latency on every call and have no
// workaround, because the library offers no hook for them (rpcbench
// measures the library as it is; `make bench-rocketmq-patched` runs the
// benchmarks with both patched, drivers/rocketmq/testdata/clientpatch):
//  13. Request asks the name server for the topic's route on every call
//     (CheckTopicRouteHasTopic in prepareSendRequest), a synchronous round
//     trip before the request is sent.
//  14. every remoting frame (requests, replies, pulls, acknowledgements) is
//     written with four unbuffered writes: four syscalls and four TCP
//     segments for the broker to read.
//
// On a 2-core machine that runs the broker too, concurrency 64 keeps every
// core busy at about 700-1,300 calls/s, 2.3-3x the concurrency-1 rate
// (BenchmarkConcurrency reports the CPU split); with both defects patched
// the CPU per call drops by a third to a half and the machine still
// saturates, at 1,000-2,000 calls/s.
package rocketmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/rmqadmin"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// Module is the client library the results record.
const Module = "github.com/apache/rocketmq-client-go/v2"

// MaxMessageSize is the largest request or reply body (the wire.Call bytes)
// the driver carries: the broker's default maxMessageSize, 4 MiB.
const MaxMessageSize = 4 << 20

// ErrorProperty is the user property of an error reply: the responder could
// not send the real one. WarmupProperty marks Dial's warm-up requests, which
// the responder echoes without running the handler (a stalled or slow
// handler must not keep a client from dialling).
const (
	ErrorProperty  = "RPCBENCH_ERROR"
	WarmupProperty = "RPCBENCH_WARMUP"
)

// Variants: the broker's flushDiskType.
const (
	AsyncFlush = "async-flush"
	SyncFlush  = "sync-flush"
)

// Driver is the rocketmq driver.
type Driver struct{}

// New returns the rocketmq driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "rocketmq",
	Description: "RocketMQ request-reply (rocketmq-client-go v2.1.2): sync Request per caller, push consumer + reply producer responder",
	Kind:        drivers.Broker,
	Broker:      "rocketmq",
	Variants: []drivers.Variant{
		{Name: AsyncFlush, Description: "broker flushDiskType=ASYNC_FLUSH: a message is acknowledged once in the page cache"},
		{Name: SyncFlush, Description: "broker flushDiskType=SYNC_FLUSH: a message is acknowledged once flushed to disk"},
	},
	Options: []drivers.Option{
		{Name: "queues", Default: "8", Description: "read and write queues of the request topic (1-64)"},
		{Name: "producers", Default: "1", Description: "caller producers, each its own client instance and broker connection, shared round-robin by the callers (1-64)"},
		{Name: "pull-batch", Default: "32", Description: "messages the push consumer pulls at most per request (1-1024)"},
		{Name: "compress", Default: "false", Description: "let the client compress bodies over 4 KiB (the library's default); off, bodies are sent as they are"},
	},
	Libraries: []string{Module},
	// a JVM broker runs several times slower until its JIT has compiled
	// the hot paths
	BrokerWarmup: true,
}

// BrokerParams tells the run which broker a variant needs: the starter's
// params, {"flush": "ASYNC_FLUSH"} or {"flush": "SYNC_FLUSH"} (the run
// starts one broker per distinct params).
func (t *Transport) BrokerParams() map[string]string {
	return map[string]string{"flush": FlushDiskType(t.cfg.Variant)}
}

// FlushDiskType is the broker flushDiskType a variant needs ("" is the
// default variant, async-flush).
func FlushDiskType(variant string) string {
	if variant == SyncFlush {
		return "SYNC_FLUSH"
	}
	return "ASYNC_FLUSH"
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Limits are the broker's default maxMessageSize for requests and replies.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessageSize, MaxReply: MaxMessageSize}
}

type options struct {
	handlers, queues, producers, pullBatch int
	compress                               bool
}

// maxHandlers is the library's bound on ConsumeGoroutineNums.
const maxHandlers = 100000

func parseOptions(cfg drivers.Config) (options, error) {
	var o options
	var err error
	if o.handlers = cfg.Concurrency(); o.handlers > maxHandlers {
		return o, fmt.Errorf("rocketmq: responder concurrency %d: the push consumer runs at most %d handler goroutines", o.handlers, maxHandlers)
	}
	if o.queues, err = drivers.IntOption(spec, cfg, "queues", 1, 64); err != nil {
		return o, err
	}
	if o.producers, err = drivers.IntOption(spec, cfg, "producers", 1, 64); err != nil {
		return o, err
	}
	if o.pullBatch, err = drivers.IntOption(spec, cfg, "pull-batch", 1, 1024); err != nil {
		return o, err
	}
	o.compress, err = drivers.BoolOption(spec, cfg, "compress")
	return o, err
}

// Transport is the rocketmq driver configured for one unit.
type Transport struct {
	cfg drivers.Config
	o   options
}

// Configure checks the variant and options.
func (*Driver) Configure(cfg drivers.Config) (drivers.Transport, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return nil, err
	}
	o, err := parseOptions(cfg)
	if err != nil {
		return nil, err
	}
	return &Transport{cfg: drivers.Effective(spec, cfg), o: o}, nil
}

// Config is the effective configuration.
func (t *Transport) Config() drivers.Config { return t.cfg }

// CheckTarget checks a responder's address: NAMESRV[;NAMESRV]#TOPIC.
func (*Transport) CheckTarget(addr string) error {
	_, topic, err := ParseAddr(addr)
	if err != nil {
		return err
	}
	if topic == "" {
		return fmt.Errorf("no request topic: want NAMESRV:PORT#TOPIC, the address `rpcbench serve` printed")
	}
	return nil
}

// ParseAddr splits a Server.Addr ("NAMESRV[;NAMESRV]#TOPIC", with any
// routes: parseRoutes) into the name servers and the topic. The topic is
// empty when addr has none.
func ParseAddr(addr string) (namesrvs []string, topic string, err error) {
	addr, _, err = drivers.SplitVia(strings.TrimPrefix(strings.TrimSpace(addr), "rocketmq://"))
	if err != nil {
		return nil, "", fmt.Errorf("rocketmq: %v", err)
	}
	ns, topic, _ := strings.Cut(addr, "#")
	for _, a := range strings.FieldsFunc(ns, func(r rune) bool { return r == ';' || r == ',' }) {
		if !strings.Contains(a, ":") {
			return nil, "", fmt.Errorf("rocketmq: name server %q: want HOST:PORT", a)
		}
		namesrvs = append(namesrvs, a)
	}
	if len(namesrvs) == 0 {
		return nil, "", fmt.Errorf("rocketmq: address %q: want NAMESRV_HOST:PORT[#TOPIC]", addr)
	}
	return namesrvs, topic, nil
}

// BrokerAddrs are the name servers of url and the addresses of the
// brokers they know (drivers.Rerouter): the clients connect to each.
func (*Transport) BrokerAddrs(ctx context.Context, url string) ([]string, error) {
	namesrvs, _, err := ParseAddr(url)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := rmqadmin.ClusterInfo(cctx, namesrvs[0])
	if err != nil {
		return nil, fmt.Errorf("rocketmq: %w", err)
	}
	addrs := slices.Clone(namesrvs)
	for _, b := range c.Brokers {
		for _, a := range b.BrokerAddrs {
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, nil
}

// Reroute is url with routes via (drivers.Rerouter). The library has no
// dialer to redirect: with routes, every producer and consumer reaches
// each name server through a relay of the driver's own
// (rmqadmin.Relay), which connects to the name server where via says and
// puts the broker addresses via names in its answers, so that the
// library connects to the brokers there too.
func (*Transport) Reroute(url string, via map[string]string) (string, error) {
	if _, _, err := ParseAddr(url); err != nil {
		return "", err
	}
	return drivers.WithVia(url, via), nil
}

// libraryNamesrvs are the name servers the library is to use for addr:
// its own, or with routes (Reroute) a relay in front of each, with what
// closes them.
func libraryNamesrvs(addr string, namesrvs []string) ([]string, func(), error) {
	_, via, err := drivers.SplitVia(strings.TrimSpace(addr))
	if err != nil || len(via) == 0 {
		return namesrvs, func() {}, err
	}
	var relays []*rmqadmin.Relay
	closeAll := func() {
		for _, r := range relays {
			r.Close()
		}
	}
	var out []string
	for _, ns := range namesrvs {
		r, err := rmqadmin.StartRelay(drivers.Route(via, ns), via)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		relays = append(relays, r)
		out = append(out, r.Addr())
	}
	return out, closeAll, nil
}

// ---- process-wide library settings ----

var setupOnce sync.Once

// recovered counts panics the library raised in its goroutines (defect 3).
var recovered atomic.Int64

// RecoveredPanics is how many panics in rocketmq-client-go's goroutines the
// driver's primitive.PanicHandler has caught (each would otherwise have
// crashed the process), since the process started.
func RecoveredPanics() int64 { return recovered.Load() }

func setup() {
	setupOnce.Do(func() {
		// defect 3: without a PanicHandler, WithRecover re-panics and an
		// async send error (nil response) kills the process.
		if primitive.PanicHandler == nil {
			primitive.PanicHandler = func(any) { recovered.Add(1) }
		}
		// defect 10: Info logs for every reply, and logrus' Fatal exits.
		if os.Getenv("ROCKETMQ_GO_LOG_LEVEL") == "" {
			rlog.SetLogger(quietLogger{})
		}
	})
}

// quietLogger drops the library's logs (rlog.Logger).
type quietLogger struct{}

func (quietLogger) Debug(string, map[string]any)   {}
func (quietLogger) Info(string, map[string]any)    {}
func (quietLogger) Warning(string, map[string]any) {}
func (quietLogger) Error(string, map[string]any)   {}
func (quietLogger) Fatal(string, map[string]any)   {}
func (quietLogger) Level(string)                   {}
func (quietLogger) OutputPath(string) error        { return nil }

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---- responder ----

type server struct {
	addr     string
	namesrvs []string
	// closeRelays closes the name server relays of a rerouted broker
	// (libraryNamesrvs)
	closeRelays func()
	topic       string
	group       string
	masters     []string
	cons        rmq.PushConsumer
	replier     rmq.Producer
	h           drivers.Handler
	ctx         context.Context
	cancel      context.CancelFunc
	bufs        sync.Pool
	inflight    sync.WaitGroup
	mu          sync.Mutex // orders inflight.Add against Close
	closed      atomic.Bool
	// replyErrs counts replies that could not be sent; lastReplyErr is the
	// latest such error.
	replyErrs    atomic.Int64
	lastReplyErr atomic.Pointer[error]
	closeOnce    sync.Once
	closeErr     error
}

// Serve creates a fresh request topic on the cluster whose name servers
// are at.Broker (or takes over the one given as "#topic"), starts a reply
// producer and a push consumer on it, and answers every request with h.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	o := t.o
	namesrvs, given, err := ParseAddr(at.Broker)
	if err != nil {
		return nil, err
	}
	setup()
	masters, err := checkCluster(ctx, namesrvs, t.cfg.Variant)
	if err != nil {
		return nil, err
	}
	id := newID()
	// "#rpcbench_req_ID" serves a given request topic with the consumer
	// group named after it: a responder restarted in a fault run resumes
	// from the offsets its killed predecessor committed
	if rest, ok := strings.CutPrefix(given, "rpcbench_req_"); ok && rest != "" {
		id = rest
	} else if given != "" {
		return nil, fmt.Errorf("rocketmq: serve on topic %q: only topics rpcbench made (rpcbench_req_ID) can be served again", given)
	}
	lib, closeRelays, err := libraryNamesrvs(at.Broker, namesrvs)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: %w", err)
	}
	_, via, _ := drivers.SplitVia(strings.TrimSpace(at.Broker))
	s := &server{
		namesrvs:    namesrvs,
		closeRelays: closeRelays,
		topic:       "rpcbench_req_" + id,
		group:       "rpcbench_resp_" + id,
		masters:     masters,
		h:           h,
	}
	s.addr = drivers.WithVia(strings.Join(namesrvs, ";")+"#"+s.topic, via)
	// defect 6 and 8: a fresh topic, made before the consumer starts.
	for _, m := range masters {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := rmqadmin.CreateTopic(cctx, m, s.topic, o.queues)
		cancel()
		if err != nil {
			s.dropTopic()
			closeRelays()
			return nil, fmt.Errorf("rocketmq: %w", err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = rmqadmin.WaitRoute(wctx, namesrvs[0], s.topic)
	cancel()
	if err != nil {
		s.dropTopic()
		closeRelays()
		return nil, fmt.Errorf("rocketmq: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.replier, err = rmq.NewProducer(
		producer.WithNameServer(lib),
		producer.WithGroupName("rpcbench_reply_"+id),
		producer.WithInstanceName("rpcbench-reply-"+id),
		producer.WithRetry(1),
		producer.WithSendMsgTimeout(3*time.Second),
		producer.WithCompressMsgBodyOverHowmuch(compressOver(o.compress)),
	)
	if err == nil {
		err = s.replier.Start()
	}
	if err != nil {
		s.cancel()
		s.dropTopic()
		closeRelays()
		return nil, fmt.Errorf("rocketmq: reply producer: %w", err)
	}
	s.cons, err = rmq.NewPushConsumer(
		consumer.WithNameServer(lib),
		consumer.WithGroupName(s.group),
		consumer.WithInstance("rpcbench-resp-"+id),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		// defect 11: parallelism is ConsumeGoroutineNums, never orderly.
		consumer.WithConsumeGoroutineNums(o.handlers),
		consumer.WithPullBatchSize(int32(o.pullBatch)),
		consumer.WithConsumeMessageBatchMaxSize(1),
	)
	if err == nil {
		err = s.cons.Subscribe(s.topic, consumer.MessageSelector{}, s.consume)
	}
	if err == nil {
		err = s.cons.Start()
	}
	if err != nil {
		s.replier.Shutdown()
		s.cancel()
		s.dropTopic()
		closeRelays()
		return nil, fmt.Errorf("rocketmq: push consumer: %w", err)
	}
	return s, nil
}

func compressOver(compress bool) int {
	if compress {
		return 4 << 10 // the library's default
	}
	return 1 << 30
}

// checkCluster finds the cluster's masters and checks that each flushes the
// way the variant says, so that a cell labelled sync-flush ran on disk.
func checkCluster(ctx context.Context, namesrvs []string, variant string) ([]string, error) {
	var last error
	for _, ns := range namesrvs {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := rmqadmin.ClusterInfo(cctx, ns)
		cancel()
		if err != nil {
			last = err
			continue
		}
		masters := c.Masters()
		if len(masters) == 0 {
			last = fmt.Errorf("name server %s knows no master broker", ns)
			continue
		}
		want := FlushDiskType(variant)
		for _, m := range masters {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			conf, err := rmqadmin.BrokerConfig(cctx, m)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("rocketmq: %w", err)
			}
			if got := conf["flushDiskType"]; got != want {
				return nil, fmt.Errorf("rocketmq: variant %s needs brokers with flushDiskType=%s; broker %s has %q (start one with params flush=%s, or pick the matching variant)", variant, want, m, got, want)
			}
		}
		return masters, nil
	}
	return nil, fmt.Errorf("rocketmq: no usable name server in %v: %w", namesrvs, last)
}

func (s *server) Addr() string { return s.addr }

// ReplyErrors is how many replies the responder could not build or send
// (each one a caller's timeout).
func (s *server) ReplyErrors() int64 { return s.replyErrs.Load() }

// LastReplyError is the latest of those errors, or nil.
func (s *server) LastReplyError() error {
	if e := s.lastReplyErr.Load(); e != nil {
		return *e
	}
	return nil
}

// replyMessage builds the reply to req carrying body (defect 1: the
// library's CreateReplyMessage parses its body argument as properties and
// drops it).
func replyMessage(req *primitive.MessageExt, body []byte) (*primitive.Message, error) {
	m, err := consumer.CreateReplyMessage(req, nil)
	if err != nil {
		return nil, err
	}
	m.Body = body
	return m, nil
}

func (s *server) consume(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	// Close sets closed under mu before it waits for inflight: no Add
	// after that Wait began.
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return consumer.ConsumeSuccess, nil
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	for _, req := range msgs {
		if s.closed.Load() {
			break
		}
		bp, _ := s.bufs.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		var out []byte
		if req.GetProperty(WarmupProperty) != "" {
			out = append((*bp)[:0], req.Body...)
		} else {
			out = s.h(req.Body, (*bp)[:0])
		}
		var m *primitive.Message
		var err error
		if len(out) > MaxMessageSize {
			// The broker would refuse it: tell the caller why instead.
			msg := fmt.Sprintf("reply of %d bytes exceeds the broker's maxMessageSize %d", len(out), MaxMessageSize)
			m, err = replyMessage(req, []byte(msg))
			if err == nil {
				m.WithProperty(ErrorProperty, msg)
			}
		} else {
			m, err = replyMessage(req, out)
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			_, err = s.replier.SendSync(ctx, m)
			cancel()
		}
		if err != nil {
			s.replyErrs.Add(1)
			s.lastReplyErr.Store(&err)
		}
		*bp = out
		s.bufs.Put(bp)
	}
	// Never ask for redelivery: a lost reply is the caller's timeout.
	return consumer.ConsumeSuccess, nil
}

// Close stops the consumer and the reply producer and deletes the topic and
// group. It waits at most 15 s for the library to shut down.
func (s *server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		s.mu.Unlock()
		done := make(chan error, 1)
		go func() {
			err := s.cons.Shutdown()
			// Replies still being sent are abandoned.
			s.cancel()
			s.inflight.Wait()
			if e := s.replier.Shutdown(); err == nil {
				err = e
			}
			done <- err
		}()
		select {
		case s.closeErr = <-done:
		case <-time.After(15 * time.Second):
			s.cancel()
			s.closeErr = errors.New("rocketmq: responder shutdown did not finish within 15 s")
		}
		s.dropTopic()
		if s.closeRelays != nil {
			s.closeRelays()
		}
	})
	return s.closeErr
}

// dropTopic deletes the request topic and the consumer group, best effort
// (the broker may be gone).
func (s *server) dropTopic() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range s.masters {
		rmqadmin.DeleteGroup(ctx, m, s.group)
		rmqadmin.DeleteTopicInBroker(ctx, m, s.topic)
	}
	for _, ns := range s.namesrvs {
		rmqadmin.DeleteTopicInNamesrv(ctx, ns, s.topic)
	}
}

// ---- caller ----

type client struct {
	topic string
	// closeRelays closes the name server relays of a rerouted broker
	// (libraryNamesrvs)
	closeRelays func()
	producers   []rmq.Producer
	next        atomic.Uint32
	closed      atomic.Bool
	closeOnce   sync.Once
	closeErr    error
}

// WarmupTimeout bounds Dial's warm-up (defect 7).
const WarmupTimeout = 60 * time.Second

// Dial starts the caller producers for the responder at addr
// ("NAMESRVS#TOPIC") and warms each up until a request is answered.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	o := t.o
	namesrvs, topic, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if topic == "" {
		return nil, fmt.Errorf("rocketmq: address %q names no request topic (want the responder's Addr, NAMESRV#TOPIC)", addr)
	}
	setup()
	lib, closeRelays, err := libraryNamesrvs(addr, namesrvs)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: %w", err)
	}
	cl := &client{topic: topic, closeRelays: closeRelays}
	for i := 0; i < o.producers; i++ {
		id := newID()
		// No interceptor or trace on a request producer (defect 9).
		p, err := rmq.NewProducer(
			producer.WithNameServer(lib),
			producer.WithGroupName("rpcbench_call_"+id),
			producer.WithInstanceName("rpcbench-call-"+id),
			producer.WithCompressMsgBodyOverHowmuch(compressOver(o.compress)),
		)
		if err == nil {
			err = p.Start()
		}
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("rocketmq: caller producer: %w", err)
		}
		cl.producers = append(cl.producers, p)
	}
	wctx, cancel := context.WithTimeout(ctx, WarmupTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(cl.producers))
	for i, p := range cl.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = warmUp(wctx, p, topic)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// warmUp sends requests until one is answered (defect 7: the broker drops
// replies to a client it has no heartbeat from yet).
func warmUp(ctx context.Context, p rmq.Producer, topic string) error {
	req := wire.Append(nil, &wire.Fields{ID: 1})
	var last error
	for attempt := 1; ; attempt++ {
		msg := primitive.NewMessage(topic, req)
		msg.WithProperty(WarmupProperty, "1")
		m, err := p.Request(ctx, time.Second, msg)
		if err == nil && m != nil && len(m.Body) > 0 {
			var f wire.Fields
			if err := wire.Parse(m.Body, &f); err == nil && f.ID == 1 {
				return nil
			}
			err = fmt.Errorf("unexpected warm-up reply %q", m.Body)
		}
		if err == nil {
			err = errors.New("empty reply")
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("rocketmq: no reply to %d warm-up requests on %s: %v (is a responder serving it?)", attempt, topic, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (cl *client) NewCaller() (drivers.Caller, error) {
	if cl.closed.Load() {
		return nil, errors.New("rocketmq: client closed")
	}
	p := cl.producers[int(cl.next.Add(1)-1)%len(cl.producers)]
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &caller{cl: cl, p: p, timer: t}, nil
}

// Close shuts the producers down; calls in flight fail.
func (cl *client) Close() error {
	cl.closeOnce.Do(func() {
		cl.closed.Store(true)
		var errs []error
		for _, p := range cl.producers {
			if err := p.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
		cl.closeErr = errors.Join(errs...)
		if cl.closeRelays != nil {
			cl.closeRelays()
		}
	})
	return cl.closeErr
}

// requestTTL is the timeout given to Request for a call that may wait
// wait: rounded up to whole seconds, at least 1 s, because Request writes
// int(timeout.Seconds()) into the message's TTL property (defect 12), and a
// TTL of 0 tells the responder the request has already expired.
func requestTTL(wait time.Duration) time.Duration {
	ttl := wait.Truncate(time.Second)
	if ttl < wait || ttl == 0 {
		ttl += time.Second
	}
	return ttl
}

type caller struct {
	cl    *client
	p     rmq.Producer
	timer *time.Timer
}

type result struct {
	m   *primitive.Message
	err error
}

// Call sends req as a new message with producer.Request and waits for the
// reply until deadline or the end of ctx.
//
// Sync Request, never RequestAsync (defect 2). Request runs on its own
// goroutine: it neither watches ctx nor returns before its whole timeout
// when a send fails (defect 4), its send timeout is a fixed 3 s whatever the
// options (defect 5), and its timeout is rounded up to whole seconds here
// (defect 12). The call returns at its own deadline regardless.
func (c *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	if c.cl.closed.Load() {
		return nil, errors.New("rocketmq: client closed")
	}
	if len(req) > MaxMessageSize {
		return nil, fmt.Errorf("rocketmq: request of %d bytes exceeds the broker's maxMessageSize %d", len(req), MaxMessageSize)
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return nil, fmt.Errorf("rocketmq: %w (no time left)", drivers.ErrTimeout)
	}
	ttl := requestTTL(wait)
	// A new message and a copy of the bytes each call: Request mutates the
	// message, and may still hold it after this call returns.
	msg := primitive.NewMessage(c.cl.topic, append([]byte(nil), req...))
	ch := make(chan result, 1)
	go func() {
		m, err := c.p.Request(ctx, ttl, msg)
		ch <- result{m, err}
	}()
	c.timer.Reset(wait)
	select {
	case r := <-ch:
		c.timer.Stop()
		if r.err != nil {
			if strings.Contains(r.err.Error(), "wait reply message timeout") {
				return nil, fmt.Errorf("rocketmq: %w: %v", drivers.ErrTimeout, r.err)
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("rocketmq: request: %w", r.err)
		}
		if r.m == nil {
			return nil, errors.New("rocketmq: request returned no reply")
		}
		if e := r.m.GetProperty(ErrorProperty); e != "" {
			return nil, fmt.Errorf("rocketmq: responder: %s", e)
		}
		return append(buf, r.m.Body...), nil
	case <-c.timer.C:
		return nil, fmt.Errorf("rocketmq: %w after %v (no reply)", drivers.ErrTimeout, wait)
	case <-ctx.Done():
		c.timer.Stop()
		return nil, ctx.Err()
	}
}
