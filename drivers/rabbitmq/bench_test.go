package rabbitmq

// Benchmarks against the package's broker (see main_test.go):
//
//	go test -run '^$' -bench . -benchtime 3s ./drivers/rabbitmq/
//
//   - BenchmarkBaseline/VARIANT: a minimal amqp091-go loop doing the same
//     pattern as VARIANT (one responder goroutine on one channel, one caller
//     goroutine publishing and reading its reply deliveries directly), one
//     call at a time. Reports p50-µs.
//   - BenchmarkDriver/VARIANT: the driver through runner.RunCell at
//     concurrency 1 (same payload). Reports p50-µs; compare with the
//     baseline of the same variant (target: within 1.2×).
//   - BenchmarkC64/driver-*: the driver at concurrency 64; BenchmarkC64/
//     tutorial: 64 tutorial-style callers (one connection each, one call at
//     a time, a reply queue declared per call). Report calls/s (target: the
//     best driver setting at least 3× the tutorial).

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

const benchPayload = 128

func benchRequest(id uint64) []byte {
	p := make([]byte, benchPayload)
	for i := range p {
		p[i] = byte(i)
	}
	return wire.Append(nil, &wire.Fields{ID: id, Payload: p, Checksum: wire.Checksum(p), SentUnixNano: time.Now().UnixNano()})
}

// baselineResponder is the minimal responder: one channel, prefetch 200,
// manual acks, one goroutine answering with wire.Respond.
func baselineResponder(b *testing.B, url string, v variant, queue string) func() {
	b.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := declareRequestQueue(ch, v, queue); err != nil {
		b.Fatal(err)
	}
	if err := ch.Qos(200, 0, false); err != nil {
		b.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf []byte
		for d := range ds {
			buf = wire.Respond(d.Body, buf[:0])
			ch.Publish("", d.ReplyTo, false, false, amqp.Publishing{CorrelationId: d.CorrelationId, Body: buf})
			d.Ack(false)
		}
	}()
	return func() {
		ch.QueueDelete(queue, false, false, false)
		conn.Close()
		<-done
	}
}

// baselineCaller is the minimal caller: one channel, its reply consumer
// read directly by the calling goroutine.
type baselineCaller struct {
	v       variant
	queue   string
	conn    *amqp.Connection
	ch      *amqp.Channel
	replyTo string
	replies <-chan amqp.Delivery
	req     []byte
	seq     uint64
}

func newBaselineCaller(b *testing.B, url string, v variant, queue string) *baselineCaller {
	b.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if v.confirms() {
		if err := ch.Confirm(false); err != nil {
			b.Fatal(err)
		}
	}
	replyTo := directReplyQueue
	if v.pattern == ReplyQueue {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		replyTo = q.Name
	}
	replies, err := ch.Consume(replyTo, "", true, true, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	return &baselineCaller{v: v, queue: queue, conn: conn, ch: ch, replyTo: replyTo, replies: replies, req: benchRequest(1)}
}

func (c *baselineCaller) call(b *testing.B) {
	c.seq++
	id := strconv.FormatUint(c.seq, 36)
	msg := amqp.Publishing{CorrelationId: id, ReplyTo: c.replyTo, DeliveryMode: c.v.deliveryMode(), Body: c.req}
	var dc *amqp.DeferredConfirmation
	var err error
	if c.v.confirms() {
		dc, err = c.ch.PublishWithDeferredConfirm("", c.queue, false, false, msg)
	} else {
		err = c.ch.Publish("", c.queue, false, false, msg)
	}
	if err != nil {
		b.Fatal(err)
	}
	for r := range c.replies {
		if r.CorrelationId == id {
			break
		}
	}
	if dc != nil && !dc.Wait() {
		b.Fatal("nack")
	}
}

func BenchmarkBaseline(b *testing.B) {
	url := needBroker(b)
	for _, vs := range New().Spec().Variants {
		b.Run(vs.Name, func(b *testing.B) {
			v, _ := parseVariant(vs.Name)
			queue := randomName("rpcbench.bench.")
			stop := baselineResponder(b, url, v, queue)
			defer stop()
			c := newBaselineCaller(b, url, v, queue)
			defer c.conn.Close()
			for range 200 {
				c.call(b)
			}
			h := results.NewHistogram()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				c.call(b)
				h.RecordValue(int64(time.Since(t0)))
			}
			b.StopTimer()
			b.ReportMetric(float64(h.ValueAtQuantile(50))/1e3, "p50-µs")
		})
	}
}

// BenchmarkC1Ratio measures the baseline and the driver of each variant at
// concurrency 1 in alternating rounds of 200 calls (one round per b.N), so
// both see the same machine load, and reports both p50s and their ratio
// (target: driver/baseline <= 1.2). Use -benchtime 10x or more.
func BenchmarkC1Ratio(b *testing.B) {
	url := needBroker(b)
	const round = 200
	for _, vs := range New().Spec().Variants {
		b.Run(vs.Name, func(b *testing.B) {
			v, _ := parseVariant(vs.Name)
			queue := randomName("rpcbench.bench.")
			stop := baselineResponder(b, url, v, queue)
			defer stop()
			c := newBaselineCaller(b, url, v, queue)
			defer c.conn.Close()
			srv, cl := serveDial(b, url, drivers.Config{Variant: vs.Name})
			defer srv.Close()
			defer cl.Close()
			load := runner.Load{Payload: benchPayload, Concurrency: 1, Calls: round, Timeout: 10 * time.Second, Seed: 1}
			for range round {
				c.call(b)
			}
			if _, err := runner.RunCell(context.Background(), cl, load, nil); err != nil {
				b.Fatal(err)
			}
			hb, hd := results.NewHistogram(), results.NewHistogram()
			b.ResetTimer()
			for range b.N {
				for range round {
					t0 := time.Now()
					c.call(b)
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

// runDriver runs b.N calls through the driver at the given concurrency and
// reports p50-µs and calls/s.
func runDriver(b *testing.B, url string, cfg drivers.Config, concurrency int) {
	srv, cl := serveDial(b, url, cfg)
	defer srv.Close()
	defer cl.Close()
	load := runner.Load{Payload: benchPayload, Concurrency: concurrency, Calls: int64(b.N), Warmup: 300 * time.Millisecond, Timeout: 10 * time.Second, Seed: 1}
	b.ResetTimer()
	m, err := runner.RunCell(context.Background(), cl, load, nil)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if m.Counts.Failed() != 0 {
		b.Fatalf("failures: %+v", m.Counts)
	}
	b.ReportMetric(float64(m.Uncorrected.ValueAtQuantile(50))/1e3, "p50-µs")
	if m.Seconds > 0 {
		b.ReportMetric(float64(m.Counts.OK)/m.Seconds, "calls/s")
	}
}

func BenchmarkDriver(b *testing.B) {
	url := needBroker(b)
	for _, vs := range New().Spec().Variants {
		b.Run(vs.Name, func(b *testing.B) {
			runDriver(b, url, drivers.Config{Variant: vs.Name}, 1)
		})
	}
}

// c64Settings are the driver settings compared with the tutorial caller.
var c64Settings = []struct {
	name string
	cfg  drivers.Config
}{
	{"driver-direct-reply-to-transient", drivers.Config{Variant: "direct-reply-to/transient"}},
	{"driver-direct-reply-to-transient-shared-channel", drivers.Config{Variant: "direct-reply-to/transient", Options: map[string]string{"channels": "1"}}},
	{"driver-direct-reply-to-transient-2conn-2ch-4par", drivers.Config{Variant: "direct-reply-to/transient", Options: map[string]string{"connections": "2", "channels": "2", "parallelism": "4"}}},
	{"driver-reply-queue-transient-2conn-2ch-4par", drivers.Config{Variant: "reply-queue/transient", Options: map[string]string{"connections": "2", "channels": "2", "parallelism": "4"}}},
}

func BenchmarkC64(b *testing.B) {
	url := needBroker(b)
	for _, s := range c64Settings {
		b.Run(s.name, func(b *testing.B) {
			runDriver(b, url, s.cfg, 64)
		})
	}
	b.Run("tutorial", func(b *testing.B) {
		benchTutorial(b, url, 64)
	})
}

// benchTutorial is the tutorial's caller: each of n goroutines owns a
// connection and makes one call at a time, declaring an exclusive reply
// queue for every call (and dropping it afterwards).
func benchTutorial(b *testing.B, url string, n int) {
	v := variant{ReplyQueue, Transient}
	queue := randomName("rpcbench.bench.")
	stop := baselineResponder(b, url, v, queue)
	defer stop()
	type worker struct {
		conn *amqp.Connection
		ch   *amqp.Channel
	}
	ws := make([]worker, n)
	for i := range ws {
		conn, err := amqp.Dial(url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = worker{conn, ch}
	}
	req := benchRequest(1)
	call := func(ch *amqp.Channel, id string) error {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return err
		}
		replies, err := ch.Consume(q.Name, id, true, true, false, false, nil)
		if err != nil {
			return err
		}
		if err := ch.Publish("", queue, false, false, amqp.Publishing{CorrelationId: id, ReplyTo: q.Name, Body: req}); err != nil {
			return err
		}
		for r := range replies {
			if r.CorrelationId == id {
				break
			}
		}
		// Cancelling the only consumer deletes the auto-delete queue.
		return ch.Cancel(id, false)
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	b.ResetTimer()
	start := time.Now()
	for i := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; left.Add(-1) >= 0; seq++ {
				if err := call(ws[i].ch, "c"+strconv.Itoa(i)+"-"+strconv.Itoa(seq)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}
