package kafka_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/kafka"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/scenarios"
)

func serviceTime(d time.Duration) scenarios.ServiceTime { return scenarios.ServiceTime{Mean: d} }

func TestConfigure(t *testing.T) {
	d := kafka.New()
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Variant: "acks-none"}, `kafka: unknown variant "acks-none" (want one of acks-all, acks-leader, sync-flush)`},
		{drivers.Config{Options: map[string]string{"batch": "1"}}, `kafka: unknown option "batch" (want one of linger, partitions, responders, connections, fetch-max-wait, fetch-min-bytes, compression)`},
		{drivers.Config{Options: map[string]string{"linger": "5"}}, `kafka: option linger="5": want a duration from 0s to 1s (e.g. 1ms)`},
		{drivers.Config{Options: map[string]string{"linger": "2s"}}, `kafka: option linger="2s": want a duration from 0s to 1s (e.g. 1ms)`},
		{drivers.Config{Options: map[string]string{"fetch-max-wait": "1ms"}}, `kafka: option fetch-max-wait="1ms": want a duration from 10ms to 30s (e.g. 1ms)`},
		{drivers.Config{Options: map[string]string{"partitions": "0"}}, `kafka: option partitions="0": want a whole number from 1 to 256`},
		{drivers.Config{Options: map[string]string{"responders": "5", "partitions": "4"}}, `kafka: responders=5: at most partitions (4): a responder reads whole partitions`},
		{drivers.Config{Options: map[string]string{"connections": "65"}}, `kafka: option connections="65": want a whole number from 1 to 64`},
		{drivers.Config{Options: map[string]string{"fetch-min-bytes": "0"}}, `kafka: option fetch-min-bytes="0": want a whole number from 1 to 1048576`},
		{drivers.Config{Options: map[string]string{"compression": "brotli"}}, `kafka: option compression="brotli": want none, gzip, snappy, lz4 or zstd`},
	} {
		_, err := d.Configure(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Configure(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	tr, err := d.Configure(drivers.Config{Options: map[string]string{"linger": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	eff := tr.Config()
	want := map[string]string{"linger": "0", "partitions": "1", "responders": "1", "connections": "1", "fetch-max-wait": "5s", "fetch-min-bytes": "1", "compression": "none"}
	if eff.Variant != kafka.AcksAll || len(eff.Options) != len(want) {
		t.Fatalf("effective config %+v", eff)
	}
	for k, v := range want {
		if eff.Options[k] != v {
			t.Errorf("effective %s=%q, want %q", k, eff.Options[k], v)
		}
	}
	for _, addr := range []string{"127.0.0.1:9092", "kafka://127.0.0.1:9092#t", "127.0.0.1#t"} {
		if tr.CheckTarget(addr) == nil {
			t.Errorf("CheckTarget(%q) accepted", addr)
		}
	}
	if err := tr.CheckTarget("127.0.0.1:9092,127.0.0.1:9093#rpcbench.req.x"); err != nil {
		t.Error(err)
	}
	if tr.BrokerParams() != nil {
		t.Errorf("broker params %v", tr.BrokerParams())
	}
}

func configure(t testing.TB, variant string, opts map[string]string) drivers.Transport {
	return driverstest.Configure(t, kafka.New(), drivers.Config{Variant: variant, Options: opts})
}

func TestConformance(t *testing.T) {
	url := needBroker(t)
	for _, v := range []string{kafka.AcksAll, kafka.AcksLeader, kafka.SyncFlush} {
		t.Run(v, func(t *testing.T) {
			driverstest.Conformance(t, configure(t, v, nil), drivers.Place{Broker: url})
		})
	}
	t.Run("spread", func(t *testing.T) {
		opts := map[string]string{"partitions": "4", "responders": "2", "connections": "2"}
		driverstest.Conformance(t, configure(t, kafka.AcksAll, opts), drivers.Place{Broker: url})
	})
	// the client options on one partition ("spread" covers partitions,
	// responders and connections; the two sets together took 45 s under
	// -race, the slowest case of the suite)
	t.Run("options", func(t *testing.T) {
		opts := map[string]string{"compression": "lz4", "linger": "1ms", "fetch-max-wait": "100ms"}
		driverstest.Conformance(t, configure(t, kafka.AcksLeader, opts), drivers.Place{Broker: url})
	})
}

func TestResponderGone(t *testing.T) {
	driverstest.ResponderGone(t, configure(t, kafka.AcksAll, nil), drivers.Place{Broker: needBroker(t)})
}

func TestStalled(t *testing.T) {
	driverstest.Stalled(t, configure(t, kafka.AcksAll, nil), drivers.Place{Broker: needBroker(t)})
}

// The responder reaches the responder concurrency and never exceeds it.
func TestResponderConcurrency(t *testing.T) {
	url := needBroker(t)
	tr := driverstest.Configure(t, kafka.New(), drivers.Config{ResponderConcurrency: 8})
	h, most := driverstest.Counting()
	srv := driverstest.ServeWith(t, tr, drivers.Place{Broker: url}, h)
	cl := driverstest.Dial(t, tr, srv.Addr())
	m := driverstest.Calls(t, cl, runner.Load{Payload: 64, Concurrency: 32, Calls: 320, ServiceTime: serviceTime(20 * time.Millisecond)})
	driverstest.AllOK(t, m, 320)
	if got := most(); got != 8 {
		t.Fatalf("at most %d requests at once, want 8", got)
	}
}

// The request carries Spring Kafka's headers: a responder written against
// them alone (here with franz-go directly, as a Spring @SendTo listener
// would) serves rpcbench's callers.
func TestSpringHeaders(t *testing.T) {
	url := needBroker(t)
	tr := configure(t, kafka.AcksAll, map[string]string{"partitions": "1", "responders": "1"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed := kgo.SeedBrokers(url)
	admCl, err := kgo.NewClient(seed)
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	topic := "rpcbench.spring." + t.Name()
	if _, err := kadm.NewClient(admCl).CreateTopic(ctx, 1, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	defer kadm.NewClient(admCl).DeleteTopics(context.Background(), topic)
	resp, err := kgo.NewClient(seed, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	go func() {
		for {
			fs := resp.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				h := map[string][]byte{}
				for _, x := range r.Headers {
					h[x.Key] = x.Value
				}
				resp.Produce(ctx, &kgo.Record{
					Topic: string(h["kafka_replyTopic"]), Partition: int32(binary.BigEndian.Uint32(h["kafka_replyPartition"])),
					Headers: []kgo.RecordHeader{{Key: "kafka_correlationId", Value: h["kafka_correlationId"]}},
					Value:   wire.Respond(r.Value, nil),
				}, nil)
			})
		}
	}()
	cl := driverstest.Dial(t, tr, url+"#"+topic)
	driverstest.AllOK(t, driverstest.Calls(t, cl, runner.Load{Payload: 64, Concurrency: 4, Calls: 100}), 100)
}

// The driver's limit follows the broker's message.max.bytes where that
// is below the driver's own: lowered on the running broker, the limit
// drops with it; restored, it is MaxMessageSize again.
func TestLimitsFromBroker(t *testing.T) {
	addr := needBroker(t)
	tr := driverstest.Configure(t, kafka.New(), drivers.Config{})
	ctx := context.Background()
	if l := tr.Limits(ctx, addr); l.MaxRequest != kafka.MaxMessageSize || l.MaxReply != kafka.MaxMessageSize {
		t.Fatalf("default broker: limits %+v, want %d", l, kafka.MaxMessageSize)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	set := func(v *string) {
		t.Helper()
		op := kadm.SetConfig
		if v == nil {
			op = kadm.DeleteConfig
		}
		rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: "message.max.bytes", Value: v}})
		if err == nil {
			for _, r := range rs {
				err = errors.Join(err, r.Err)
			}
		}
		if err != nil {
			t.Fatalf("set message.max.bytes to %v: %v", v, err)
		}
	}
	small := "500000"
	set(&small)
	defer set(nil)
	want := 500000 - (1_000_000 - kafka.MaxMessageSize)
	deadline := time.Now().Add(10 * time.Second)
	for l := tr.Limits(ctx, addr); l.MaxRequest != want; l = tr.Limits(ctx, addr) {
		if time.Now().After(deadline) {
			t.Fatalf("message.max.bytes=500000: limits %+v, want %d", l, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
