// Package driverstest holds the checks every driver must pass, run by each
// driver's tests against a real responder: calls succeed and verify, the
// configured response size and service time are honoured, many callers
// share the client, and a responder that goes away makes calls fail within
// their timeout instead of hanging.
package driverstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/scenarios"
)

// Configure configures d with cfg, failing the test if it refuses.
func Configure(t testing.TB, d drivers.Driver, cfg drivers.Config) drivers.Transport {
	t.Helper()
	tr, err := d.Configure(cfg)
	if err != nil {
		t.Fatalf("configure %s: %v", d.Spec().Name, err)
	}
	return tr
}

// Serve starts tr's responder at at with the shared handler and closes it
// when the test ends.
func Serve(t testing.TB, tr drivers.Transport, at drivers.Place) drivers.Server {
	t.Helper()
	return ServeWith(t, tr, at, wire.Respond)
}

// ServeWith is Serve with handler h.
func ServeWith(t testing.TB, tr drivers.Transport, at drivers.Place, h drivers.Handler) drivers.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := tr.Serve(ctx, at, h)
	if err != nil {
		t.Fatalf("serve %s: %v", tr.Config().Variant, err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Dial connects a client to addr and closes it when the test ends.
func Dial(t testing.TB, tr drivers.Transport, addr string) drivers.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := tr.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", tr.Config().Variant, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Calls runs a fixed number of calls through client and returns what was
// measured.
func Calls(t testing.TB, client drivers.Client, load runner.Load) *runner.Measurement {
	t.Helper()
	if load.Timeout == 0 {
		load.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := runner.RunCell(ctx, client, load, nil)
	if err != nil {
		t.Fatalf("run cell: %v", err)
	}
	return m
}

// AllOK fails the test unless every one of want calls succeeded.
func AllOK(t testing.TB, m *runner.Measurement, want int64) {
	t.Helper()
	c := m.Counts
	if c.OK != want || c.Started != want || c.Failed() != 0 || c.Overflow != 0 {
		t.Fatalf("want %d calls all ok, got %+v", want, c)
	}
	if m.Corrected.TotalCount() != want {
		t.Fatalf("histogram holds %d calls, want %d", m.Corrected.TotalCount(), want)
	}
}

// Conformance runs the checks every driver passes against tr's responder
// served at at.
func Conformance(t *testing.T, tr drivers.Transport, at drivers.Place) {
	t.Helper()
	srv := Serve(t, tr, at)
	client := Dial(t, tr, srv.Addr())

	t.Run("sequential", func(t *testing.T) {
		m := Calls(t, client, runner.Load{Payload: 64, Concurrency: 1, Calls: 200})
		AllOK(t, m, 200)
		if m.Responder.TotalCount() != 200 {
			t.Fatalf("responder durations carried back for %d of 200 calls", m.Responder.TotalCount())
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		// 50 calls a caller: under -race 2000 took 40 s on kafka with
		// three partitions, responders and connections
		m := Calls(t, client, runner.Load{Payload: 512, Concurrency: 16, Calls: 800})
		AllOK(t, m, 800)
	})
	t.Run("response-size", func(t *testing.T) {
		m := Calls(t, client, runner.Load{Payload: 100, ResponseSize: 4096, Concurrency: 4, Calls: 200})
		AllOK(t, m, 200)
	})
	t.Run("empty-payload", func(t *testing.T) {
		m := Calls(t, client, runner.Load{Payload: 0, Concurrency: 2, Calls: 100})
		AllOK(t, m, 100)
	})
	t.Run("service-time", func(t *testing.T) {
		st := 2 * time.Millisecond
		m := Calls(t, client, runner.Load{Payload: 64, Concurrency: 8, Calls: 80, ServiceTime: scenarios.ServiceTime{Mean: st}})
		AllOK(t, m, 80)
		// histograms keep three significant digits: compare at that precision
		floor := st - st/1000
		if min := time.Duration(m.Responder.Min()); min < floor {
			t.Fatalf("responder reported %v for a %v service time", min, st)
		}
		if min := time.Duration(m.Corrected.Min()); min < floor {
			t.Fatalf("a call took %v with a %v service time", min, st)
		}
	})
	t.Run("open-loop", func(t *testing.T) {
		m := Calls(t, client, runner.Load{Payload: 64, Concurrency: 32, Rate: 2000, Calls: 400})
		AllOK(t, m, 400)
		if m.Counts.Scheduled != 400 {
			t.Fatalf("scheduled %d, want 400", m.Counts.Scheduled)
		}
	})
}

// ResponderGone checks that once the responder stops, calls fail within
// their timeout (transport error or timeout), and the cell still ends.
func ResponderGone(t *testing.T, tr drivers.Transport, at drivers.Place) {
	t.Helper()
	ctx := context.Background()
	srv, err := tr.Serve(ctx, at, wire.Respond)
	if err != nil {
		t.Fatal(err)
	}
	client := Dial(t, tr, srv.Addr())
	AllOK(t, Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 50}), 50)
	srv.Close()
	m := Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Duration: 500 * time.Millisecond, Timeout: 200 * time.Millisecond})
	c := m.Counts
	if c.OK != 0 || c.Started == 0 || c.Timeout+c.Transport != c.Started {
		t.Fatalf("after the responder stopped: want every call to fail with a timeout or transport error, got %+v", c)
	}
}

// DeadlineEpsilon is how far past its deadline a driver's Call may
// return: 100 ms, and raceSlack more in a race-detector build, which runs
// the code several times slower (measured: encoding a 1 MiB JSON request
// takes about 114 ms there; grpc's and http's silent-peer calls came back
// 109-131 ms late under -race, on time without it).
const DeadlineEpsilon = 100*time.Millisecond + raceSlack

// Stalled checks that calls to a responder whose handler stops answering
// (a hung service, a stopped process behind a broker) return by their
// deadline, plus DeadlineEpsilon, with an error: the driver must not rely on
// the core to abandon its calls. It releases the handler at the end, and
// the responder must then close.
func Stalled(t *testing.T, tr drivers.Transport, at drivers.Place) {
	t.Helper()
	release := make(chan struct{})
	var once sync.Once
	stall := func(req, buf []byte) []byte {
		<-release
		return wire.Respond(req, buf)
	}
	srv := ServeWith(t, tr, at, stall)
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	client := Dial(t, tr, srv.Addr())
	CallsReturnByDeadline(t, client, 64, 8, 3)
	once.Do(func() { close(release) })
}

// SilentPeer checks a direct driver against a responder that stops
// reading and writing mid-run, as a SIGSTOPped process does: the caller
// connects through a proxy that forwards to a real responder, makes calls
// that succeed, then the proxy freezes (keeps every connection open, moves
// no byte). With requests large enough to fill the socket buffers, every
// call must still return by its deadline plus DeadlineEpsilon.
func SilentPeer(t *testing.T, tr drivers.Transport, at drivers.Place) {
	t.Helper()
	srv := Serve(t, tr, at)
	p := newFreezer(t, srv.Addr())
	client := Dial(t, tr, p.addr())
	AllOK(t, Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 20}), 20)
	p.freeze()
	CallsReturnByDeadline(t, client, 1<<20, 8, 4)
}

// freezer is a TCP proxy that can stop moving bytes.
type freezer struct {
	ln     net.Listener
	frozen chan struct{}
	once   sync.Once
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := drivers.Listen(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, frozen: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			go f.pipe(c, u)
			go f.pipe(u, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.freeze()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

func (f *freezer) freeze() { f.once.Do(func() { close(f.frozen) }) }

// pipe copies src to dst until the proxy freezes; then it reads nothing
// more, so the sender's buffers fill as behind a stopped process.
func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-f.frozen:
			return
		default:
		}
		src.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-f.frozen:
				return
			default:
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
	}
}

// CallsReturnByDeadline makes rounds of calls from callers goroutines, each
// with a 200 ms deadline, and fails the test if a call succeeds or returns
// later than its deadline plus DeadlineEpsilon.
func CallsReturnByDeadline(t *testing.T, client drivers.Client, payload, callers, rounds int) {
	t.Helper()
	const timeout = 200 * time.Millisecond
	errs := make(chan error, callers*rounds)
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		c, err := client.NewCaller()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmpl := wire.NewRequestTemplate(make([]byte, payload), 0)
			for r := 0; r < rounds; r++ {
				req := tmpl.Append(nil, uint64(i*rounds+r+1), 0, time.Now().UnixNano())
				start := time.Now()
				deadline := start.Add(timeout)
				_, err := c.Call(context.Background(), deadline, req, nil)
				late := time.Since(deadline)
				switch {
				case err == nil:
					errs <- fmt.Errorf("a call to a stalled responder succeeded")
				case late > DeadlineEpsilon:
					errs <- fmt.Errorf("a call with a %v timeout returned after %v (%v past its deadline): %v", timeout, time.Since(start), late, err)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Duration(rounds)*timeout + 10*time.Second):
		t.Fatalf("calls to a stalled responder still had not returned %v after their deadlines", 10*time.Second)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Counting wraps wire.Respond to record the most requests in progress at
// once; most reads it.
func Counting() (h drivers.Handler, most func() int64) {
	var inProgress, peak atomic.Int64
	h = func(req, buf []byte) []byte {
		n := inProgress.Add(1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		defer inProgress.Add(-1)
		return wire.Respond(req, buf)
	}
	return h, peak.Load
}

// RequestOfSize returns a request (id, a payload of zeros, its checksum,
// asking for a reply payload of respSize bytes) whose encoding is exactly
// n bytes long: for testing a driver's limits.
func RequestOfSize(t testing.TB, id uint64, n int, respSize uint32) []byte {
	t.Helper()
	p := max(n-32, 0)
	for range 8 {
		payload := make([]byte, p)
		req := wire.Append(nil, &wire.Fields{ID: id, Payload: payload, Checksum: wire.Checksum(payload), ResponseSize: respSize})
		if len(req) == n {
			return req
		}
		p += n - len(req)
		if p < 0 {
			break
		}
	}
	t.Fatalf("no request of exactly %d bytes", n)
	return nil
}

// ReplyPayloadFor returns the largest reply payload whose reply encodes to
// at most n bytes, whatever the handler time it carries.
func ReplyPayloadFor(n int) uint32 {
	for p := n - 32; ; p++ {
		if len(wire.Append(nil, &wire.Fields{ID: 1 << 40, Payload: make([]byte, p+1), Checksum: 1 << 31, HandlerNs: 1 << 62})) > n {
			return uint32(p)
		}
	}
}

// ResponderBack checks that a client whose responder stopped and started
// again at the same address (a restarted process: a fault run's restart)
// makes calls that succeed again, without being dialled again: a driver
// must notice the lost connection and redial.
func ResponderBack(t *testing.T, tr drivers.Transport) {
	t.Helper()
	ctx := context.Background()
	srv, err := tr.Serve(ctx, drivers.Place{}, wire.Respond)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	client := Dial(t, tr, addr)
	AllOK(t, Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 50}), 50)
	srv.Close()
	m := Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Duration: 300 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if m.Counts.OK != 0 {
		t.Fatalf("calls succeeded with the responder stopped: %+v", m.Counts)
	}
	srv, err = tr.Serve(ctx, drivers.Place{Listen: addr}, wire.Respond)
	if err != nil {
		t.Fatalf("serve again at %s: %v", addr, err)
	}
	t.Cleanup(func() { srv.Close() })
	// calls may fail until each connection has been found lost and
	// redialled (and, behind a circuit breaker such as go-zero's, until
	// the breaker's window has seen enough calls succeed); then every
	// call must succeed
	giveUp := time.Now().Add(30 * time.Second)
	for {
		m = Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 50, Timeout: time.Second})
		if m.Counts.OK == 50 {
			return
		}
		if time.Now().After(giveUp) {
			t.Fatalf("30 s after the responder came back, calls still fail: %+v, errors %v", m.Counts, m.Errors)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
