// Package kafka is RPC over Apache Kafka with github.com/twmb/franz-go, in
// the shape of Spring Kafka's ReplyingKafkaTemplate: a request carries the
// headers kafka_correlationId, kafka_replyTopic and kafka_replyPartition
// (4-byte big-endian), and the responder produces the reply to that topic
// and partition with the same kafka_correlationId, so a Spring
// `@KafkaListener @SendTo` responder could serve rpcbench callers.
//
// Topics: Serve creates a request topic of its own (rpcbench.req.<random>,
// `partitions` partitions); Server.Addr is "BOOTSTRAP#TOPIC". Dial creates a
// reply topic (rpcbench.rep.<random>) with one partition per caller-side
// client (`connections`); each client reads its own reply partition by
// direct assignment (no consumer group, so no rebalance and no offset
// commit) and routes replies to the waiting call by correlation id. Both
// topics are new and read from their first offset, and both are deleted on
// Close.
//
// Caller: `connections` franz-go clients per Dial, shared round-robin by the
// callers; a client produces requests (round-robin over the request
// partitions) and consumes its reply partition. A call ends when both the
// produce acknowledgement (acks per variant) and the reply have arrived, or
// at its deadline (the record's context is the call's: a request still
// buffered in the client at the deadline is dropped).
//
// Responder: `responders` franz-go clients, each assigned every
// responders-th request partition directly, each polling its partitions in
// one goroutine. A request without service time is answered inline by the
// polling goroutine, so that the replies to one fetch leave in one produce
// request; a request with service time runs on a goroutine of its own. The
// replies are produced asynchronously. Every request in hand holds one of
// drivers.Config.Concurrency() slots shared by the responder clients: the
// responder reaches that many requests at once and never more.
//
// Variants (what is acknowledged before the reply: README's durability
// table):
//   - acks-all: acks=all (every in-sync replica has the request in its log,
//     page cache) with idempotent writes, franz-go's default;
//   - acks-leader: acks=1 (the leader's log), idempotence off;
//   - sync-flush: acks=all, and the request and reply topics set
//     flush.messages=1: the broker fsyncs the log after every message
//     before it acknowledges (Kafka never fsyncs per message by default).
//
// Options (franz-go's own defaults noted where rpcbench differs): linger
// (0; franz-go lingers 10 ms since v1.20.0, paid on both legs), compression
// (none; franz-go defaults to snappy), fetch-max-wait (franz-go's 5 s: a
// fetch returns as soon as fetch-min-bytes are there), fetch-min-bytes (1),
// partitions (1), responders (1), connections (1). One partition and one
// responder are the defaults because they were the fastest at concurrency
// 64 on the project's 2-core machine (the broker's cost is per batch, and
// more partitions split the same requests into more, smaller batches).
//
// Priming: Dial sends probe requests on every client until one has
// round-tripped (the responder echoes them without the handler), so that
// the first measured call does not pay for metadata and the responder's
// first fetch.
//
// Limits: requests and replies up to MaxMessageSize, under the broker's
// default message.max.bytes (1 MiB) and franz-go's ProducerBatchMaxBytes
// with room for a batch header and the headers; less where the broker's
// message.max.bytes is smaller (asked once its address is known).
package kafka

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// Name is the driver's name.
const Name = "kafka"

// Module is the client library the results record.
const Module = "github.com/twmb/franz-go"

// MaxMessageSize is the largest request and reply (wire.Call bytes) the
// driver carries.
const MaxMessageSize = 1_000_000 - 8<<10

// Spring Kafka's header names (KafkaHeaders).
const (
	HeaderCorrelationID  = "kafka_correlationId"
	HeaderReplyTopic     = "kafka_replyTopic"
	HeaderReplyPartition = "kafka_replyPartition"
)

// ErrorHeader carries the error of a responder that could not send the
// real reply; WarmupHeader marks Dial's probe requests, which the responder
// echoes without running the handler.
const (
	ErrorHeader  = "rpcbench-error"
	WarmupHeader = "rpcbench-warmup"
)

// Variants.
const (
	AcksAll    = "acks-all"
	AcksLeader = "acks-leader"
	SyncFlush  = "sync-flush"
)

// Errors calls fail with besides timeouts (transport errors).
var (
	ErrClosed     = errors.New("kafka: client closed")
	ErrNoResponse = errors.New("kafka: reply without correlation id")
)

var spec = drivers.Spec{
	Name:        Name,
	Description: "RPC over Kafka (franz-go), ReplyingKafkaTemplate shape: request topic, a reply partition per caller client read by direct assignment",
	Kind:        drivers.Broker,
	Broker:      "kafka",
	Variants: []drivers.Variant{
		{Name: AcksAll, Description: "acks=all with idempotent writes: the request is in every in-sync replica's log (page cache) before it is acknowledged"},
		{Name: AcksLeader, Description: "acks=1, idempotence off: the request is in the leader's log (page cache) before it is acknowledged"},
		{Name: SyncFlush, Description: "acks=all and flush.messages=1 on the request and reply topics: the log is fsynced after every message before it is acknowledged"},
	},
	Options: []drivers.Option{
		{Name: "linger", Default: "0s", Description: "producer linger before a batch is sent (0s-1s; franz-go's own default is 10ms, paid on both legs)"},
		{Name: "partitions", Default: "1", Description: "partitions of the request topic (1-256); more spread the requests over more responders, and over smaller batches"},
		{Name: "responders", Default: "1", Description: "responder clients, each reading every responders-th request partition (1-64, at most partitions)"},
		{Name: "connections", Default: "1", Description: "caller clients per dial, shared round-robin by the callers, each with its own reply partition (1-64)"},
		{Name: "fetch-max-wait", Default: "5s", Description: "how long the broker holds a fetch with less than fetch-min-bytes (10ms-30s; franz-go's default)"},
		{Name: "fetch-min-bytes", Default: "1", Description: "bytes a fetch waits for (1-1048576)"},
		{Name: "compression", Default: "none", Description: "producer batch compression: none, gzip, snappy (franz-go's default), lz4 or zstd"},
	},
	Libraries: []string{Module},
	// a JVM broker runs several times slower until its JIT has compiled
	// the hot paths
	BrokerWarmup: true,
}

// Driver is the kafka driver.
type Driver struct{}

// New returns the driver.
func New() drivers.Driver { return Driver{} }

// Spec describes the driver.
func (Driver) Spec() drivers.Spec { return spec }

type options struct {
	variant                       string
	linger, fetchMaxWait          time.Duration
	partitions, responders, conns int
	fetchMinBytes                 int
	compression                   kgo.CompressionCodec
	concurrency                   int
}

func durationOption(cfg drivers.Config, name string, min, max time.Duration) (time.Duration, error) {
	raw := drivers.OptionValue(spec, cfg, name)
	d, err := time.ParseDuration(raw)
	if raw == "0" {
		d, err = 0, nil
	}
	if err != nil || d < min || d > max {
		return 0, fmt.Errorf("%s: option %s=%q: want a duration from %v to %v (e.g. 1ms)", Name, name, raw, min, max)
	}
	return d, nil
}

func parse(cfg drivers.Config) (options, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return options{}, err
	}
	o := options{variant: cfg.Variant, concurrency: cfg.Concurrency()}
	var err error
	if o.linger, err = durationOption(cfg, "linger", 0, time.Second); err != nil {
		return o, err
	}
	if o.fetchMaxWait, err = durationOption(cfg, "fetch-max-wait", 10*time.Millisecond, 30*time.Second); err != nil {
		return o, err
	}
	if o.partitions, err = drivers.IntOption(spec, cfg, "partitions", 1, 256); err != nil {
		return o, err
	}
	if o.responders, err = drivers.IntOption(spec, cfg, "responders", 1, 64); err != nil {
		return o, err
	}
	if o.responders > o.partitions {
		return o, fmt.Errorf("%s: responders=%d: at most partitions (%d): a responder reads whole partitions", Name, o.responders, o.partitions)
	}
	if o.conns, err = drivers.IntOption(spec, cfg, "connections", 1, 64); err != nil {
		return o, err
	}
	if o.fetchMinBytes, err = drivers.IntOption(spec, cfg, "fetch-min-bytes", 1, 1<<20); err != nil {
		return o, err
	}
	switch c := drivers.OptionValue(spec, cfg, "compression"); c {
	case "none":
		o.compression = kgo.NoCompression()
	case "gzip":
		o.compression = kgo.GzipCompression()
	case "snappy":
		o.compression = kgo.SnappyCompression()
	case "lz4":
		o.compression = kgo.Lz4Compression()
	case "zstd":
		o.compression = kgo.ZstdCompression()
	default:
		return o, fmt.Errorf("%s: option compression=%q: want none, gzip, snappy, lz4 or zstd", Name, c)
	}
	if o.concurrency > 1<<20 {
		return o, fmt.Errorf("%s: responder concurrency %d: at most %d workers", Name, o.concurrency, 1<<20)
	}
	return o, nil
}

// Transport is the kafka driver configured for one unit.
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

// BrokerParams: any Kafka broker will do; sync-flush sets its topics'
// flush.messages itself.
func (*Transport) BrokerParams() map[string]string { return nil }

// Limits are MaxMessageSize both ways, or less where the broker at
// broker takes smaller messages (its message.max.bytes, less the room
// MaxMessageSize leaves for a batch header and the headers).
func (*Transport) Limits(ctx context.Context, broker string) drivers.Limits {
	n := MaxMessageSize
	if broker != "" {
		if m, err := brokerMessageMax(ctx, broker); err == nil && m-maxBatchOverhead < n {
			n = max(m-maxBatchOverhead, 0)
		}
	}
	return drivers.Limits{MaxRequest: n, MaxReply: n}
}

// maxBatchOverhead is what a one-record batch adds to its value.
const maxBatchOverhead = producerBatchMax - MaxMessageSize

// producerBatchMax is franz-go's ProducerBatchMaxBytes the driver sets.
const producerBatchMax = 1_000_000

// brokerMessageMax asks the cluster at addr for its message.max.bytes.
func brokerMessageMax(ctx context.Context, addr string) (int, error) {
	seeds, _, err := parseAddr(addr)
	if err != nil {
		return 0, err
	}
	cl, err := newClient(seeds, "rpcbench-limits")
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rcs, err := kadm.NewClient(cl).DescribeBrokerConfigs(ctx)
	if err != nil {
		return 0, err
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "message.max.bytes" && c.Value != nil {
				return strconv.Atoi(*c.Value)
			}
		}
	}
	return 0, errors.New("the broker did not say its message.max.bytes")
}

// CheckTarget checks a responder's address: BOOTSTRAP#TOPIC.
func (*Transport) CheckTarget(addr string) error {
	_, topic, err := parseAddr(addr)
	if err != nil {
		return err
	}
	if topic == "" {
		return fmt.Errorf("no request topic: want HOST:PORT#TOPIC, the address `rpcbench serve` printed")
	}
	return nil
}

// cluster is where the clients connect: the bootstrap addresses, and the
// routes (drivers.WithVia) that send each connection to a broker address
// elsewhere (the delay proxies of a run with network).
type cluster struct {
	seeds []string
	via   map[string]string
}

// String is the cluster's address with its routes.
func (c cluster) String() string { return drivers.WithVia(strings.Join(c.seeds, ","), c.via) }

// dial connects to the broker at host, or where the routes send it.
func (c cluster) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, network, drivers.Route(c.via, host))
}

// parseAddr splits "HOST:PORT[,HOST:PORT][#TOPIC][~via=FROM>TO,...]".
func parseAddr(addr string) (cluster, string, error) {
	addr, via, err := drivers.SplitVia(strings.TrimSpace(addr))
	if err != nil {
		return cluster{}, "", fmt.Errorf("%s: %v", Name, err)
	}
	c := cluster{via: via}
	bs, topic, _ := strings.Cut(addr, "#")
	for _, s := range strings.Split(bs, ",") {
		s = strings.TrimSpace(s)
		if err := drivers.CheckHostPort(s, true); err != nil {
			return cluster{}, "", fmt.Errorf("%s: bootstrap address %q: %v: want HOST:PORT[,HOST:PORT][#TOPIC]", Name, s, err)
		}
		c.seeds = append(c.seeds, s)
	}
	return c, topic, nil
}

// BrokerAddrs are the bootstrap addresses of the cluster at url and the
// addresses its brokers advertise (drivers.Rerouter): a client connects
// to each.
func (*Transport) BrokerAddrs(ctx context.Context, url string) ([]string, error) {
	c, _, err := parseAddr(url)
	if err != nil {
		return nil, err
	}
	cl, err := newClient(c, "rpcbench-addrs")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: the brokers' metadata from %s: %w", Name, c, err)
	}
	addrs := slices.Clone(c.seeds)
	for _, b := range md.Brokers {
		if a := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))); !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}

// Reroute is url with routes via (drivers.Rerouter): its clients' every
// connection to a bootstrap or advertised address goes where via says.
func (*Transport) Reroute(url string, via map[string]string) (string, error) {
	if _, _, err := parseAddr(url); err != nil {
		return "", err
	}
	return drivers.WithVia(url, via), nil
}

// producerOpts are the producer settings of the variant and options.
func (o options) producerOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ProducerLinger(o.linger),
		kgo.ProducerBatchCompression(o.compression),
		kgo.ProducerBatchMaxBytes(producerBatchMax),
	}
	if o.variant == AcksLeader {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	return opts
}

func (o options) consumerOpts(topic string, parts []int32) []kgo.Opt {
	assign := map[int32]kgo.Offset{}
	for _, p := range parts {
		assign[p] = kgo.NewOffset().AtStart()
	}
	return []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}),
		kgo.FetchMaxWait(o.fetchMaxWait),
		kgo.FetchMinBytes(int32(o.fetchMinBytes)),
	}
}

// topicConfigs are the configs of the topics the variant creates.
func (o options) topicConfigs() map[string]*string {
	if o.variant != SyncFlush {
		return nil
	}
	one := "1"
	return map[string]*string{"flush.messages": &one}
}

func newClient(c cluster, id string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(c.seeds...),
		kgo.ClientID(id),
		kgo.Dialer(c.dial), // 5 s to connect
		// franz-go answers metadata requests from its cache for
		// MetadataMinAge (5 s by default), which delays the first produce
		// and fetch on a topic just created by up to 5 s, and every
		// recovery after a broker loss.
		kgo.MetadataMinAge(50 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return cl, nil
}

// createTopic creates topic with n partitions and the broker's default
// replication factor.
func createTopic(ctx context.Context, seeds cluster, topic string, n int, configs map[string]*string) error {
	cl, err := newClient(seeds, "rpcbench-admin")
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, int32(n), -1, configs, topic); err != nil {
		return fmt.Errorf("%s: create topic %s on %s: %w", Name, topic, strings.Join(seeds.seeds, ","), err)
	}
	// Wait until the metadata lists a leader for every partition.
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if td, ok := md.Topics[topic]; ok && td.Err == nil && len(td.Partitions) == n {
				ready := true
				for _, p := range td.Partitions {
					ready = ready && p.Leader >= 0 && p.Err == nil
				}
				if ready {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: topic %s has no leaders: %v", Name, topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deleteTopic removes topic, giving up after a few seconds (a broker that
// is gone keeps nothing anyway).
func deleteTopic(seeds cluster, topic string) {
	cl, err := newClient(seeds, "rpcbench-admin", kgo.RetryTimeout(3*time.Second))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kadm.NewClient(cl).DeleteTopics(ctx, topic)
}

func randomName(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func header(r *kgo.Record, key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// ---- responder ----

type server struct {
	addr    string
	seeds   cluster
	topic   string
	h       drivers.Handler
	clients []*kgo.Client
	slots   chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	polls   sync.WaitGroup
	workers sync.WaitGroup
	once    sync.Once
}

// Serve creates a request topic on the cluster at at.Broker and starts the
// responder clients and workers.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	o := t.o
	if at.Broker == "" {
		return nil, fmt.Errorf("%s: no broker to serve on: start one or give --broker kafka=HOST:PORT", Name)
	}
	seeds, given, err := parseAddr(at.Broker)
	if err != nil {
		return nil, err
	}
	if given != "" {
		// a fault run's restarted responder: without committed offsets
		// (partitions are assigned directly) it could only replay the
		// topic from its start or skip its backlog, both wrong
		return nil, fmt.Errorf("%s: cannot serve the existing topic %s again: the responders read by direct partition assignment without committed offsets, so a restarted responder cannot resume where a killed one stopped", Name, given)
	}
	topic := randomName("rpcbench.req.")
	if err := createTopic(ctx, seeds, topic, o.partitions, o.topicConfigs()); err != nil {
		return nil, err
	}
	s := &server{seeds: seeds, topic: topic, h: h, slots: make(chan struct{}, o.concurrency)}
	s.addr = drivers.WithVia(strings.Join(seeds.seeds, ",")+"#"+topic, seeds.via)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for i := 0; i < o.responders; i++ {
		var parts []int32
		for p := i; p < o.partitions; p += o.responders {
			parts = append(parts, int32(p))
		}
		opts := append(o.producerOpts(), o.consumerOpts(topic, parts)...)
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		cl, err := newClient(seeds, fmt.Sprintf("rpcbench-responder-%d", i), opts...)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.clients = append(s.clients, cl)
	}
	for _, cl := range s.clients {
		s.polls.Add(1)
		go s.poll(cl)
	}
	return s, nil
}

func (s *server) Addr() string { return s.addr }

// poll answers every request record of cl's partitions. A request
// without service time is answered inline (its reply joins the replies of
// the same fetch in one produce request); one with service time runs on a
// goroutine of its own. Every request holds one of the responder
// concurrency's slots (shared by all responder clients) while it runs.
func (s *server) poll(cl *kgo.Client) {
	defer s.polls.Done()
	for {
		fs := cl.PollFetches(s.ctx)
		if s.ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			select {
			case s.slots <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			if wire.PeekServiceTime(r.Value) > 0 {
				s.workers.Add(1)
				go func() {
					defer s.workers.Done()
					s.answer(cl, r)
					<-s.slots
				}()
				continue
			}
			s.answer(cl, r)
			<-s.slots
		}
	}
}

// answer runs the handler and produces the reply where the request says.
func (s *server) answer(cl *kgo.Client, r *kgo.Record) {
	id, ok1 := header(r, HeaderCorrelationID)
	topic, ok2 := header(r, HeaderReplyTopic)
	part, ok3 := header(r, HeaderReplyPartition)
	if !ok1 || !ok2 || !ok3 || len(part) != 4 {
		return // not a request: nowhere to reply
	}
	rep := &kgo.Record{
		Topic:     string(topic),
		Partition: int32(binary.BigEndian.Uint32(part)),
		Headers:   []kgo.RecordHeader{{Key: HeaderCorrelationID, Value: id}},
	}
	if _, warm := header(r, WarmupHeader); warm {
		rep.Headers = append(rep.Headers, kgo.RecordHeader{Key: WarmupHeader})
	} else {
		rep.Value = s.h(r.Value, nil)
		if n := len(rep.Value); n > MaxMessageSize {
			rep.Value = nil
			rep.Headers = append(rep.Headers, kgo.RecordHeader{Key: ErrorHeader,
				Value: fmt.Appendf(nil, "reply of %d bytes exceeds the driver's limit of %d", n, MaxMessageSize)})
		}
	}
	cl.Produce(s.ctx, rep, nil)
}

// Close stops the responder clients and workers and deletes the request
// topic.
func (s *server) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.polls.Wait()
		s.workers.Wait()
		for _, cl := range s.clients {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cl.Flush(ctx)
			cancel()
			cl.Close()
		}
		deleteTopic(s.seeds, s.topic)
	})
	return nil
}

// ---- caller ----

type client struct {
	seeds  cluster
	reqTop string
	repTop string
	conns  []*conn
	next   atomic.Uint64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// conn is one franz-go client: it produces requests and reads its own
// reply partition.
type conn struct {
	cl     *kgo.Client
	part   []byte // kafka_replyPartition, 4 bytes big-endian
	topic  []byte // kafka_replyTopic
	prefix [8]byte
	seq    atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan<- event
	closed  bool
}

// event is a reply or a produce acknowledgement for call id.
type event struct {
	id    uint64
	ack   bool
	reply []byte
	err   error
}

// Dial creates a reply topic with a partition per client, starts the
// clients and primes each one until a probe request has round-tripped.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	o := t.o
	seeds, reqTop, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	if reqTop == "" {
		return nil, fmt.Errorf("%s: address %q has no request topic: want HOST:PORT#TOPIC", Name, addr)
	}
	c := &client{seeds: seeds, reqTop: reqTop, repTop: randomName("rpcbench.rep.")}
	if err := createTopic(ctx, seeds, c.repTop, o.conns, o.topicConfigs()); err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := 0; i < o.conns; i++ {
		opts := append(o.producerOpts(), o.consumerOpts(c.repTop, []int32{int32(i)})...)
		opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		cl, err := newClient(seeds, fmt.Sprintf("rpcbench-caller-%d", i), opts...)
		if err != nil {
			c.Close()
			return nil, err
		}
		cn := &conn{cl: cl, part: binary.BigEndian.AppendUint32(nil, uint32(i)), topic: []byte(c.repTop), pending: map[uint64]chan<- event{}}
		rand.Read(cn.prefix[:])
		c.conns = append(c.conns, cn)
		c.wg.Add(1)
		go c.readReplies(cn)
	}
	for _, cn := range c.conns {
		if err := c.prime(ctx, cn); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// prime sends probe requests on cn until one is answered.
func (c *client) prime(ctx context.Context, cn *conn) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ev := make(chan event, 4)
	var last error
	for ctx.Err() == nil {
		_, err := c.roundTrip(ctx, cn, ev, time.Now().Add(2*time.Second), nil, nil, true)
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("%s: priming the caller client: no probe answered within a minute: %v", Name, last)
}

// readReplies routes cn's replies to their calls.
func (c *client) readReplies(cn *conn) {
	defer c.wg.Done()
	for {
		fs := cn.cl.PollFetches(c.ctx)
		if c.ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			id, ok := header(r, HeaderCorrelationID)
			if !ok || len(id) != 16 || [8]byte(id[:8]) != cn.prefix {
				continue
			}
			ev := event{id: binary.BigEndian.Uint64(id[8:]), reply: r.Value}
			if msg, bad := header(r, ErrorHeader); bad {
				ev.err = fmt.Errorf("%s: responder: %s", Name, msg)
			}
			cn.deliver(ev)
		}
	}
}

// deliver hands ev to the call waiting for it, if it still waits: under
// the lock that the call's end takes to unregister, so that no event of a
// call that has ended reaches its caller's channel afterwards.
func (cn *conn) deliver(ev event) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if ch := cn.pending[ev.id]; ch != nil {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (c *client) NewCaller() (drivers.Caller, error) {
	cn := c.conns[(c.next.Add(1)-1)%uint64(len(c.conns))]
	return &caller{c: c, cn: cn, ev: make(chan event, 4)}, nil
}

type caller struct {
	c  *client
	cn *conn
	ev chan event
}

func (k *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	return k.c.roundTrip(ctx, k.cn, k.ev, deadline, req, buf, false)
}

// roundTrip produces one request and waits for its acknowledgement and its
// reply, or the deadline.
func (c *client) roundTrip(ctx context.Context, cn *conn, ev chan event, deadline time.Time, req, buf []byte, warm bool) ([]byte, error) {
	if len(req) > MaxMessageSize {
		return buf, fmt.Errorf("%s: request of %d bytes exceeds the driver's limit of %d", Name, len(req), MaxMessageSize)
	}
	id := cn.seq.Add(1)
	cid := make([]byte, 16)
	copy(cid, cn.prefix[:])
	binary.BigEndian.PutUint64(cid[8:], id)
	cn.mu.Lock()
	if cn.closed {
		cn.mu.Unlock()
		return buf, ErrClosed
	}
	// events of earlier calls that came in before they unregistered
	for len(ev) > 0 {
		<-ev
	}
	cn.pending[id] = ev
	cn.mu.Unlock()
	defer func() {
		cn.mu.Lock()
		delete(cn.pending, id)
		cn.mu.Unlock()
	}()
	r := &kgo.Record{
		Topic: c.reqTop,
		// a copy: a call that times out returns while the client may
		// still write the record, and the caller reuses req
		Value: append([]byte(nil), req...),
		Headers: []kgo.RecordHeader{
			{Key: HeaderCorrelationID, Value: cid},
			{Key: HeaderReplyTopic, Value: cn.topic},
			{Key: HeaderReplyPartition, Value: cn.part},
		},
	}
	if warm {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: WarmupHeader})
	}
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	cn.cl.Produce(pctx, r, func(_ *kgo.Record, err error) {
		cn.deliver(event{id: id, ack: true, err: err})
	})
	acked, replied := false, false
	for !acked || !replied {
		select {
		case e := <-ev:
			if e.id != id {
				continue // a late event of an earlier call
			}
			if e.err != nil {
				if errors.Is(e.err, context.DeadlineExceeded) {
					return buf, fmt.Errorf("%s: request not acknowledged: %w", Name, drivers.ErrTimeout)
				}
				if errors.Is(e.err, kgo.ErrClientClosed) || errors.Is(e.err, context.Canceled) {
					return buf, ErrClosed
				}
				return buf, e.err
			}
			if e.ack {
				acked = true
			} else {
				replied = true
				buf = append(buf, e.reply...)
			}
		case <-pctx.Done():
			if ctx.Err() != nil {
				return buf, ctx.Err()
			}
			if !acked {
				return buf, fmt.Errorf("%s: no acknowledgement or reply by the deadline: %w", Name, drivers.ErrTimeout)
			}
			return buf, fmt.Errorf("%s: no reply by the deadline: %w", Name, drivers.ErrTimeout)
		case <-c.ctx.Done():
			return buf, ErrClosed
		}
	}
	return buf, nil
}

// Close closes the clients (calls in flight fail) and deletes the reply
// topic.
func (c *client) Close() error {
	c.once.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		for _, cn := range c.conns {
			cn.mu.Lock()
			cn.closed = true
			cn.mu.Unlock()
			cn.cl.Close()
		}
		c.wg.Wait()
		deleteTopic(c.seeds, c.repTop)
	})
	return nil
}
