package nats_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
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

// startBroker starts an embedded nats-server through the broker package's
// starter, as `rpcbench run` does, and returns it with its stop function
// (also run when the test ends; stopping twice is harmless).
func startBroker(t testing.TB, params map[string]string) (broker.Broker, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, stop, err := broker.NATSEmbedded()(ctx, broker.StartOptions{Dir: t.TempDir(), Params: params})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	var stopped atomic.Bool
	stopFn := func() {
		if stopped.Swap(true) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("stop embedded nats: %v", err)
		}
	}
	t.Cleanup(stopFn)
	return b, stopFn
}

func cfg(variant, url string, opts map[string]string) drivers.Config {
	return drivers.Config{Variant: variant, Addr: url, Options: opts}
}

func TestConformance(t *testing.T) {
	b, _ := startBroker(t, nil)
	for _, tc := range []struct {
		name    string
		variant string
		opts    map[string]string
	}{
		{"core", "core", nil},
		{"core/connections=3,responders=2,handlers=1", "core", map[string]string{"connections": "3", "responders": "2", "handlers": "1"}},
		{"jetstream", "jetstream", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			driverstest.Conformance(t, nats.New(), cfg(tc.variant, b.URL, tc.opts))
		})
	}
}

// TestJetStreamSyncAlways runs the jetstream variant with sync=always on a
// broker started with the params the driver asks for, and checks the stream
// really stored the requests.
func TestJetStreamSyncAlways(t *testing.T) {
	d := nats.New()
	c := cfg("jetstream", "", map[string]string{"sync": "always"})
	params := d.BrokerParams(c)
	if params["sync"] != "always" {
		t.Fatalf("BrokerParams(jetstream, sync=always) = %v", params)
	}
	b, _ := startBroker(t, params)
	if got := b.Details["jetstream_sync"]; got != "always" {
		t.Fatalf("broker details: jetstream_sync = %q, want always", got)
	}
	c.Addr = b.URL
	srv := driverstest.Serve(t, d, c)
	client := driverstest.Dial(t, d, c, srv.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 4, Calls: 300}), 300)

	_, subject := nats.SplitAddr(srv.Addr())
	if n := storedMessages(t, b.URL, subject, 300); n != 300 {
		t.Fatalf("stream holds %d requests, want 300", n)
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
	for _, variant := range []string{"core", "jetstream"} {
		t.Run(variant, func(t *testing.T) {
			driverstest.ResponderGone(t, nats.New(), cfg(variant, b.URL, nil))
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

	for _, variant := range []string{"core", "jetstream"} {
		t.Run(variant, func(t *testing.T) {
			d := nats.New()
			c := cfg(variant, b.URL, map[string]string{"connections": "2"})
			srv, err := d.Serve(ctx, c, wire.Respond)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(srv.Addr(), b.URL+"#rpcbench.") {
				t.Fatalf("Addr() = %q, want %s#rpcbench.<id>.req", srv.Addr(), b.URL)
			}
			client := driverstest.Dial(t, d, c, srv.Addr())
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
	for _, variant := range []string{"core", "jetstream"} {
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
			srv := driverstest.ServeWith(t, d, c, h)
			client := driverstest.Dial(t, d, c, srv.Addr())

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
	slowSrv := driverstest.ServeWith(t, d, c, func(req, buf []byte) []byte {
		if slow.Load() {
			time.Sleep(300 * time.Millisecond)
		}
		return wire.Respond(req, buf)
	})
	client := driverstest.Dial(t, d, c, slowSrv.Addr())
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
	client := driverstest.Dial(t, d, cfg("core", "", nil), b.URL+"#rpcbench.nobody.req")
	caller, err := client.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	_, err = caller.Call(context.Background(), time.Now().Add(5*time.Second), []byte{1}, nil)
	if !errors.Is(err, natsgo.ErrNoResponders) {
		t.Fatalf("no responder: got %v, want nats.ErrNoResponders", err)
	}
}

func TestValidate(t *testing.T) {
	d := nats.New()
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Options: map[string]string{"connections": "0"}}, `nats: option connections="0": want a whole number from 1 to 256`},
		{drivers.Config{Options: map[string]string{"responders": "65"}}, `nats: option responders="65": want a whole number from 1 to 64`},
		{drivers.Config{Options: map[string]string{"handlers": "x"}}, `nats: option handlers="x": want a whole number from 1 to 4096`},
		{drivers.Config{Options: map[string]string{"sync": "sometimes"}}, `nats: option sync="sometimes": want default or always`},
		{drivers.Config{Options: map[string]string{"conns": "2"}}, `nats: unknown option "conns" (want one of connections, responders, handlers, sync)`},
		{drivers.Config{Variant: "kv"}, `nats: unknown variant "kv" (want one of core, jetstream)`},
	} {
		err := d.Validate(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, c := range []drivers.Config{{}, {Variant: "jetstream", Options: map[string]string{"sync": "always"}}} {
		if err := d.Validate(c); err != nil {
			t.Errorf("Validate(%+v): %v", c, err)
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
	d := nats.New()
	ctx := context.Background()
	for _, addr := range []string{"nats://127.0.0.1:1", "nats://127.0.0.1:1#bad subject", "nats://127.0.0.1:1#a.*"} {
		if _, err := d.Dial(ctx, drivers.Config{}, addr); err == nil || !strings.Contains(err.Error(), "subject") {
			t.Errorf("Dial(%q) = %v, want an error about the subject", addr, err)
		}
	}
	if _, err := d.Serve(ctx, drivers.Config{}, wire.Respond); err == nil {
		t.Error("Serve without a broker URL: want an error")
	}
	// The responder can be given its subject, for serve/run on two hosts.
	b, _ := startBroker(t, nil)
	srv, err := d.Serve(ctx, drivers.Config{Addr: b.URL + "#my.service"}, wire.Respond)
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
	} {
		if p := d.BrokerParams(c); p != nil {
			t.Errorf("BrokerParams(%+v) = %v, want nil", c, p)
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
	if srv, err := d.Serve(ctx, cfg("jetstream", ns.ClientURL(), nil), wire.Respond); err == nil {
		srv.Close()
		t.Fatal("jetstream variant served on a server without JetStream")
	} else if !strings.Contains(err.Error(), "JetStream enabled") {
		t.Fatalf("error %q does not say JetStream is needed", err)
	}
	srv := driverstest.Serve(t, d, cfg("core", ns.ClientURL(), nil))
	client := driverstest.Dial(t, d, cfg("core", "", nil), srv.Addr())
	driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)
}

// TestHandlers: one responder handles at most `handlers` requests with
// service time at once, and does reach that many.
func TestHandlers(t *testing.T) {
	b, _ := startBroker(t, nil)
	d := nats.New()
	c := cfg("core", b.URL, map[string]string{"handlers": "3"})
	var inProgress, most atomic.Int64
	h := func(req, buf []byte) []byte {
		n := inProgress.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		defer inProgress.Add(-1)
		return wire.Respond(req, buf)
	}
	srv := driverstest.ServeWith(t, d, c, h)
	client := driverstest.Dial(t, d, c, srv.Addr())
	m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 8, Calls: 60, ServiceTime: scenarios.ServiceTime{Mean: 10 * time.Millisecond}})
	driverstest.AllOK(t, m, 60)
	if got := most.Load(); got != 3 {
		t.Fatalf("at most %d requests were in progress at once, want 3 (handlers=3)", got)
	}
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
	srv := driverstest.Serve(t, d, c)
	client := driverstest.Dial(t, d, c, srv.Addr())
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
