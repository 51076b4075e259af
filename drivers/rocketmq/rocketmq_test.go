package rocketmq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/rocketmq"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/rmqadmin"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/scenarios"
)

// Brokers shared by the tests, one per flush mode, started on first use
// and stopped by TestMain. RPCBENCH_ROCKETMQ (and RPCBENCH_ROCKETMQ_SYNC
// for sync-flush) name the name server of a broker that already runs.
type sharedBroker struct {
	once sync.Once
	r    *broker.RocketMQBroker
	url  string
	err  error
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*sharedBroker{}
	// owned are brokers tests started themselves and have not stopped.
	owned []*broker.RocketMQBroker
)

func TestMain(m *testing.M) {
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sharedMu.Lock()
	if code != 0 {
		for _, r := range sharedLogs {
			fmt.Fprintf(os.Stderr, "last lines of the shared broker's broker.log (%s):\n%s\n", r.URL, r.LogTail(ctx, 60))
		}
	}
	for _, b := range shared {
		if b.r != nil {
			if err := b.r.Stop(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "stop broker:", err)
				code = 1
			}
		}
	}
	for _, r := range owned {
		r.Stop(ctx)
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// brokerFailed fails the test in CI and skips it elsewhere when no broker
// can be started here.
func brokerFailed(t testing.TB, err error) {
	t.Helper()
	if reason, ok := broker.IsUnavailable(err); ok && os.Getenv("CI") != "true" {
		t.Skip("no RocketMQ broker: " + reason)
	}
	t.Fatalf("start RocketMQ broker: %v", err)
}

// needBroker returns the name server of a running broker that flushes the
// way variant says: the shared async-flush broker, or a sync-flush broker
// of the test's own (stopped when it ends; only one test needs it).
func needBroker(t testing.TB, variant string) string {
	t.Helper()
	env := "RPCBENCH_ROCKETMQ"
	if variant == rocketmq.SyncFlush {
		env = "RPCBENCH_ROCKETMQ_SYNC"
	}
	if url := os.Getenv(env); url != "" {
		return url
	}
	if variant == rocketmq.SyncFlush {
		return ownBroker(t, variant).URL
	}
	sharedMu.Lock()
	b := shared[variant]
	if b == nil {
		b = &sharedBroker{}
		shared[variant] = b
	}
	sharedMu.Unlock()
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		b.r, b.err = broker.StartRocketMQ(ctx, broker.StartOptions{Params: brokerParams(variant)})
		if b.err == nil {
			b.url = b.r.URL
			brokerLogOnFailure(t, b.r)
			t.Logf("%s broker: %s from %s (%s), started in %v", variant, b.r.URL, b.r.Source, b.r.Image, b.r.Startup.Round(time.Millisecond))
		}
	})
	if b.err != nil {
		brokerFailed(t, b.err)
	}
	return b.url
}

// ownBroker starts a broker this test alone uses (it may kill it); it is
// stopped when the test ends.
func ownBroker(t testing.TB, variant string) *broker.RocketMQBroker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := broker.StartRocketMQ(ctx, broker.StartOptions{Params: brokerParams(variant)})
	if err != nil {
		brokerFailed(t, err)
	}
	t.Logf("%s broker of %s: %s from %s (%s), started in %v", variant, t.Name(), r.URL, r.Source, r.Image, r.Startup.Round(time.Millisecond))
	sharedMu.Lock()
	owned = append(owned, r)
	sharedMu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of broker.log:\n%s", r.LogTail(context.Background(), 40))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop broker: %v", err)
		}
	})
	return r
}

// brokerLogOnFailure registers a shared broker whose log TestMain prints
// when a test failed.
func brokerLogOnFailure(_ testing.TB, r *broker.RocketMQBroker) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	sharedLogs = append(sharedLogs, r)
}

var sharedLogs []*broker.RocketMQBroker

// setup is a configuration and the broker its responder uses.
type setup struct {
	drivers.Config
	url string
}

func cfg(variant, url string, opts map[string]string) setup {
	return setup{drivers.Config{Variant: variant, Options: opts}, url}
}

func (s setup) tr(t testing.TB) drivers.Transport {
	return driverstest.Configure(t, rocketmq.New(), s.Config)
}

func (s setup) at() drivers.Place { return drivers.Place{Broker: s.url} }

// brokerParams is what the driver asks of the broker for a variant.
func brokerParams(variant string) map[string]string {
	tr, err := rocketmq.New().Configure(drivers.Config{Variant: variant})
	if err != nil {
		panic(err)
	}
	return tr.BrokerParams()
}

func TestConfigure(t *testing.T) {
	d := rocketmq.New()
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Options: map[string]string{"handlers": "8"}}, `rocketmq: unknown option "handlers" (want one of queues, producers, pull-batch, compress)`},
		{drivers.Config{ResponderConcurrency: 100001}, `rocketmq: responder concurrency 100001: the push consumer runs at most 100000 handler goroutines`},
		{drivers.Config{Options: map[string]string{"queues": "x"}}, `rocketmq: option queues="x": want a whole number from 1 to 64`},
		{drivers.Config{Options: map[string]string{"producers": "65"}}, `rocketmq: option producers="65": want a whole number from 1 to 64`},
		{drivers.Config{Options: map[string]string{"compress": "maybe"}}, `rocketmq: option compress="maybe": want true or false`},
		{drivers.Config{Options: map[string]string{"group": "x"}}, `rocketmq: unknown option "group" (want one of queues, producers, pull-batch, compress)`},
		{drivers.Config{Variant: "no-flush"}, `rocketmq: unknown variant "no-flush" (want one of async-flush, sync-flush)`},
	} {
		_, err := d.Configure(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Configure(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, v := range []string{"", rocketmq.AsyncFlush, rocketmq.SyncFlush} {
		if _, err := d.Configure(drivers.Config{Variant: v}); err != nil {
			t.Errorf("variant %q: %v", v, err)
		}
	}
	if s := d.Spec(); s.Kind != drivers.Broker || s.Broker != "rocketmq" || s.Libraries[0] != rocketmq.Module || !s.BrokerWarmup {
		t.Errorf("spec: %+v", s)
	}
}

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ns    []string
		topic string
		err   bool
	}{
		{"127.0.0.1:9876#rpcbench_req_ab", []string{"127.0.0.1:9876"}, "rpcbench_req_ab", false},
		{"127.0.0.1:9876", []string{"127.0.0.1:9876"}, "", false},
		{"rocketmq://127.0.0.1:9876;127.0.0.1:9877#t", []string{"127.0.0.1:9876", "127.0.0.1:9877"}, "t", false},
		{"", nil, "", true},
		{"localhost#t", nil, "", true},
	} {
		ns, topic, err := rocketmq.ParseAddr(tc.in)
		if (err != nil) != tc.err || strings.Join(ns, ";") != strings.Join(tc.ns, ";") || topic != tc.topic {
			t.Errorf("ParseAddr(%q) = %v, %q, %v", tc.in, ns, topic, err)
		}
	}
	for v, want := range map[string]string{"": "ASYNC_FLUSH", rocketmq.AsyncFlush: "ASYNC_FLUSH", rocketmq.SyncFlush: "SYNC_FLUSH"} {
		if p := brokerParams(v); len(p) != 1 || p["flush"] != want {
			t.Errorf("broker params for %q: %v, want flush=%s", v, p, want)
		}
	}
}

// Defect 1: CreateReplyMessage drops the body it is given; the driver sets
// it afterwards.
func TestReplyMessageBody(t *testing.T) {
	req := &primitive.MessageExt{Message: primitive.Message{Topic: "req"}}
	req.WithProperty(primitive.PropertyCluster, "DefaultCluster")
	req.WithProperty(primitive.PropertyMessageReplyToClient, "client-1")
	req.WithProperty(primitive.PropertyCorrelationID, "corr-1")
	req.WithProperty(primitive.PropertyMessageTTL, "3")
	body := []byte("\x08\x01\x12\x03abc")

	lib, err := consumer.CreateReplyMessage(req, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(lib.Body) == string(body) {
		t.Log("rocketmq-client-go's CreateReplyMessage keeps the body now: the workaround may go")
	}
	m, err := rocketmq.ReplyMessage(req, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != string(body) {
		t.Fatalf("reply body %q, want %q", m.Body, body)
	}
	if m.Topic != "DefaultCluster_REPLY_TOPIC" || m.GetProperty(primitive.PropertyCorrelationID) != "corr-1" ||
		m.GetProperty(primitive.PropertyMessageReplyToClient) != "client-1" {
		t.Fatalf("reply message %+v", m)
	}
}

func TestConformance(t *testing.T) {
	for _, v := range []string{rocketmq.AsyncFlush, rocketmq.SyncFlush} {
		t.Run(v, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, rocketmq.New(), cfg(v, needBroker(t, v), nil).Config), drivers.Place{Broker: cfg(v, needBroker(t, v), nil).url})
		})
	}
	t.Run("options", func(t *testing.T) {
		opts := map[string]string{"queues": "2", "producers": "3", "pull-batch": "8", "compress": "true"}
		c := cfg(rocketmq.AsyncFlush, needBroker(t, rocketmq.AsyncFlush), opts)
		c.ResponderConcurrency = 4
		driverstest.Conformance(t, driverstest.Configure(t, rocketmq.New(), c.Config), drivers.Place{Broker: c.url})
	})
}

// TestStalled: calls to a responder whose handler hangs return by their
// deadline (Request runs on its own goroutine: the library's own wait is
// whole seconds and ignores ctx).
func TestStalled(t *testing.T) {
	driverstest.Stalled(t, driverstest.Configure(t, rocketmq.New(), cfg(rocketmq.AsyncFlush, needBroker(t, rocketmq.AsyncFlush), nil).Config), drivers.Place{Broker: cfg(rocketmq.AsyncFlush, needBroker(t, rocketmq.AsyncFlush), nil).url})
}

// TestResponderConcurrency: the push consumer handles at most
// responder_concurrency requests at once, and does reach that many.
func TestResponderConcurrency(t *testing.T) {
	d := rocketmq.New()
	c := cfg(rocketmq.AsyncFlush, needBroker(t, rocketmq.AsyncFlush), map[string]string{"producers": "2"})
	c.ResponderConcurrency = 3
	h, most := driverstest.Counting()
	srv := driverstest.ServeWith(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url}, h)
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
	m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 8, Calls: 80, ServiceTime: scenarios.ServiceTime{Mean: 20 * time.Millisecond}})
	driverstest.AllOK(t, m, 80)
	if got := most(); got != 3 {
		t.Fatalf("at most %d requests were in progress at once, want 3 (responder concurrency 3)", got)
	}
}

// TestLimits: requests and replies of the broker's maxMessageSize (4 MiB)
// go through; a request one byte larger is refused at once, and a reply
// one byte larger comes back as the responder's error, not a timeout.
func TestLimits(t *testing.T) {
	d := rocketmq.New()
	lim := cfg("", "", nil).tr(t).Limits(context.Background(), "")
	if lim.MaxRequest != 4<<20 || lim.MaxReply != 4<<20 {
		t.Fatalf("Limits = %+v, want 4 MiB both ways", lim)
	}
	for _, v := range []string{rocketmq.AsyncFlush, rocketmq.SyncFlush} {
		t.Run(v, func(t *testing.T) {
			c := cfg(v, needBroker(t, v), nil)
			srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
			client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
			caller, err := client.NewCaller()
			if err != nil {
				t.Fatal(err)
			}
			call := func(req []byte) ([]byte, error) {
				return caller.Call(context.Background(), time.Now().Add(20*time.Second), req, nil)
			}
			if _, err := call(driverstest.RequestOfSize(t, 1, lim.MaxRequest, 1024)); err != nil {
				t.Fatalf("request of %d bytes: %v", lim.MaxRequest, err)
			}
			reply, err := call(driverstest.RequestOfSize(t, 2, 100, driverstest.ReplyPayloadFor(lim.MaxReply)))
			if err != nil || len(reply) > lim.MaxReply || len(reply) < lim.MaxReply-16 {
				t.Fatalf("reply at the limit: %d bytes, %v", len(reply), err)
			}
			over := driverstest.RequestOfSize(t, 3, lim.MaxRequest+1, 1024)
			start := time.Now()
			_, err = call(over)
			if err == nil || !strings.Contains(err.Error(), "maxMessageSize") || time.Since(start) > 100*time.Millisecond {
				t.Fatalf("request over the limit: %v after %v, want a refusal naming maxMessageSize at once", err, time.Since(start))
			}
			_, err = caller.Call(context.Background(), time.Now().Add(5*time.Second), driverstest.RequestOfSize(t, 4, 100, driverstest.ReplyPayloadFor(lim.MaxReply)+64), nil)
			if err == nil || errors.Is(err, drivers.ErrTimeout) || !strings.Contains(err.Error(), "maxMessageSize") {
				rs := srv.(interface{ LastReplyError() error })
				t.Fatalf("reply over the limit: %v, want the responder's error naming maxMessageSize (last reply error: %v)", err, rs.LastReplyError())
			}
			if _, err := call(driverstest.RequestOfSize(t, 5, 100, 0)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestResponderGone(t *testing.T) {
	driverstest.ResponderGone(t, driverstest.Configure(t, rocketmq.New(), cfg(rocketmq.AsyncFlush, needBroker(t, rocketmq.AsyncFlush), nil).Config), drivers.Place{Broker: cfg(rocketmq.AsyncFlush, needBroker(t, rocketmq.AsyncFlush), nil).url})
}

// A cell labelled sync-flush must run on a broker that flushes each message.
func TestVariantNeedsMatchingBroker(t *testing.T) {
	url := needBroker(t, rocketmq.AsyncFlush)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := cfg(rocketmq.SyncFlush, url, nil).tr(t).Serve(ctx, drivers.Place{Broker: url}, func(req, buf []byte) []byte { return buf })
	if err == nil {
		srv.Close()
		t.Fatal("sync-flush served on an ASYNC_FLUSH broker")
	}
	if !strings.Contains(err.Error(), "flushDiskType=SYNC_FLUSH") {
		t.Fatalf("error %q does not name the flush mode", err)
	}
}

// Defect 6 and 8: every Serve makes its own topic before its consumer
// starts, and Close deletes it.
func TestTopicPerServe(t *testing.T) {
	url := needBroker(t, rocketmq.AsyncFlush)
	d := rocketmq.New()
	c := cfg(rocketmq.AsyncFlush, url, nil)
	a := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
	b := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
	_, ta, _ := rocketmq.ParseAddr(a.Addr())
	_, tb, _ := rocketmq.ParseAddr(b.Addr())
	if ta == "" || ta == tb || !strings.HasPrefix(a.Addr(), url+"#") {
		t.Fatalf("addresses %q and %q: want %s#<own topic>", a.Addr(), b.Addr(), url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := rmqadmin.TopicRoute(ctx, url, ta); err != nil {
		t.Fatalf("route of %s while serving: %v", ta, err)
	}
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), a.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 32, Concurrency: 2, Calls: 50}), 50)
	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := rmqadmin.TopicRoute(ctx, url, ta); !errors.Is(err, rmqadmin.ErrNoRoute) {
		t.Fatalf("route of %s after Close: %v, want none", ta, err)
	}
}

// Defect 7: replies to a client the broker has no heartbeat from are lost;
// Dial returns only once a request was answered, so the first call of a
// fresh client succeeds.
func TestFirstCallAfterDial(t *testing.T) {
	url := needBroker(t, rocketmq.AsyncFlush)
	d := rocketmq.New()
	c := cfg(rocketmq.AsyncFlush, url, map[string]string{"producers": "2"})
	srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
	for i := 0; i < 3; i++ {
		client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
		m := driverstest.Calls(t, client, runner.Load{Payload: 16, Concurrency: 2, Calls: 2, Timeout: 5 * time.Second})
		driverstest.AllOK(t, m, 2)
		client.Close()
	}
	// Replies the broker could not push to a client it had no heartbeat
	// from yet ("channel of <client> not found") show up here: warm-up
	// requests whose replies were lost.
	rs := srv.(interface {
		ReplyErrors() int64
		LastReplyError() error
	})
	t.Logf("replies lost during the warm-ups: %d (last: %v)", rs.ReplyErrors(), rs.LastReplyError())
}

// Defect 12: Request writes int(timeout.Seconds()) as the message's TTL,
// 0 for any sub-second timeout; the driver gives Request whole seconds (the
// call still ends at its own deadline), and sub-second timeouts work.
func TestRequestTTL(t *testing.T) {
	for wait, want := range map[time.Duration]time.Duration{
		time.Millisecond:        time.Second,
		300 * time.Millisecond:  time.Second,
		time.Second:             time.Second,
		1200 * time.Millisecond: 2 * time.Second,
		5 * time.Second:         5 * time.Second,
	} {
		got := rocketmq.RequestTTL(wait)
		if got != want || int(got.Seconds()) < 1 || got < wait {
			t.Errorf("RequestTTL(%v) = %v, want %v", wait, got, want)
		}
	}
}

func TestSubSecondTimeout(t *testing.T) {
	url := needBroker(t, rocketmq.AsyncFlush)
	d := rocketmq.New()
	c := cfg(rocketmq.AsyncFlush, url, nil)
	srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
	m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Calls: 200, Timeout: 900 * time.Millisecond})
	// A loaded machine may time a few out; none may fail otherwise.
	if m.Counts.OK < 150 || m.Counts.Mismatch+m.Counts.Responder+m.Counts.Transport != 0 {
		t.Fatalf("900 ms timeouts: %+v", m.Counts)
	}
}

// Defects 3 and 5: a broker that accepts requests but answers nothing makes
// the library's send time out after its hard-coded 3 s and then
// nil-dereference in its own goroutine. The driver's PanicHandler keeps the
// process alive, and every call ends as a timeout at its own deadline.
// Defect 4 and the stopped broker: once the broker dies, calls in flight
// and calls after it fail within their timeout, the cell ends, and the
// responder and client close.
func TestBrokerPausedThenStopped(t *testing.T) {
	r := ownBroker(t, rocketmq.AsyncFlush)
	d := rocketmq.New()
	c := cfg(rocketmq.AsyncFlush, r.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := c.tr(t).Serve(ctx, c.at(), wireRespond)
	if err != nil {
		t.Fatal(err)
	}
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Calls: 100}), 100)

	before := rocketmq.RecoveredPanics()
	if err := r.Pause(ctx); err != nil {
		t.Fatalf("pause broker: %v", err)
	}
	m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Duration: time.Second, Timeout: 500 * time.Millisecond})
	if m.Counts.OK != 0 || m.Counts.Started == 0 || m.Counts.Timeout != m.Counts.Started {
		t.Fatalf("broker paused: want every call to time out, got %+v", m.Counts)
	}
	// The library's sends time out 3 s after they were written; wait for
	// their (recovered) panics.
	deadline := time.Now().Add(20 * time.Second)
	for rocketmq.RecoveredPanics() == before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if rocketmq.RecoveredPanics() == before {
		t.Error("no async send failure was recovered while the broker was paused")
	}
	if err := r.Resume(ctx); err != nil {
		t.Fatalf("resume broker: %v", err)
	}
	// The broker is back: calls succeed again.
	m = driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Duration: 3 * time.Second, Warmup: 2 * time.Second, Timeout: 2 * time.Second})
	if m.Counts.OK == 0 {
		t.Fatalf("after resume: %+v", m.Counts)
	}

	// Kill the broker in the middle of a cell.
	done := make(chan *runner.Measurement, 1)
	go func() {
		m, err := runner.RunCell(ctx, client, runner.Load{Payload: 64, Concurrency: 8, Duration: 4 * time.Second, Timeout: time.Second}, nil)
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := r.Kill(ctx); err != nil {
		t.Fatalf("kill broker: %v", err)
	}
	select {
	case m = <-done:
	case <-ctx.Done():
		t.Fatal("the cell did not end after the broker was killed")
	}
	c1 := m.Counts
	if c1.OK == 0 || c1.Failed() == 0 || c1.Failed() != c1.Timeout+c1.Transport {
		t.Fatalf("broker killed mid-cell: want successes, then timeouts or transport errors only, got %+v", c1)
	}
	m = driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Duration: time.Second, Timeout: 500 * time.Millisecond})
	c2 := m.Counts
	if c2.OK != 0 || c2.Started == 0 || c2.Timeout+c2.Transport != c2.Started {
		t.Fatalf("after the broker died: want every call to fail cleanly, got %+v", c2)
	}
	t.Logf("killed mid-cell: %+v; after: %+v; recovered panics: %d", c1, c2, rocketmq.RecoveredPanics()-before)
	closed := make(chan error, 2)
	go func() { closed <- srv.Close() }()
	go func() { closed <- client.Close() }()
	for i := 0; i < 2; i++ {
		select {
		case <-closed:
		case <-time.After(time.Minute):
			t.Fatal("Close hung after the broker died")
		}
	}
}

// Defect 10: the library logs nothing at Info. A child process makes calls
// and its output must hold no library log line.
func TestQuietLogs(t *testing.T) {
	if os.Getenv("RPCBENCH_ROCKETMQ_QUIET_CHILD") == "1" {
		url := os.Getenv("RPCBENCH_ROCKETMQ_QUIET_URL")
		d := rocketmq.New()
		c := cfg(rocketmq.AsyncFlush, url, nil)
		srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
		client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
		driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)
		return
	}
	url := needBroker(t, rocketmq.AsyncFlush)
	cmd := exec.Command(os.Args[0], "-test.run=^TestQuietLogs$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RPCBENCH_ROCKETMQ_QUIET_CHILD=1", "RPCBENCH_ROCKETMQ_QUIET_URL="+url, "ROCKETMQ_GO_LOG_LEVEL=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "level=") || strings.Contains(line, "receive push reply") {
			t.Fatalf("library log line in the output: %q\n%s", line, out)
		}
	}
}
