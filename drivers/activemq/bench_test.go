package activemq_test

// Benchmarks against the package's broker (see main_test.go), each
// comparing the driver with a minimal loop written with go-stomp's own
// client (stomp.Conn) on the same broker in the same run, in alternating
// rounds so that both see the same machine load:
//
//	go test -run '^$' -bench . -benchtime 10x ./drivers/activemq/
//
//   - BenchmarkC1Ratio/VARIANT: one call at a time; reports both p50s and
//     driver/baseline (target: at most 1.2).
//   - BenchmarkC64/VARIANT: 64 callers; reports both throughputs and
//     driver/baseline (target: at least 1).
//
// The baseline: a responder connection subscribed to a request queue with
// ack:auto that sends each reply at once; a caller connection subscribed
// to its temporary queue that SENDs the request with reply-to and
// correlation-id (persistent: persistent:true and a receipt, which
// stomp.Conn.Send waits for) and reads the reply from the subscription's
// channel. At concurrency 1 the calling goroutine reads the channel
// itself; at 64 one goroutine routes replies to the callers by
// correlation id.

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/activemq"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/proc"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
)

const benchPayload = 128

var benchSeq atomic.Int64

func benchRequest(id uint64) []byte {
	p := driverstest.BenchPayload(benchPayload)
	return wire.Append(nil, &wire.Fields{ID: id, Payload: p, Checksum: wire.Checksum(p), SentUnixNano: time.Now().UnixNano()})
}

func stompDial(b *testing.B, brokerURL string) *stomp.Conn {
	b.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		b.Fatal(err)
	}
	c, err := stomp.Dial("tcp", u.Host,
		stomp.ConnOpt.AcceptVersion(stomp.V12),
		stomp.ConnOpt.HeartBeat(0, 0),
		stomp.ConnOpt.ReadBufferSize(64<<10),
		stomp.ConnOpt.WriteBufferSize(64<<10))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// baseline is the minimal loop's connections.
type baseline struct {
	queue      string
	persistent bool
	resp, call *stomp.Conn
	reqSub     *stomp.Subscription
	repSub     *stomp.Subscription
	done       chan struct{}
	request    []byte
	seq        uint64
}

func newBaseline(b *testing.B, brokerURL string, persistent bool) *baseline {
	b.Helper()
	bl := &baseline{
		queue:      fmt.Sprintf("/queue/rpcbench.bench.%d.%d", time.Now().UnixNano(), benchSeq.Add(1)),
		persistent: persistent, done: make(chan struct{}), request: benchRequest(1),
	}
	bl.resp = stompDial(b, brokerURL)
	bl.call = stompDial(b, brokerURL)
	var err error
	if bl.reqSub, err = bl.resp.Subscribe(bl.queue, stomp.AckAuto); err != nil {
		b.Fatal(err)
	}
	if bl.repSub, err = bl.call.Subscribe("/temp-queue/rep", stomp.AckAuto); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(bl.done)
		for m := range bl.reqSub.C {
			if m.Err != nil {
				return
			}
			bl.resp.Send(m.Header.Get("reply-to"), "", wire.Respond(m.Body, nil),
				stomp.SendOpt.Header("correlation-id", m.Header.Get("correlation-id")))
		}
	}()
	// a first call makes sure both subscriptions are in place
	bl.callOnce(b)
	return bl
}

func (bl *baseline) close() {
	// Disconnect, not MustDisconnect: MustDisconnect closes the write
	// channel, and a Send racing with it panics
	bl.resp.Disconnect()
	bl.call.Disconnect()
	<-bl.done
}

func (bl *baseline) send(b *testing.B, id uint64) {
	opts := []func(*frame.Frame) error{
		stomp.SendOpt.Header("reply-to", "/temp-queue/rep"),
		stomp.SendOpt.Header("correlation-id", strconv.FormatUint(id, 36)),
	}
	if bl.persistent {
		opts = append(opts, stomp.SendOpt.Header("persistent", "true"), stomp.SendOpt.Receipt)
	}
	if err := bl.call.Send(bl.queue, "", bl.request, opts...); err != nil {
		b.Error(err)
	}
}

// callOnce is one call at a time: send, read the reply channel.
func (bl *baseline) callOnce(b *testing.B) {
	bl.seq++
	want := strconv.FormatUint(bl.seq, 36)
	bl.send(b, bl.seq)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case m := <-bl.repSub.C:
			if m.Err != nil {
				b.Fatal(m.Err)
			}
			if m.Header.Get("correlation-id") == want {
				return
			}
		case <-t.C:
			b.Fatal("baseline: no reply")
		}
	}
}

// concurrent runs total calls from n goroutines; one goroutine routes the
// replies.
func (bl *baseline) concurrent(b *testing.B, n int, total int64) time.Duration {
	var mu sync.Mutex
	waiting := map[string]chan struct{}{}
	stop := make(chan struct{})
	routed := make(chan struct{})
	go func() {
		defer close(routed)
		for {
			select {
			case m := <-bl.repSub.C:
				id := m.Header.Get("correlation-id")
				mu.Lock()
				ch := waiting[id]
				delete(waiting, id)
				mu.Unlock()
				if ch != nil {
					close(ch)
				}
			case <-stop:
				return
			}
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
				waiting[strconv.FormatUint(id, 36)] = ch
				mu.Unlock()
				bl.send(b, id)
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
					b.Error("baseline: no reply")
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	bl.seq = next.Load()
	close(stop)
	<-routed
	return elapsed
}

func serveDial(b *testing.B, brokerURL string, cfg drivers.Config) drivers.Client {
	tr := driverstest.Configure(b, activemq.New(), cfg)
	srv := driverstest.Serve(b, tr, drivers.Place{Broker: brokerURL})
	return driverstest.Dial(b, tr, srv.Addr())
}

var variants = []string{activemq.Transient, activemq.Persistent}

// BenchmarkC1Ratio alternates rounds of 200 calls of the baseline and the
// driver (one round each per b.N).
func BenchmarkC1Ratio(b *testing.B) {
	brokerURL := needBroker(b)
	const round = 200
	for _, v := range variants {
		b.Run(v, func(b *testing.B) {
			bl := newBaseline(b, brokerURL, v == activemq.Persistent)
			defer bl.close()
			cl := serveDial(b, brokerURL, drivers.Config{Variant: v})
			load := runner.Load{Payload: benchPayload, Concurrency: 1, Calls: round, Timeout: 10 * time.Second, Seed: 1}
			for range 5 * round { // warm both paths, and the broker's JIT
				bl.callOnce(b)
			}
			for range 5 {
				if _, err := runner.RunCell(context.Background(), cl, load, nil); err != nil {
					b.Fatal(err)
				}
			}
			hb, hd := results.NewHistogram(), results.NewHistogram()
			b.ResetTimer()
			for range b.N {
				for range round {
					t0 := time.Now()
					bl.callOnce(b)
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
// baseline and the driver (default options; two responder connections;
// four caller connections), and reports the ratio of the totals and of
// each side's best round.
func BenchmarkC64(b *testing.B) {
	brokerURL := needBroker(b)
	for _, v := range variants {
		for _, set := range c64Settings {
			b.Run(v+"/"+set.name, func(b *testing.B) { benchC64(b, brokerURL, v, set.opts) })
		}
	}
}

var c64Settings = []struct {
	name string
	opts map[string]string
}{
	{"default", nil},
	{"resp2", map[string]string{"responders": "2"}},
	{"conns4", map[string]string{"connections": "4"}},
}

func benchC64(b *testing.B, brokerURL, v string, opts map[string]string) {
	const round, callers = 3000, 64
	bl := newBaseline(b, brokerURL, v == activemq.Persistent)
	defer bl.close()
	cl := serveDial(b, brokerURL, drivers.Config{Variant: v, Options: opts})
	load := runner.Load{Payload: benchPayload, Concurrency: callers, Calls: round, Timeout: 10 * time.Second, Seed: 1}
	bl.concurrent(b, callers, round)
	if _, err := runner.RunCell(context.Background(), cl, load, nil); err != nil {
		b.Fatal(err)
	}
	var tb, td, cb, cd time.Duration
	// the best round of each side, so that a burst of load from elsewhere
	// on a shared machine does not decide the ratio
	bestB, bestD := time.Duration(1<<62), time.Duration(1<<62)
	b.ResetTimer()
	for range b.N {
		c0, _ := proc.SelfCPU()
		eb := bl.concurrent(b, callers, round)
		c1, _ := proc.SelfCPU()
		t0 := time.Now()
		m, err := runner.RunCell(context.Background(), cl, load, nil)
		ed := time.Since(t0)
		c2, _ := proc.SelfCPU()
		tb, td = tb+eb, td+ed
		bestB, bestD = min(bestB, eb), min(bestD, ed)
		cb += c1 - c0
		cd += c2 - c1
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
	b.ReportMetric(bestB.Seconds()/bestD.Seconds(), "best-round-ratio")
	// this process's CPU per call (callers and responder), each side
	b.ReportMetric(float64(cb.Microseconds())/float64(round*b.N), "baseline-cpu-µs/call")
	b.ReportMetric(float64(cd.Microseconds())/float64(round*b.N), "driver-cpu-µs/call")
}
