package rabbitmq

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/scenarios"
)

// setup is a configuration and the broker its responder uses.
type setup struct {
	drivers.Config
	url string
}

// configure configures the driver, failing the test if it refuses.
func configure(t testing.TB, cfg drivers.Config) drivers.Transport {
	t.Helper()
	return driverstest.Configure(t, New(), cfg)
}

func TestConfigure(t *testing.T) {
	d := New()
	for _, v := range d.Spec().Variants {
		if _, err := d.Configure(drivers.Config{Variant: v.Name}); err != nil {
			t.Errorf("%s: %v", v.Name, err)
		}
	}
	bad := []drivers.Config{
		{Variant: "reply-queue/fsync"},
		{Variant: "nope"},
		{Variant: "reply-queue/transient", Options: map[string]string{"channels": "0"}},
		{Variant: "reply-queue/transient", Options: map[string]string{"channels": "shared"}},
		{Variant: "reply-queue/transient", Options: map[string]string{"prefetch": "200"}},
		{Variant: "reply-queue/transient", Options: map[string]string{"parallelism": "1"}, ResponderConcurrency: 70000},
		{Variant: "reply-queue/transient", Options: map[string]string{"colour": "red"}},
	}
	for _, cfg := range bad {
		if _, err := d.Configure(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	for _, opts := range []map[string]string{{"channels": "per-caller"}, {"channels": "1"}, {"channels": "64", "parallelism": "256"}} {
		if _, err := d.Configure(drivers.Config{Variant: "reply-queue/transient", Options: opts}); err != nil {
			t.Errorf("%v: %v", opts, err)
		}
	}
	tr := configure(t, drivers.Config{})
	if l := tr.Limits(context.Background(), ""); l.MaxRequest != 16<<20 || l.MaxReply != 16<<20 {
		t.Errorf("Limits = %+v, want 16 MiB both ways", l)
	}
	if _, err := tr.Dial(context.Background(), "amqp://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "request queue") {
		t.Errorf("Dial without queue: %v", err)
	}
	if err := tr.CheckTarget("amqp://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "request queue") {
		t.Errorf("CheckTarget without queue: %v", err)
	}
	if err := tr.CheckTarget("amqp://127.0.0.1:1/#rpcbench.req.x"); err != nil {
		t.Errorf("CheckTarget of a responder's address: %v", err)
	}
}

// serveDial starts a responder and a client against url.
func serveDial(t testing.TB, url string, cfg drivers.Config) (drivers.Server, drivers.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := configure(t, cfg)
	srv, err := tr.Serve(ctx, drivers.Place{Broker: url}, wire.Respond)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := tr.Dial(ctx, srv.Addr())
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return srv, cl
}

func TestVariantsEndToEnd(t *testing.T) {
	url := needBroker(t)
	for _, v := range New().Spec().Variants {
		for _, opts := range []map[string]string{nil, {"connections": "2", "channels": "2", "parallelism": "3"}} {
			name := v.Name
			conc := 0
			if opts != nil {
				name += "/options"
				conc = 5
			}
			t.Run(name, func(t *testing.T) {
				srv, cl := serveDial(t, url, drivers.Config{Variant: v.Name, Options: opts, ResponderConcurrency: conc})
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
	tr := configure(t, drivers.Config{Variant: "direct-reply-to/transient"})
	ctx := context.Background()
	// A responder that never answers: serve, then take its queue over by
	// dialling a client to a queue nobody consumes.
	cl, err := tr.Dial(ctx, url+"#rpcbench.req.nobody-consumes")
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
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
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

func TestConformance(t *testing.T) {
	url := needBroker(t)
	for _, v := range New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, New(), setup{drivers.Config{Variant: v.Name}, url}.Config), drivers.Place{Broker: setup{drivers.Config{Variant: v.Name}, url}.url})
		})
	}
	// The shared-channel setup: every caller of a connection on one channel.
	t.Run("reply-queue/persistent/channels=1,connections=2", func(t *testing.T) {
		driverstest.Conformance(t, driverstest.Configure(t, New(), setup{drivers.Config{Variant: "reply-queue/persistent", Options: map[string]string{"channels": "1", "connections": "2"}}, url}.Config), drivers.Place{Broker: setup{drivers.Config{Variant: "reply-queue/persistent", Options: map[string]string{"channels": "1", "connections": "2"}}, url}.url})
	})
}

func TestResponderGone(t *testing.T) {
	url := needBroker(t)
	for _, v := range []string{"reply-queue/transient", "direct-reply-to/persistent"} {
		t.Run(v, func(t *testing.T) {
			driverstest.ResponderGone(t, driverstest.Configure(t, New(), setup{drivers.Config{Variant: v}, url}.Config), drivers.Place{Broker: setup{drivers.Config{Variant: v}, url}.url})
		})
	}
}

// TestStalled: calls to a responder whose handler hangs return by their
// deadline, in every variant (the confirm of a persistent request arrives,
// its reply never does).
func TestStalled(t *testing.T) {
	url := needBroker(t)
	for _, v := range New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			driverstest.Stalled(t, driverstest.Configure(t, New(), setup{drivers.Config{Variant: v.Name}, url}.Config), drivers.Place{Broker: setup{drivers.Config{Variant: v.Name}, url}.url})
		})
	}
}

// TestChannels: by default every caller has a channel of its own; with
// channels=N the callers share N per connection.
func TestChannels(t *testing.T) {
	url := needBroker(t)
	for _, tc := range []struct {
		opts map[string]string
		want int // distinct channels for 6 callers
	}{
		{nil, 6},
		{map[string]string{"channels": "1"}, 1},
		{map[string]string{"channels": "2", "connections": "2"}, 4},
	} {
		srv, cl := serveDial(t, url, drivers.Config{Variant: "direct-reply-to/transient", Options: tc.opts})
		chans := map[*session]bool{}
		for range 6 {
			c, err := cl.NewCaller()
			if err != nil {
				t.Fatal(err)
			}
			k := c.(*caller)
			s, _ := k.cc.session(k.slot)
			if s == nil {
				t.Fatalf("%v: caller without a session", tc.opts)
			}
			chans[s] = true
		}
		if len(chans) != tc.want {
			t.Errorf("%v: 6 callers on %d channels, want %d", tc.opts, len(chans), tc.want)
		}
		m, err := runner.RunCell(context.Background(), cl, runner.Load{Payload: 64, Concurrency: 6, Calls: 300, Timeout: 10 * time.Second}, nil)
		if err != nil || m.Counts.OK != 300 {
			t.Fatalf("%v: %v %+v", tc.opts, err, m)
		}
		cl.Close()
		srv.Close()
	}
}

// TestResponderConcurrency: the consumer channels share the responder
// concurrency (3, over 2 channels: prefetch 2 and 1): at most that many
// requests are in progress at once, and that many are reached.
func TestResponderConcurrency(t *testing.T) {
	url := needBroker(t)
	d := New()
	c := setup{drivers.Config{Variant: "reply-queue/transient", Options: map[string]string{"parallelism": "2"}, ResponderConcurrency: 3}, url}
	h, most := driverstest.Counting()
	srv := driverstest.ServeWith(t, driverstest.Configure(t, d, c.Config), drivers.Place{Broker: c.url}, h)
	client := driverstest.Dial(t, driverstest.Configure(t, d, c.Config), srv.Addr())
	m := driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 8, Calls: 80, ServiceTime: scenarios.ServiceTime{Mean: 10 * time.Millisecond}})
	driverstest.AllOK(t, m, 80)
	if got := most(); got != 3 {
		t.Fatalf("at most %d requests were in progress at once, want 3 (responder concurrency 3)", got)
	}
}

// TestLimits: a request and a reply of MaxMessageSize go through the broker
// (persistent: stored too); a request one byte larger is refused at once,
// and a reply one byte larger comes back as the responder's error.
func TestLimits(t *testing.T) {
	url := needBroker(t)
	for _, v := range []string{"direct-reply-to/transient", "reply-queue/persistent"} {
		t.Run(v, func(t *testing.T) {
			srv, cl := serveDial(t, url, drivers.Config{Variant: v})
			defer srv.Close()
			defer cl.Close()
			caller, err := cl.NewCaller()
			if err != nil {
				t.Fatal(err)
			}
			call := func(req []byte) ([]byte, error) {
				return caller.Call(context.Background(), time.Now().Add(30*time.Second), req, nil)
			}
			if _, err := call(driverstest.RequestOfSize(t, 1, MaxMessageSize, 1024)); err != nil {
				t.Fatalf("request of %d bytes: %v", MaxMessageSize, err)
			}
			reply, err := call(driverstest.RequestOfSize(t, 2, 100, driverstest.ReplyPayloadFor(MaxMessageSize)))
			if err != nil || len(reply) > MaxMessageSize || len(reply) < MaxMessageSize-16 {
				t.Fatalf("reply at the limit: %d bytes, %v", len(reply), err)
			}
			over := driverstest.RequestOfSize(t, 3, MaxMessageSize+1, 1024)
			start := time.Now()
			_, err = call(over)
			if err == nil || !strings.Contains(err.Error(), "max_message_size") || time.Since(start) > 100*time.Millisecond {
				t.Fatalf("request over the limit: %v after %v, want a refusal naming max_message_size at once", err, time.Since(start))
			}
			_, err = call(driverstest.RequestOfSize(t, 4, 100, driverstest.ReplyPayloadFor(MaxMessageSize)+64))
			if err == nil || errors.Is(err, drivers.ErrTimeout) || !strings.Contains(err.Error(), "max_message_size") {
				t.Fatalf("reply over the limit: %v, want the responder's error naming max_message_size", err)
			}
			if _, err := call(driverstest.RequestOfSize(t, 5, 100, 0)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// docker runs the docker CLI (skips without it).
func docker(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI")
	}
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rabbitmqctl runs rabbitmqctl inside the broker's container (as root; the
// local image's wrapper in /usr/sbin would switch users).
func rabbitmqctl(t *testing.T, c *broker.Container, args ...string) {
	t.Helper()
	script := `if [ -x /usr/lib/rabbitmq/bin/rabbitmqctl ]; then exec /usr/lib/rabbitmq/bin/rabbitmqctl "$@"; else exec rabbitmqctl "$@"; fi`
	docker(t, append([]string{"exec", c.ID, "sh", "-c", script, "rabbitmqctl"}, args...)...)
}

// TestBlockedPublishers: while the broker blocks publishers (a memory alarm:
// vm_memory_high_watermark 0), calls fail at once with ErrBlocked once the
// broker has said so (connection.blocked), and succeed again after it
// lifts the alarm.
func TestBlockedPublishers(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	c, b, err := broker.StartRabbitMQ(ctx, broker.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	srv, cl := serveDial(t, b.URL, drivers.Config{Variant: "direct-reply-to/transient"})
	defer srv.Close()
	defer cl.Close()
	caller, err := cl.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	req := wire.Append(nil, &wire.Fields{ID: 7, Payload: []byte("x"), Checksum: wire.Checksum([]byte("x"))})
	call := func(timeout time.Duration) (time.Duration, error) {
		start := time.Now()
		_, err := caller.Call(ctx, start.Add(timeout), req, nil)
		return time.Since(start), err
	}
	if _, err := call(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	rabbitmqctl(t, c, "set_vm_memory_high_watermark", "0")
	restored := false
	defer func() {
		if !restored {
			rabbitmqctl(t, c, "set_vm_memory_high_watermark", "0.4")
		}
	}()
	// The first publishes after the alarm may wait out their deadline (the
	// broker blocks the connection when it publishes); then calls fail fast.
	deadline := time.Now().Add(30 * time.Second)
	for {
		took, err := call(300 * time.Millisecond)
		if errors.Is(err, ErrBlocked) {
			break
		}
		if err == nil {
			t.Log("a call succeeded before the alarm took effect")
		}
		if took > 300*time.Millisecond+driverstest.DeadlineEpsilon {
			t.Fatalf("a call took %v with a 300 ms timeout: %v", took, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call failed with ErrBlocked 30 s after the memory alarm: last %v", err)
		}
	}
	for range 20 {
		took, err := call(time.Second)
		if !errors.Is(err, ErrBlocked) || took > 10*time.Millisecond {
			t.Fatalf("while blocked: %v after %v, want ErrBlocked at once", err, took)
		}
	}
	t.Logf("blocked: %v", func() error { _, err := call(time.Second); return err }())

	rabbitmqctl(t, c, "set_vm_memory_high_watermark", "0.4")
	restored = true
	deadline = time.Now().Add(60 * time.Second)
	for {
		_, err := call(time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still fail 60 s after the alarm cleared: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m, err := runner.RunCell(ctx, cl, runner.Load{Payload: 64, Concurrency: 4, Calls: 200, Timeout: 5 * time.Second}, nil)
	if err != nil || m.Counts.OK != 200 {
		t.Fatalf("after the alarm: %v %+v", err, m)
	}
}

// TestBrokerPaused: a frozen broker (docker pause: it accepts bytes into
// its socket buffers, then nothing) with large requests that fill them:
// every call still returns by its deadline (a publish stuck in its write
// closes its connection), and after the broker resumes calls succeed again.
func TestBrokerPaused(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	c, b, err := broker.StartRabbitMQ(ctx, broker.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	for _, v := range []string{"reply-queue/transient", "direct-reply-to/persistent"} {
		t.Run(v, func(t *testing.T) {
			srv, cl := serveDial(t, b.URL, drivers.Config{Variant: v, Options: map[string]string{"channels": "1"}})
			defer srv.Close()
			defer cl.Close()
			if m, err := runner.RunCell(ctx, cl, runner.Load{Payload: 64, Concurrency: 4, Calls: 100, Timeout: 5 * time.Second}, nil); err != nil || m.Counts.OK != 100 {
				t.Fatalf("before the pause: %v %+v", err, m)
			}
			docker(t, "pause", c.ID)
			paused := true
			defer func() {
				if paused {
					docker(t, "unpause", c.ID)
				}
			}()
			driverstest.CallsReturnByDeadline(t, cl, 1<<20, 8, 3)
			docker(t, "unpause", c.ID)
			paused = false
			deadline := time.Now().Add(2 * time.Minute)
			small := runner.Load{Payload: 64, Concurrency: 2, Calls: 20, Timeout: 2 * time.Second}
			for {
				m, err := runner.RunCell(ctx, cl, small, nil)
				if err != nil {
					t.Fatal(err)
				}
				if m.Counts.OK == small.Calls {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no recovery after the broker resumed: %+v", m.Counts)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}
