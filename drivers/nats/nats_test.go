package nats_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/nats"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/scenarios"
)

// startBroker starts a nats-server through the broker package's default
// starter, as `rpcbench run` does (a child process: this test binary
// re-executed), and returns it with its stop function (also run when the
// test ends; stopping twice is harmless).
func startBroker(t testing.TB, params map[string]string) (broker.Broker, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, stop, err := broker.NATSProcess()(ctx, broker.StartOptions{Dir: t.TempDir(), Params: params})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	var stopped atomic.Bool
	stopFn := func() {
		if stopped.Swap(true) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("stop nats: %v", err)
		}
	}
	t.Cleanup(stopFn)
	return b, stopFn
}

// setup is a configuration and the broker its responder uses.
type setup struct {
	drivers.Config
	url string
}

func cfg(variant, url string, opts map[string]string) setup {
	return setup{drivers.Config{Variant: variant, Options: opts}, url}
}

func (s setup) tr(t testing.TB) drivers.Transport {
	return driverstest.Configure(t, nats.New(), s.Config)
}

func (s setup) at() drivers.Place { return drivers.Place{Broker: s.url} }

func TestConformance(t *testing.T) {
	b, _ := startBroker(t, nil)
	for _, tc := range []struct {
		name    string
		variant string
		opts    map[string]string
		conc    int
	}{
		{"core", "core", nil, 0},
		{"core/connections=3,responders=2,concurrency=1", "core", map[string]string{"connections": "3", "responders": "2"}, 1},
		{"jetstream", "jetstream", nil, 0},
		{"jetstream/connections=2,responders=3,concurrency=4", "jetstream", map[string]string{"connections": "2", "responders": "3"}, 4},
		{"core+stream-copy", "core+stream-copy", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(tc.variant, b.URL, tc.opts)
			c.ResponderConcurrency = tc.conc
			driverstest.Conformance(t, driverstest.Configure(t, nats.New(), c.Config), drivers.Place{Broker: c.url})
		})
	}
}

// TestStalled: calls to a responder whose handler hangs return by their
// deadline, in every variant.
func TestStalled(t *testing.T) {
	b, _ := startBroker(t, nil)
	for _, v := range nats.New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			driverstest.Stalled(t, driverstest.Configure(t, nats.New(), cfg(v.Name, b.URL, nil).Config), drivers.Place{Broker: cfg(v.Name, b.URL, nil).url})
		})
	}
}

// TestStreamCopySyncAlways runs core+stream-copy with sync=always on a
// broker started with the params the driver asks for, and checks the stream
// really stored the requests.
func TestStreamCopySyncAlways(t *testing.T) {
	d := nats.New()
	c := cfg("core+stream-copy", "", map[string]string{"sync": "always"})
	params := c.tr(t).BrokerParams()
	if params["sync"] != "always" {
		t.Fatalf("BrokerParams(core+stream-copy, sync=always) = %v", params)
	}
	b, _ := startBroker(t, params)
	if got := b.Details["jetstream_sync"]; got != "always" {
		t.Fatalf("broker details: jetstream_sync = %q, want always", got)
	}
	c.url = b.URL
	srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Calls: 300}), 300)

	_, subject := nats.SplitAddr(srv.Addr())
	if n := storedMessages(t, b.URL, subject, 300); n != 300 {
		t.Fatalf("stream holds %d requests, want 300", n)
	}
}

// TestJetStreamSyncAlways runs the jetstream variant with sync=always: every
// request went through the durable consumer and was acknowledged, so the
// work-queue stream holds none afterwards.
func TestJetStreamSyncAlways(t *testing.T) {
	d := nats.New()
	c := cfg("jetstream", "", map[string]string{"sync": "always"})
	params := c.tr(t).BrokerParams()
	if params["sync"] != "always" {
		t.Fatalf("BrokerParams(jetstream, sync=always) = %v", params)
	}
	b, _ := startBroker(t, params)
	c.url = b.URL
	srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Calls: 300}), 300)

	_, subject := nats.SplitAddr(srv.Addr())
	// Acks are sent after the replies, without waiting: give the last ones
	// a moment.
	ci := consumerInfo(t, b.URL, subject)
	for end := time.Now().Add(5 * time.Second); ci.NumAckPending != 0 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		ci = consumerInfo(t, b.URL, subject)
	}
	if ci.Delivered.Consumer < 300 || ci.AckFloor.Consumer < 300 || ci.NumAckPending != 0 {
		t.Fatalf("consumer delivered %d, ack floor %d, %d pending: want 300 delivered and acknowledged",
			ci.Delivered.Consumer, ci.AckFloor.Consumer, ci.NumAckPending)
	}
	if n := storedMessages(t, b.URL, subject, 0); n != 0 {
		t.Fatalf("work queue holds %d requests after every reply, want 0", n)
	}
}

// consumerInfo returns the durable consumer of the stream capturing subject.
func consumerInfo(t *testing.T, url, subject string) *jetstream.ConsumerInfo {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, name, "rpcbench-responders")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// TestJetStreamDurable: the jetstream variant is RPC over a durable queue.
// Requests published while no responder runs are stored (the publish is
// acknowledged, the call times out waiting for its reply, never "no
// responders"), and a responder served again on the same subject gets
// them and answers them; then calls succeed again.
func TestJetStreamDurable(t *testing.T) {
	b, _ := startBroker(t, nil)
	d := nats.New()
	subject := "rpcbench.durable" + strconv.FormatInt(time.Now().UnixNano(), 36) + ".req"
	c := cfg("jetstream", b.URL+"#"+subject, nil)
	first := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), first.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 50}), 50)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStreams(t, b.URL, subject) })

	// No responder: 20 calls are stored and time out.
	caller, err := client.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint64]bool{}
	for i := uint64(1000); i < 1020; i++ {
		req := wire.Append(nil, &wire.Fields{ID: i, Payload: []byte("stored"), Checksum: wire.Checksum([]byte("stored"))})
		_, err := caller.Call(context.Background(), time.Now().Add(100*time.Millisecond), req, nil)
		if !errors.Is(err, drivers.ErrTimeout) {
			t.Fatalf("call %d with no responder: got %v, want a timeout waiting for the reply", i, err)
		}
		ids[i] = true
	}
	if n := storedMessages(t, b.URL, subject, 20); n != 20 {
		t.Fatalf("stream holds %d requests, want the 20 sent while no responder ran", n)
	}

	// A new responder on the subject answers the stored requests.
	var mu sync.Mutex
	seen := map[uint64]bool{}
	second := driverstest.ServeWith(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url}, func(req, buf []byte) []byte {
		var f wire.Fields
		if wire.Parse(req, &f) == nil && ids[f.ID] {
			mu.Lock()
			seen[f.ID] = true
			mu.Unlock()
		}
		return wire.Respond(req, buf)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new responder handled %d of the %d stored requests", n, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Calls: 100}), 100)
	second.Close()
}

// deleteStreams deletes the streams capturing subject.
func deleteStreams(t *testing.T, url, subject string) {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lister := js.StreamNames(ctx, jetstream.WithStreamListSubject(subject))
	var names []string
	for n := range lister.Name() {
		names = append(names, n)
	}
	for _, n := range names {
		js.DeleteStream(ctx, n)
	}
}

// storedMessages returns how many messages the streams capturing subject
// hold, waiting a while for them to reach want.
func storedMessages(t *testing.T, url, subject string, want uint64) uint64 {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	// Storing runs beside the reply: give the stream a moment to catch up.
	for range 500 { // up to ~10 s
		n = 0
		lister := js.ListStreams(ctx, jetstream.WithStreamListSubject(subject))
		for info := range lister.Info() {
			n += info.State.Msgs
		}
		if err := lister.Err(); err != nil {
			t.Fatal(err)
		}
		if n >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// streamsFor counts the streams capturing subject.
func streamsFor(t *testing.T, url, subject string) int {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	lister := js.StreamNames(ctx, jetstream.WithStreamListSubject(subject))
	for range lister.Name() {
		n++
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestResponderGone(t *testing.T) {
	b, _ := startBroker(t, nil)
	for _, variant := range []string{"core", "jetstream", "core+stream-copy"} {
		t.Run(variant, func(t *testing.T) {
			driverstest.ResponderGone(t, driverstest.Configure(t, nats.New(), cfg(variant, b.URL, nil).Config), drivers.Place{Broker: cfg(variant, b.URL, nil).url})
		})
	}
}

// TestExternalBroker uses a nats-server started separately (not by the
// broker package) through its URL, as --broker nats=URL does, and checks
// that the responder leaves nothing behind on it.
func TestExternalBroker(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("external nats-server not ready")
	}

	m := broker.NewManager(map[string]string{"nats": ns.ClientURL()}, map[string]broker.Starter{"nats": broker.NATSEmbedded()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := m.Get(ctx, "nats", "", broker.StartOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if b.Source != "external" || b.URL != ns.ClientURL() {
		t.Fatalf("manager gave %+v, want the external server %s", b, ns.ClientURL())
	}
	defer m.Close(ctx)

	for _, variant := range []string{"core", "jetstream", "core+stream-copy"} {
		t.Run(variant, func(t *testing.T) {
			d := nats.New()
			c := cfg(variant, b.URL, map[string]string{"connections": "2"})
			srv, err := c.tr(t).Serve(ctx, c.at(), wire.Respond)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(srv.Addr(), b.URL+"#rpcbench.") {
				t.Fatalf("Addr() = %q, want %s#rpcbench.<id>.req", srv.Addr(), b.URL)
			}
			client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
			driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 256, Concurrency: 8, Calls: 500}), 500)
			if err := srv.Close(); err != nil {
				t.Fatalf("close responder: %v", err)
			}
			// Nothing is left subscribed to the subject, and no stream.
			caller, err := client.NewCaller()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := caller.Call(ctx, time.Now().Add(5*time.Second), []byte{1}, nil); !errors.Is(err, natsgo.ErrNoResponders) {
				t.Errorf("call after the responder closed: got %v, want nats.ErrNoResponders", err)
			}
			_, subject := nats.SplitAddr(srv.Addr())
			if n := streamsFor(t, b.URL, subject); n != 0 {
				t.Errorf("%d streams left on the external server after Close", n)
			}
		})
	}
}

// TestBrokerStoppedMidRun stops the broker while a cell runs: calls fail
// (timeout or transport error, never a hang), the cell ends, counts add up,
// and later calls keep failing within their timeout.
func TestBrokerStoppedMidRun(t *testing.T) {
	for _, variant := range []string{"core", "jetstream", "core+stream-copy"} {
		t.Run(variant, func(t *testing.T) {
			b, stop := startBroker(t, nil)
			d := nats.New()
			c := cfg(variant, b.URL, nil)
			var served atomic.Int64
			stopped := make(chan struct{})
			h := func(req, buf []byte) []byte {
				if served.Add(1) == 200 {
					go func() { stop(); close(stopped) }()
				}
				return wire.Respond(req, buf)
			}
			srv := driverstest.ServeWith(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url}, h)
			client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())

			m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Calls: 20000, Timeout: 200 * time.Millisecond})
			<-stopped
			cn := m.Counts
			if cn.OK == 0 || cn.Timeout+cn.Transport == 0 || cn.OK+cn.Timeout+cn.Transport != cn.Started || cn.Started != 20000 {
				t.Fatalf("broker stopped mid-run: want some ok calls, then only timeouts or transport errors adding up to 20000, got %+v", cn)
			}

			m = driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Duration: 300 * time.Millisecond, Timeout: 100 * time.Millisecond})
			cn = m.Counts
			if cn.OK != 0 || cn.Started == 0 || cn.Timeout+cn.Transport != cn.Started {
				t.Fatalf("broker gone: want every call to fail with a timeout or transport error, got %+v", cn)
			}
		})
	}
}

// TestTimeout: a responder slower than the call's timeout gives errors that
// wrap drivers.ErrTimeout, and the late replies do not confuse later calls.
func TestTimeout(t *testing.T) {
	b, _ := startBroker(t, nil)
	d := nats.New()
	c := cfg("core", b.URL, nil)
	var slow atomic.Bool
	slow.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slowSrv := driverstest.ServeWith(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url}, func(req, buf []byte) []byte {
		if slow.Load() {
			time.Sleep(300 * time.Millisecond)
		}
		return wire.Respond(req, buf)
	})
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), slowSrv.Addr())
	caller, err := client.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	req := wire.Append(nil, &wire.Fields{ID: 1, Payload: []byte("x"), Checksum: wire.Checksum([]byte("x"))})
	_, err = caller.Call(ctx, time.Now().Add(50*time.Millisecond), req, nil)
	if !errors.Is(err, drivers.ErrTimeout) {
		t.Fatalf("slow responder: got %v, want an error wrapping drivers.ErrTimeout", err)
	}
	slow.Store(false)
	req2 := wire.Append(nil, &wire.Fields{ID: 2, Payload: []byte("y"), Checksum: wire.Checksum([]byte("y"))})
	reply, err := caller.Call(ctx, time.Now().Add(10*time.Second), req2, nil)
	if err != nil {
		t.Fatal(err)
	}
	var f wire.Fields
	if err := wire.Parse(reply, &f); err != nil || f.ID != 2 {
		t.Fatalf("after a timeout: reply %+v (%v), want the reply to call 2", f, err)
	}

	// ctx ends a call in progress.
	slow.Store(true)
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, ccancel)
	if _, err := caller.Call(cctx, time.Now().Add(10*time.Second), req, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: got %v, want context.Canceled", err)
	}
}

func TestNoResponders(t *testing.T) {
	b, _ := startBroker(t, nil)
	d := nats.New()
	client := driverstest.Dial(t, driverstest.Configure(t, d, cfg("core", "", nil).Config), b.URL+"#rpcbench.nobody.req")
	caller, err := client.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	_, err = caller.Call(context.Background(), time.Now().Add(5*time.Second), []byte{1}, nil)
	if !errors.Is(err, natsgo.ErrNoResponders) {
		t.Fatalf("no responder: got %v, want nats.ErrNoResponders", err)
	}
}

func TestConfigure(t *testing.T) {
	d := nats.New()
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Options: map[string]string{"connections": "0"}}, `nats: option connections="0": want a whole number from 1 to 256`},
		{drivers.Config{Options: map[string]string{"responders": "65"}}, `nats: option responders="65": want a whole number from 1 to 64`},
		{drivers.Config{Options: map[string]string{"handlers": "8"}}, `nats: unknown option "handlers" (want one of connections, responders, sync)`},
		{drivers.Config{Options: map[string]string{"sync": "sometimes"}}, `nats: option sync="sometimes": want default or always`},
		{drivers.Config{Options: map[string]string{"conns": "2"}}, `nats: unknown option "conns" (want one of connections, responders, sync)`},
		{drivers.Config{Variant: "kv"}, `nats: unknown variant "kv" (want one of core, jetstream, core+stream-copy)`},
	} {
		_, err := d.Configure(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Configure(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, c := range []drivers.Config{{}, {Variant: "jetstream", Options: map[string]string{"sync": "always"}}, {Variant: "core+stream-copy"}} {
		if _, err := d.Configure(c); err != nil {
			t.Errorf("Configure(%+v): %v", c, err)
		}
	}
}

func TestAddresses(t *testing.T) {
	for _, tc := range []struct{ addr, url, subject string }{
		{"nats://127.0.0.1:4222#rpcbench.x.req", "nats://127.0.0.1:4222", "rpcbench.x.req"},
		{"nats://a:1,nats://b:2#s", "nats://a:1,nats://b:2", "s"},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222", ""},
	} {
		url, subj := nats.SplitAddr(tc.addr)
		if url != tc.url || subj != tc.subject {
			t.Errorf("SplitAddr(%q) = %q, %q; want %q, %q", tc.addr, url, subj, tc.url, tc.subject)
		}
	}
	tr := cfg("core", "", nil).tr(t)
	ctx := context.Background()
	for _, addr := range []string{"nats://127.0.0.1:1", "nats://127.0.0.1:1#bad subject", "nats://127.0.0.1:1#a.*"} {
		if _, err := tr.Dial(ctx, addr); err == nil || !strings.Contains(err.Error(), "subject") {
			t.Errorf("Dial(%q) = %v, want an error about the subject", addr, err)
		}
		if err := tr.CheckTarget(addr); err == nil || !strings.Contains(err.Error(), "subject") {
			t.Errorf("CheckTarget(%q) = %v, want an error about the subject", addr, err)
		}
	}
	if err := tr.CheckTarget("nats://127.0.0.1:1#rpcbench.x.req"); err != nil {
		t.Errorf("CheckTarget of a responder's address: %v", err)
	}
	if _, err := tr.Serve(ctx, drivers.Place{}, wire.Respond); err == nil {
		t.Error("Serve without a broker URL: want an error")
	}
	// The responder can be given its subject, for serve/run on two hosts.
	b, _ := startBroker(t, nil)
	srv, err := tr.Serve(ctx, drivers.Place{Broker: b.URL + "#my.service"}, wire.Respond)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Addr() != b.URL+"#my.service" {
		t.Fatalf("Addr() = %q", srv.Addr())
	}
}

func TestBrokerParams(t *testing.T) {
	d := nats.New()
	for _, c := range []drivers.Config{
		{},
		{Variant: "core", Options: map[string]string{"sync": "always"}},
		{Variant: "jetstream"},
		{Variant: "jetstream", Options: map[string]string{"sync": "default"}},
		{Variant: "core+stream-copy"},
	} {
		if p := driverstest.Configure(t, d, c).BrokerParams(); p != nil {
			t.Errorf("BrokerParams(%+v) = %v, want nil", c, p)
		}
	}
	for _, v := range []string{"jetstream", "core+stream-copy"} {
		if p := driverstest.Configure(t, d, drivers.Config{Variant: v, Options: map[string]string{"sync": "always"}}).BrokerParams(); p["sync"] != "always" || len(p) != 1 {
			t.Errorf("BrokerParams(%s, sync=always) = %v, want sync=always", v, p)
		}
	}
}

// TestJetStreamNeedsJetStream: on a server without JetStream the jetstream
// variant refuses to serve with a reason, and core still works.
func TestJetStreamNeedsJetStream(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := nats.New()
	for _, v := range []string{"jetstream", "core+stream-copy"} {
		if srv, err := cfg(v, ns.ClientURL(), nil).tr(t).Serve(ctx, cfg(v, ns.ClientURL(), nil).at(), wire.Respond); err == nil {
			srv.Close()
			t.Fatalf("%s served on a server without JetStream", v)
		} else if !strings.Contains(err.Error(), "JetStream enabled") {
			t.Fatalf("%s: error %q does not say JetStream is needed", v, err)
		}
	}
	srv := driverstest.Serve(t, driverstest.Configure(t, d, cfg("core", ns.ClientURL(), nil).Config), drivers.Place{Broker: cfg("core", ns.ClientURL(), nil).url})
	client := driverstest.Dial(t, driverstest.Configure(t, d, cfg("core", "", nil).Config), srv.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)
}

// TestResponderConcurrency: the responders of a server (here two
// connections) handle at most responder_concurrency requests with service
// time at once, together, and do reach that many.
func TestResponderConcurrency(t *testing.T) {
	b, _ := startBroker(t, nil)
	for _, variant := range []string{"core", "jetstream"} {
		t.Run(variant, func(t *testing.T) {
			d := nats.New()
			c := cfg(variant, b.URL, map[string]string{"responders": "2"})
			c.ResponderConcurrency = 3
			h, most := driverstest.Counting()
			srv := driverstest.ServeWith(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url}, h)
			client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
			m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 8, Calls: 60, ServiceTime: scenarios.ServiceTime{Mean: 10 * time.Millisecond}})
			driverstest.AllOK(t, m, 60)
			if got := most(); got != 3 {
				t.Fatalf("at most %d requests were in progress at once, want 3 (responder concurrency 3)", got)
			}
		})
	}
}

// TestLimits: the driver declares the max_payload of the server (8 MiB on
// the servers rpcbench starts, 1 MiB on a default nats-server), less the
// header reserve for jetstream requests; a request and a reply at the
// limit go through, a request one byte over fails at once with
// nats: maximum payload exceeded, and a reply over it with an error.
func TestLimits(t *testing.T) {
	if got := (cfg("core", "", nil).tr(t).Limits(context.Background(), "")); got.MaxRequest != broker.NATSMaxPayload || got.MaxReply != broker.NATSMaxPayload {
		t.Fatalf("Limits without a broker: %+v, want %d (what rpcbench's servers announce)", got, broker.NATSMaxPayload)
	}
	if nats.DefaultMaxPayload != broker.NATSMaxPayload {
		t.Fatalf("DefaultMaxPayload %d != broker.NATSMaxPayload %d", nats.DefaultMaxPayload, broker.NATSMaxPayload)
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	if got := cfg("core", "", nil).tr(t).Limits(context.Background(), ns.ClientURL()); got.MaxRequest != 1<<20 || got.MaxReply != 1<<20 {
		t.Fatalf("Limits of a default nats-server: %+v, want 1 MiB", got)
	}

	b, _ := startBroker(t, nil)
	for _, variant := range []string{"core", "jetstream", "core+stream-copy"} {
		t.Run(variant, func(t *testing.T) {
			d := nats.New()
			c := cfg(variant, b.URL, nil)
			lim := c.tr(t).Limits(context.Background(), c.url)
			want := broker.NATSMaxPayload
			if variant == "jetstream" {
				want -= nats.HeaderReserve
			}
			if lim.MaxRequest != want || lim.MaxReply != broker.NATSMaxPayload {
				t.Fatalf("Limits = %+v, want request %d, reply %d", lim, want, broker.NATSMaxPayload)
			}
			srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
			client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
			caller, err := client.NewCaller()
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			call := func(req []byte) ([]byte, error) {
				return caller.Call(ctx, time.Now().Add(10*time.Second), req, nil)
			}
			// request at the limit (echoed at 1 KiB), reply at the limit
			if _, err := call(driverstest.RequestOfSize(t, 1, lim.MaxRequest, 1024)); err != nil {
				t.Fatalf("request of %d bytes: %v", lim.MaxRequest, err)
			}
			reply, err := call(driverstest.RequestOfSize(t, 2, 100, driverstest.ReplyPayloadFor(lim.MaxReply)))
			if err != nil || len(reply) > lim.MaxReply || len(reply) < lim.MaxReply-16 {
				t.Fatalf("reply at the limit: %d bytes, %v", len(reply), err)
			}
			// one byte over
			over := driverstest.RequestOfSize(t, 3, lim.MaxRequest+nats.HeaderReserve*btoi(variant == "jetstream")+1, 1024)
			start := time.Now()
			_, err = call(over)
			if !errors.Is(err, natsgo.ErrMaxPayload) || time.Since(start) > time.Second {
				t.Fatalf("request over max_payload: %v after %v, want nats: maximum payload exceeded at once", err, time.Since(start))
			}
			_, err = call(driverstest.RequestOfSize(t, 4, 100, driverstest.ReplyPayloadFor(lim.MaxReply)+64))
			if err == nil || errors.Is(err, drivers.ErrTimeout) || !strings.Contains(err.Error(), "max_payload") {
				t.Fatalf("reply over max_payload: got %v, want the responder's error naming max_payload", err)
			}
			// and the caller still works
			if _, err := call(driverstest.RequestOfSize(t, 5, 100, 0)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBrokerRestart: a broker that comes back on the same address is
// reconnected to by callers and responders (subscriptions restored), and
// calls succeed again.
func TestBrokerRestart(t *testing.T) {
	start := func(port int) *natsserver.Server {
		t.Helper()
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(30 * time.Second) {
			t.Fatal("nats-server not ready")
		}
		return ns
	}
	ns := start(natsserver.RANDOM_PORT)
	url := ns.ClientURL()
	port := ns.Addr().(*net.TCPAddr).Port

	d := nats.New()
	c := cfg("core", url, nil)
	srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)

	ns.Shutdown()
	ns.WaitForShutdown()
	m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100, Timeout: 100 * time.Millisecond})
	if m.Counts.OK != 0 || m.Counts.Timeout+m.Counts.Transport != 100 {
		t.Fatalf("broker down: %+v", m.Counts)
	}

	ns = start(port)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	caller, err := client.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	req := wire.Append(nil, &wire.Fields{ID: 1, Payload: []byte("x"), Checksum: wire.Checksum([]byte("x"))})
	var lastErr error
	for i := 0; i < 300; i++ { // until both sides have reconnected (bounded)
		if _, lastErr = caller.Call(context.Background(), time.Now().Add(time.Second), req, nil); lastErr == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("no call succeeded after the broker came back: %v", lastErr)
	}
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)
}

// TestBrokerStopped: a stopped broker process (SIGSTOP: it holds its
// connections and reads nothing) with large requests that fill the socket
// buffers: every call still returns by its deadline (a publish stuck in its
// socket write is cut off at the deadline), and once the broker resumes
// calls succeed again.
func TestBrokerStopped(t *testing.T) {
	for _, variant := range []string{"core", "jetstream"} {
		t.Run(variant, func(t *testing.T) {
			b, _ := startBroker(t, nil)
			pid, err := strconv.Atoi(b.Details["pid"])
			if err != nil {
				t.Fatalf("broker without a pid: %+v", b)
			}
			d := nats.New()
			c := cfg(variant, b.URL, nil)
			srv := driverstest.Serve(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url})
			client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
			driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 50}), 50)
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			stopped := true
			defer func() {
				if stopped {
					syscall.Kill(pid, syscall.SIGCONT)
				}
			}()
			driverstest.CallsReturnByDeadline(t, client, 1<<20, 8, 3)
			syscall.Kill(pid, syscall.SIGCONT)
			stopped = false
			deadline := time.Now().Add(30 * time.Second)
			for {
				m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 20, Timeout: time.Second})
				if m.Counts.OK == 20 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no recovery after the broker resumed: %+v", m.Counts)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
