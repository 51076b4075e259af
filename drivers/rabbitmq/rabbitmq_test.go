package rabbitmq

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/scenarios"
)

func TestValidate(t *testing.T) {
	d := New()
	for _, v := range d.Spec().Variants {
		if err := d.Validate(drivers.Config{Variant: v.Name}); err != nil {
			t.Errorf("%s: %v", v.Name, err)
		}
	}
	bad := []drivers.Config{
		{Variant: "reply-queue/fsync"},
		{Variant: "nope"},
		{Variant: "reply-queue/transient", Options: map[string]string{"channels": "0"}},
		{Variant: "reply-queue/transient", Options: map[string]string{"prefetch": "x"}},
		{Variant: "reply-queue/transient", Options: map[string]string{"colour": "red"}},
	}
	for _, cfg := range bad {
		if err := d.Validate(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := d.Dial(context.Background(), drivers.Config{}, "amqp://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "request queue") {
		t.Errorf("Dial without queue: %v", err)
	}
}

// serveDial starts a responder and a client against url.
func serveDial(t testing.TB, url string, cfg drivers.Config) (drivers.Server, drivers.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := New()
	cfg.Addr = url
	srv, err := d.Serve(ctx, cfg, wire.Respond)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := d.Dial(ctx, cfg, srv.Addr())
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return srv, cl
}

func TestVariantsEndToEnd(t *testing.T) {
	url := needBroker(t)
	for _, v := range New().Spec().Variants {
		for _, opts := range []map[string]string{nil, {"connections": "2", "channels": "2", "prefetch": "1", "parallelism": "3"}} {
			name := v.Name
			if opts != nil {
				name += "/options"
			}
			t.Run(name, func(t *testing.T) {
				srv, cl := serveDial(t, url, drivers.Config{Variant: v.Name, Options: opts})
				defer srv.Close()
				defer cl.Close()
				load := runner.Load{Payload: 256, ResponseSize: 512, Concurrency: 8, Calls: 400, Timeout: 10 * time.Second, Seed: 1}
				if opts != nil {
					load.ServiceTime = scenarios.ServiceTime{Mean: 200 * time.Microsecond, Exponential: true}
				}
				m, err := runner.RunCell(context.Background(), cl, load, nil)
				if err != nil {
					t.Fatal(err)
				}
				c := m.Counts
				if c.OK != load.Calls || c.Failed() != 0 {
					t.Fatalf("counts %+v, want %d OK and no failures", c, load.Calls)
				}
			})
		}
	}
}

func TestTimeoutWrapsErrTimeout(t *testing.T) {
	url := needBroker(t)
	d := New()
	cfg := drivers.Config{Variant: "direct-reply-to/transient", Addr: url}
	ctx := context.Background()
	// A responder that never answers: serve, then take its queue over by
	// dialling a client to a queue nobody consumes.
	cl, err := d.Dial(ctx, cfg, url+"#rpcbench.req.nobody-consumes")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, err := cl.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	req := wire.Append(nil, &wire.Fields{ID: 1})
	_, err = c.Call(ctx, time.Now().Add(200*time.Millisecond), req, nil)
	if !errors.Is(err, drivers.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

// TestExternalBroker runs a broker the way a user would (started outside
// rpcbench) and passes its URL as --broker rabbitmq=URL does: the manager
// hands it out as "external" and never stops it.
func TestExternalBroker(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	c, b, err := broker.StartRabbitMQ(ctx, broker.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	ext, err := broker.ParseExternal([]string{"rabbitmq=" + b.URL}, []string{"rabbitmq"})
	if err != nil {
		t.Fatal(err)
	}
	mgr := broker.NewManager(ext, map[string]broker.Starter{"rabbitmq": func(context.Context, broker.StartOptions) (broker.Broker, func(context.Context) error, error) {
		t.Error("starter called although an external broker was given")
		return broker.Broker{}, nil, errors.New("no")
	}})
	got, err := mgr.Get(ctx, "rabbitmq", "", broker.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "external" || got.URL != b.URL {
		t.Fatalf("broker = %+v", got)
	}
	srv, cl := serveDial(t, got.URL, drivers.Config{Variant: "reply-queue/persistent"})
	m, err := runner.RunCell(ctx, cl, runner.Load{Payload: 64, Concurrency: 4, Calls: 200, Timeout: 10 * time.Second}, nil)
	cl.Close()
	srv.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m.Counts.OK != 200 || m.Counts.Failed() != 0 {
		t.Fatalf("counts %+v", m.Counts)
	}
	if err := mgr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	running, err := broker.ContainerRunning(ctx, c.ID)
	if err != nil || !running {
		t.Fatalf("external broker stopped by the manager: running=%v err=%v", running, err)
	}
	if _, err := broker.RabbitMQVersion(ctx, got.URL); err != nil {
		t.Fatalf("external broker unreachable after the run: %v", err)
	}
}

func countLabelled(t *testing.T) int {
	t.Helper()
	ids, err := broker.ListLabelled(context.Background(), broker.RunID, true)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// TestBrokerKilledMidRun kills the broker container during a cell: the
// calls fail with classified errors, the cell ends, Close returns, and no
// container or goroutine is left behind.
func TestBrokerKilledMidRun(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	before := countLabelled(t)
	goroutines := runtime.NumGoroutine()
	for _, variant := range []string{"reply-queue/transient", "direct-reply-to/persistent"} {
		t.Run(variant, func(t *testing.T) {
			c, b, err := broker.StartRabbitMQ(ctx, broker.StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop(ctx)
			srv, cl := serveDial(t, b.URL, drivers.Config{Variant: variant, Options: map[string]string{"connections": "2"}})
			killed := make(chan error, 1)
			load := runner.Load{Payload: 128, Concurrency: 8, Duration: 3 * time.Second, Timeout: time.Second}
			var m *runner.Measurement
			done := make(chan error, 1)
			go func() {
				var err error
				m, err = runner.RunCell(ctx, cl, load, nil)
				done <- err
			}()
			time.Sleep(time.Second)
			killed <- c.Kill(ctx)
			if err := <-killed; err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("cell did not end after the broker was killed")
			}
			k := m.Counts
			if k.OK == 0 || k.Transport+k.Timeout == 0 || k.Mismatch != 0 || k.Responder != 0 {
				t.Fatalf("counts %+v: want successes before the kill and transport errors or timeouts after", k)
			}
			closed := make(chan struct{})
			go func() {
				cl.Close()
				srv.Close()
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(time.Minute):
				t.Fatal("Close hangs after the broker was killed")
			}
			if err := c.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	if got := countLabelled(t); got != before {
		t.Fatalf("labelled containers: %d before, %d after", before, got)
	}
	// Goroutines of the driver and the Docker client wind down.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines+5 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines+5 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after\n%s", goroutines, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestReconnect restarts the broker (same container, same ports): calls in
// flight fail, then both sides redial and calls succeed again.
func TestReconnect(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	c, b, err := broker.StartRabbitMQ(ctx, broker.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	// Not quorum: RabbitMQ 3.10.8 does not elect the single-node quorum
	// queue's leader again after a SIGKILL restart ("leader not known").
	for _, variant := range []string{"reply-queue/transient", "direct-reply-to/persistent"} {
		t.Run(variant, func(t *testing.T) {
			srv, cl := serveDial(t, b.URL, drivers.Config{Variant: variant})
			defer srv.Close()
			defer cl.Close()
			small := runner.Load{Payload: 32, Concurrency: 2, Calls: 20, Timeout: 2 * time.Second}
			if m, err := runner.RunCell(ctx, cl, small, nil); err != nil || m.Counts.OK != 20 {
				t.Fatalf("before restart: %v %+v", err, m)
			}
			if err := c.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			m, err := runner.RunCell(ctx, cl, small, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Counts.OK != 0 || m.Counts.Failed() == 0 {
				t.Fatalf("while down: %+v", m.Counts)
			}
			if err := c.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for {
				m, err := runner.RunCell(ctx, cl, small, nil)
				if err != nil {
					t.Fatal(err)
				}
				if m.Counts.OK == small.Calls {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no recovery after restart: %+v", m.Counts)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}
