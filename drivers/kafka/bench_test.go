package kafka_test

// Benchmarks against the package's broker (see main_test.go), each
// comparing the driver with a minimal franz-go loop on the same broker in
// the same run, in alternating rounds so that both see the same machine
// load:
//
//	go test -run '^$' -bench . -benchtime 10x ./drivers/kafka/
//
//   - BenchmarkC1Ratio/VARIANT: one call at a time; reports both p50s and
//     driver/baseline (target: at most 1.2).
//   - BenchmarkC64: 64 callers; reports both throughputs and
//     driver/baseline (target: at least 1).
//
// The baseline: a request topic with one partition; a responder client
// that polls it and produces each reply at once (no workers); a caller
// client (linger 0, no compression, the variant's acks, as the driver) that
// produces the request with Spring's headers and waits for the reply on
// its own reply partition, read by direct assignment. At concurrency 1 the
// calling goroutine polls the reply partition itself; at 64, one poller
// routes replies to the callers by correlation id.

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/kafka"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

const benchPayload = 128

var benchSeq atomic.Int64

func benchRequest(id uint64) []byte {
	p := make([]byte, benchPayload)
	for i := range p {
		p[i] = byte(i)
	}
	return wire.Append(nil, &wire.Fields{ID: id, Payload: p, Checksum: wire.Checksum(p), SentUnixNano: time.Now().UnixNano()})
}

func producerOpts(variant string) []kgo.Opt {
	opts := []kgo.Opt{kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression())}
	if variant == kafka.AcksLeader {
		return append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	return opts
}

// baseline is the minimal loop's topics and clients.
type baseline struct {
	req, rep string
	resp     *kgo.Client
	caller   *kgo.Client
	adm      *kgo.Client
	stop     context.CancelFunc
	done     chan struct{}
	request  []byte
	seq      uint64
}

func newBaseline(b *testing.B, url, variant string) *baseline {
	b.Helper()
	ctx := context.Background()
	n := benchSeq.Add(1)
	bl := &baseline{req: fmt.Sprintf("rpcbench.bench.req.%d.%d", time.Now().UnixNano(), n), done: make(chan struct{}), request: benchRequest(1)}
	bl.rep = bl.req + ".rep"
	var err error
	if bl.adm, err = kgo.NewClient(kgo.SeedBrokers(url)); err != nil {
		b.Fatal(err)
	}
	var cfg map[string]*string
	if variant == kafka.SyncFlush {
		one := "1"
		cfg = map[string]*string{"flush.messages": &one}
	}
	for _, t := range []string{bl.req, bl.rep} {
		if _, err := kadm.NewClient(bl.adm).CreateTopic(ctx, 1, -1, cfg, t); err != nil {
			b.Fatal(err)
		}
	}
	at := func(t string) kgo.Opt {
		return kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {0: kgo.NewOffset().AtStart()}})
	}
	if bl.resp, err = kgo.NewClient(append(producerOpts(variant), kgo.SeedBrokers(url), at(bl.req), kgo.RecordPartitioner(kgo.ManualPartitioner()))...); err != nil {
		b.Fatal(err)
	}
	if bl.caller, err = kgo.NewClient(append(producerOpts(variant), kgo.SeedBrokers(url), at(bl.rep), kgo.RecordPartitioner(kgo.ManualPartitioner()))...); err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	bl.stop = cancel
	go func() {
		defer close(bl.done)
		for {
			fs := bl.resp.PollFetches(rctx)
			if rctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				var id []byte
				for _, h := range r.Headers {
					if h.Key == kafka.HeaderCorrelationID {
						id = h.Value
					}
				}
				bl.resp.Produce(rctx, &kgo.Record{Topic: bl.rep, Partition: 0, Value: wire.Respond(r.Value, nil),
					Headers: []kgo.RecordHeader{{Key: kafka.HeaderCorrelationID, Value: id}}}, nil)
			})
		}
	}()
	return bl
}

func (bl *baseline) close() {
	bl.stop()
	<-bl.done
	bl.resp.Close()
	bl.caller.Close()
	kadm.NewClient(bl.adm).DeleteTopics(context.Background(), bl.req, bl.rep)
	bl.adm.Close()
}

func (bl *baseline) record(id uint64) *kgo.Record {
	cid := binary.BigEndian.AppendUint64(nil, id)
	return &kgo.Record{Topic: bl.req, Partition: 0, Value: bl.request, Headers: []kgo.RecordHeader{
		{Key: kafka.HeaderCorrelationID, Value: cid},
		{Key: kafka.HeaderReplyTopic, Value: []byte(bl.rep)},
		{Key: kafka.HeaderReplyPartition, Value: []byte{0, 0, 0, 0}},
	}}
}

// call is one call at a time: produce, wait for the ack, poll the reply.
func (bl *baseline) call(b *testing.B) {
	bl.seq++
	want := binary.BigEndian.AppendUint64(nil, bl.seq)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bl.caller.ProduceSync(ctx, bl.record(bl.seq)).FirstErr(); err != nil {
		b.Fatal(err)
	}
	for {
		fs := bl.caller.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatal("baseline: no reply")
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			found = found || string(r.Headers[0].Value) == string(want)
		})
		if found {
			return
		}
	}
}

// concurrent runs calls from n goroutines until total calls are done; one
// poller routes the replies.
func (bl *baseline) concurrent(b *testing.B, n int, total int64) time.Duration {
	var mu sync.Mutex
	waiting := map[uint64]chan struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			fs := bl.caller.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				id := binary.BigEndian.Uint64(r.Headers[0].Value)
				mu.Lock()
				ch := waiting[id]
				delete(waiting, id)
				mu.Unlock()
				if ch != nil {
					close(ch)
				}
			})
		}
	}()
	var next atomic.Uint64
	next.Store(bl.seq)
	var left atomic.Int64
	left.Store(total)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				id := next.Add(1)
				ch := make(chan struct{})
				mu.Lock()
				waiting[id] = ch
				mu.Unlock()
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				if err := bl.caller.ProduceSync(cctx, bl.record(id)).FirstErr(); err != nil {
					ccancel()
					b.Error(err)
					return
				}
				select {
				case <-ch:
				case <-cctx.Done():
					b.Error("baseline: no reply")
				}
				ccancel()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	bl.seq = next.Load()
	cancel()
	<-pollDone
	return elapsed
}

func serveDial(b *testing.B, url string, cfg drivers.Config) drivers.Client {
	tr := driverstest.Configure(b, kafka.New(), cfg)
	srv := driverstest.Serve(b, tr, drivers.Place{Broker: url})
	return driverstest.Dial(b, tr, srv.Addr())
}

// BenchmarkC1Ratio alternates rounds of 200 calls of the baseline and the
// driver (one round each per b.N).
func BenchmarkC1Ratio(b *testing.B) {
	url := needBroker(b)
	const round = 200
	for _, v := range []string{kafka.AcksAll, kafka.AcksLeader, kafka.SyncFlush} {
		b.Run(v, func(b *testing.B) {
			bl := newBaseline(b, url, v)
			defer bl.close()
			cl := serveDial(b, url, drivers.Config{Variant: v})
			load := runner.Load{Payload: benchPayload, Concurrency: 1, Calls: round, Timeout: 10 * time.Second, Seed: 1}
			for range round {
				bl.call(b)
			}
			if _, err := runner.RunCell(context.Background(), cl, load, nil); err != nil {
				b.Fatal(err)
			}
			hb, hd := results.NewHistogram(), results.NewHistogram()
			b.ResetTimer()
			for range b.N {
				for range round {
					t0 := time.Now()
					bl.call(b)
					hb.RecordValue(int64(time.Since(t0)))
				}
				m, err := runner.RunCell(context.Background(), cl, load, nil)
				if err != nil {
					b.Fatal(err)
				}
				if m.Counts.OK != round {
					b.Fatalf("counts %+v", m.Counts)
				}
				hd.Merge(m.Uncorrected)
			}
			b.StopTimer()
			pb, pd := float64(hb.ValueAtQuantile(50))/1e3, float64(hd.ValueAtQuantile(50))/1e3
			b.ReportMetric(pb, "baseline-p50-µs")
			b.ReportMetric(pd, "driver-p50-µs")
			b.ReportMetric(pd/pb, "ratio")
		})
	}
}

// BenchmarkC64 alternates rounds of 3000 calls from 64 callers of the
// baseline and the driver (acks-all; default options, and four partitions
// over two responders).
func BenchmarkC64(b *testing.B) {
	url := needBroker(b)
	for _, s := range c64Settings {
		b.Run(s.name, func(b *testing.B) { benchC64(b, url, s.opts) })
	}
}

var c64Settings = []struct {
	name string
	opts map[string]string
}{
	{"default", nil},
	{"p4-r2", map[string]string{"partitions": "4", "responders": "2"}},
}

func benchC64(b *testing.B, url string, opts map[string]string) {
	const round, callers = 3000, 64
	bl := newBaseline(b, url, kafka.AcksAll)
	defer bl.close()
	cl := serveDial(b, url, drivers.Config{Variant: kafka.AcksAll, Options: opts})
	load := runner.Load{Payload: benchPayload, Concurrency: callers, Calls: round, Timeout: 10 * time.Second, Seed: 1}
	bl.concurrent(b, callers, round)
	if _, err := runner.RunCell(context.Background(), cl, load, nil); err != nil {
		b.Fatal(err)
	}
	var tb, td time.Duration
	b.ResetTimer()
	for range b.N {
		tb += bl.concurrent(b, callers, round)
		t0 := time.Now()
		m, err := runner.RunCell(context.Background(), cl, load, nil)
		td += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if m.Counts.OK != round {
			b.Fatalf("counts %+v", m.Counts)
		}
	}
	b.StopTimer()
	rb := float64(round*b.N) / tb.Seconds()
	rd := float64(round*b.N) / td.Seconds()
	b.ReportMetric(rb, "baseline-calls/s")
	b.ReportMetric(rd, "driver-calls/s")
	b.ReportMetric(rd/rb, "ratio")
}
