package activemq_test

import (
	"context"
	"errors"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/activemq"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/scenarios"
)

func serviceTime(d time.Duration) scenarios.ServiceTime { return scenarios.ServiceTime{Mean: d} }

func TestConfigure(t *testing.T) {
	d := activemq.New()
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Variant: "durable"}, `activemq: unknown variant "durable" (want one of transient, persistent)`},
		{drivers.Config{Options: map[string]string{"channels": "1"}}, `activemq: unknown option "channels" (want one of connections, prefetch, responders)`},
		{drivers.Config{Options: map[string]string{"connections": "0"}}, `activemq: option connections="0": want a whole number from 1 to 64`},
		{drivers.Config{Options: map[string]string{"responders": "65"}}, `activemq: option responders="65": want a whole number from 1 to 64`},
		{drivers.Config{Options: map[string]string{"prefetch": "none"}}, `activemq: option prefetch="none": want a whole number from 1 to 65535 (or auto)`},
	} {
		_, err := d.Configure(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Configure(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	tr, err := d.Configure(drivers.Config{Options: map[string]string{"connections": "02"}})
	if err != nil {
		t.Fatal(err)
	}
	eff := tr.Config()
	want := map[string]string{"connections": "2", "prefetch": "auto", "responders": "1"}
	if eff.Variant != activemq.Transient || len(eff.Options) != len(want) {
		t.Fatalf("effective config %+v", eff)
	}
	for k, v := range want {
		if eff.Options[k] != v {
			t.Errorf("effective %s=%q, want %q", k, eff.Options[k], v)
		}
	}
	for _, addr := range []string{"stomp://127.0.0.1:61613", "127.0.0.1:61613#q", "amqp://127.0.0.1:5672#q", "stomp://127.0.0.1#q", "stomp://127.0.0.1:1#a/b"} {
		if tr.CheckTarget(addr) == nil {
			t.Errorf("CheckTarget(%q) accepted", addr)
		}
	}
	if err := tr.CheckTarget("stomp://127.0.0.1:61613#rpcbench.req.x"); err != nil {
		t.Error(err)
	}
	if err := tr.CheckTarget("stomp://u:secret@127.0.0.1:bad#q"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("CheckTarget with a password: %v", err)
	}
	if tr.BrokerParams() != nil {
		t.Errorf("broker params %v", tr.BrokerParams())
	}
	if tr.(drivers.AckReporter).ReportsAcks() {
		t.Error("transient reports acks")
	}
	p := driverstest.Configure(t, d, drivers.Config{Variant: activemq.Persistent})
	if !p.(drivers.AckReporter).ReportsAcks() {
		t.Error("persistent does not report acks")
	}
}

func configure(t testing.TB, variant string, opts map[string]string) drivers.Transport {
	return driverstest.Configure(t, activemq.New(), drivers.Config{Variant: variant, Options: opts})
}

func TestConformance(t *testing.T) {
	url := needBroker(t)
	for _, v := range []string{activemq.Transient, activemq.Persistent} {
		t.Run(v, func(t *testing.T) {
			driverstest.Conformance(t, configure(t, v, nil), drivers.Place{Broker: url})
		})
	}
	t.Run("spread", func(t *testing.T) {
		opts := map[string]string{"connections": "3", "responders": "2", "prefetch": "10"}
		driverstest.Conformance(t, configure(t, activemq.Persistent, opts), drivers.Place{Broker: url})
	})
}

func TestResponderGone(t *testing.T) {
	driverstest.ResponderGone(t, configure(t, activemq.Transient, nil), drivers.Place{Broker: needBroker(t)})
}

func TestStalled(t *testing.T) {
	url := needBroker(t)
	for _, v := range []string{activemq.Transient, activemq.Persistent} {
		t.Run(v, func(t *testing.T) {
			driverstest.Stalled(t, configure(t, v, nil), drivers.Place{Broker: url})
		})
	}
}

// The responder reaches the responder concurrency and never exceeds it.
func TestResponderConcurrency(t *testing.T) {
	url := needBroker(t)
	for _, opts := range []map[string]string{nil, {"responders": "3"}} {
		tr := driverstest.Configure(t, activemq.New(), drivers.Config{ResponderConcurrency: 8, Options: opts})
		h, most := driverstest.Counting()
		srv := driverstest.ServeWith(t, tr, drivers.Place{Broker: url}, h)
		cl := driverstest.Dial(t, tr, srv.Addr())
		m := driverstest.Calls(t, cl, runner.Load{Payload: 64, Concurrency: 32, Calls: 320, ServiceTime: serviceTime(20 * time.Millisecond)})
		driverstest.AllOK(t, m, 320)
		if got := most(); got != 8 {
			t.Fatalf("options %v: at most %d requests at once, want 8", opts, got)
		}
	}
}

// Requests and replies of MaxMessageSize go through; larger requests are
// refused at once.
func TestLimits(t *testing.T) {
	url := needBroker(t)
	for _, v := range []string{activemq.Transient, activemq.Persistent} {
		t.Run(v, func(t *testing.T) {
			tr := configure(t, v, nil)
			if l := tr.Limits(context.Background(), url); l.MaxRequest != activemq.MaxMessageSize || l.MaxReply != activemq.MaxMessageSize {
				t.Fatalf("limits %+v", l)
			}
			srv := driverstest.Serve(t, tr, drivers.Place{Broker: url})
			cl := driverstest.Dial(t, tr, srv.Addr())
			c, err := cl.NewCaller()
			if err != nil {
				t.Fatal(err)
			}
			call := func(req []byte) ([]byte, error) {
				return c.Call(context.Background(), time.Now().Add(30*time.Second), req, nil)
			}
			if _, err := call(driverstest.RequestOfSize(t, 1, activemq.MaxMessageSize, 1)); err != nil {
				t.Fatalf("request of the limit: %v", err)
			}
			rep, err := call(driverstest.RequestOfSize(t, 2, 100, driverstest.ReplyPayloadFor(activemq.MaxMessageSize)))
			if err != nil || len(rep) > activemq.MaxMessageSize || len(rep) < activemq.MaxMessageSize-64 {
				t.Fatalf("reply of the limit: %d bytes, %v", len(rep), err)
			}
			start := time.Now()
			if _, err := call(driverstest.RequestOfSize(t, 3, activemq.MaxMessageSize+1, 0)); err == nil || time.Since(start) > time.Second {
				t.Fatalf("request over the limit: %v after %v", err, time.Since(start))
			}
		})
	}
}

// The broker killed under load and started again on the same port and
// store: calls fail by their deadline while it is down (the ones that
// found no connection as not sent), then the caller and responder
// connections come back by themselves.
func TestBrokerRestart(t *testing.T) {
	needBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, err := broker.StartActiveMQ(ctx, broker.StartOptions{})
	if err != nil {
		brokerFailed(t, err)
	}
	defer a.Stop(context.Background())
	for _, v := range []string{activemq.Transient, activemq.Persistent} {
		t.Run(v, func(t *testing.T) {
			tr := configure(t, v, nil)
			srv := driverstest.Serve(t, tr, drivers.Place{Broker: a.URL})
			cl := driverstest.Dial(t, tr, srv.Addr())
			driverstest.AllOK(t, driverstest.Calls(t, cl, runner.Load{Payload: 64, Concurrency: 4, Calls: 200}), 200)
			if err := a.Control.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			c, _ := cl.NewCaller()
			notSent := 0
			for i := range 5 {
				start := time.Now()
				deadline := start.Add(300 * time.Millisecond)
				_, err := c.Call(ctx, deadline, driverstest.RequestOfSize(t, uint64(1000+i), 100, 0), nil)
				if err == nil {
					t.Fatal("a call succeeded with the broker killed")
				}
				if late := time.Since(deadline); late > driverstest.DeadlineEpsilon {
					t.Fatalf("a call returned %v past its deadline: %v", late, err)
				}
				if errors.Is(err, drivers.ErrNotSent) {
					notSent++
				}
			}
			if notSent == 0 {
				t.Error("no call with the broker down was reported not sent")
			}
			if err := a.Control.Start(ctx); err != nil {
				t.Fatal(err)
			}
			// the connections redial with a backoff of at most 2 s
			end := time.Now().Add(30 * time.Second)
			for {
				_, err := c.Call(ctx, time.Now().Add(time.Second), driverstest.RequestOfSize(t, 2000, 100, 0), nil)
				if err == nil {
					break
				}
				if time.Now().After(end) {
					t.Fatalf("no call succeeded 30 s after the broker came back: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			driverstest.AllOK(t, driverstest.Calls(t, cl, runner.Load{Payload: 64, Concurrency: 4, Calls: 200}), 200)
		})
	}
}

// A responder restarted on the same queue (URL#QUEUE, as a fault run
// does) answers the requests its predecessor left.
func TestServeGivenQueue(t *testing.T) {
	url := needBroker(t)
	tr := configure(t, activemq.Persistent, nil)
	first := driverstest.Serve(t, tr, drivers.Place{Broker: url})
	addr := first.Addr()
	if !strings.HasPrefix(addr, url+"#rpcbench.req.") {
		t.Fatalf("addr %q", addr)
	}
	first.Close()
	second := driverstest.Serve(t, tr, drivers.Place{Broker: addr})
	if second.Addr() != addr {
		t.Fatalf("served %q, want %q", second.Addr(), addr)
	}
	cl := driverstest.Dial(t, tr, addr)
	driverstest.AllOK(t, driverstest.Calls(t, cl, runner.Load{Payload: 64, Concurrency: 4, Calls: 100}), 100)
}

// The request carries the JMS request-reply headers only: a responder
// written against them alone (here with go-stomp's own client, as a JMS
// listener answering JMSReplyTo with JMSCorrelationID would) serves
// rpcbench's callers, and rpcbench's responder serves such a caller.
func TestPlainStompPeers(t *testing.T) {
	brokerURL := needBroker(t)
	u, err := neturl.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	dial := func() *stomp.Conn {
		c, err := stomp.Dial("tcp", u.Host, stomp.ConnOpt.AcceptVersion(stomp.V12), stomp.ConnOpt.HeartBeat(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Disconnect() })
		return c
	}
	tr := configure(t, activemq.Persistent, nil)
	queue := "rpcbench.plain." + strings.ReplaceAll(t.Name(), "/", ".")
	resp := dial()
	sub, err := resp.Subscribe("/queue/"+queue, stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for m := range sub.C {
			if m.Err != nil {
				return
			}
			resp.Send(m.Header.Get("reply-to"), "", wire.Respond(m.Body, nil),
				stomp.SendOpt.Header("correlation-id", m.Header.Get("correlation-id")))
		}
	}()
	cl := driverstest.Dial(t, tr, brokerURL+"#"+queue)
	driverstest.AllOK(t, driverstest.Calls(t, cl, runner.Load{Payload: 64, Concurrency: 4, Calls: 100}), 100)

	// and the other way round: a plain caller against rpcbench's responder
	srv := driverstest.Serve(t, tr, drivers.Place{Broker: brokerURL})
	_, q, _ := strings.Cut(srv.Addr(), "#")
	call := dial()
	rep, err := call.Subscribe("/temp-queue/plain", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	p := []byte("hello")
	req := wire.Append(nil, &wire.Fields{ID: 7, Payload: p, Checksum: wire.Checksum(p)})
	if err := call.Send("/queue/"+q, "", req, stomp.SendOpt.Header("reply-to", "/temp-queue/plain"),
		stomp.SendOpt.Header("correlation-id", "abc")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-rep.C:
		if m.Err != nil || m.Header.Get("correlation-id") != "abc" || len(m.Body) == 0 {
			t.Fatalf("reply %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply from rpcbench's responder")
	}
}
