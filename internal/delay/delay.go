// Package delay is a userspace TCP proxy that delays every byte by a
// one-way delay (plus jitter) in each direction: the hop delay this
// machine's kernel cannot add (no netem). It keeps byte order per
// direction, counts bytes and chunks, records the delay it actually
// achieved, and can pause (hold every byte, keep connections) or go down
// (close every connection, refuse new ones), for fault runs.
package delay

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcbench/rpcbench/internal/clock"
)

// MaxSpin is the longest a chunk's wait spins instead of sleeping: delays
// up to it are met precisely, at the price of a CPU busy for the wait
// (one per direction with a chunk pending).
const MaxSpin = 2 * time.Millisecond

// Config is what the proxy adds to each direction of every connection.
type Config struct {
	// OneWay is the delay of every chunk of bytes in each direction.
	OneWay time.Duration
	// Jitter adds a uniform random delay in [0, Jitter) to each chunk;
	// chunks never overtake each other.
	Jitter time.Duration
}

// Mode is how the proxy forwards.
type Mode int32

const (
	// Pass forwards with the configured delay.
	Pass Mode = iota
	// Pause holds every byte (connections stay open) until Pass again.
	Pause
	// Down closes every connection and refuses new ones until Pass again.
	Down
)

// Stats are what the proxy forwarded.
type Stats struct {
	// Bytes and Chunks by direction: [0] towards the target, [1] back.
	Bytes, Chunks [2]int64
	// Achieved is the delay each chunk got, from when the proxy read it
	// to when it wrote it, in ns (a reader the scheduler ran late adds to
	// the call's latency but not to this).
	Achieved *hdrhistogram.Histogram
}

// Proxy forwards connections to a target.
type Proxy struct {
	cfg    atomic.Pointer[Config]
	target atomic.Pointer[string]
	ln     net.Listener
	mode   atomic.Int32
	resume chan struct{} // closed when a pause ends; replaced per pause

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	achieved *hdrhistogram.Histogram
	bytes    [2]atomic.Int64
	chunks   [2]atomic.Int64
	wg       sync.WaitGroup
	closed   chan struct{}
}

// Start listens on 127.0.0.1 (a random port) and forwards every
// connection to target.
func Start(ctx context.Context, target string, cfg Config) (*Proxy, error) {
	if cfg.OneWay < 0 || cfg.Jitter < 0 {
		return nil, errors.New("delay: negative delay")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, conns: map[net.Conn]struct{}{}, closed: make(chan struct{}), resume: make(chan struct{}),
		achieved: hdrhistogram.New(1, int64(time.Minute), 3)}
	close(p.resume)
	p.cfg.Store(&cfg)
	p.target.Store(&target)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where callers connect instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetConfig changes the delay from the next chunk read on (a responder's
// hop to its broker outlives the cells, each with its own delay).
func (p *Proxy) SetConfig(cfg Config) error {
	if cfg.OneWay < 0 || cfg.Jitter < 0 {
		return errors.New("delay: negative delay")
	}
	p.cfg.Store(&cfg)
	return nil
}

// ResetStats starts counting anew (a cell's own share of a long-lived
// proxy's traffic).
func (p *Proxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range 2 {
		p.bytes[i].Store(0)
		p.chunks[i].Store(0)
	}
	p.achieved.Reset()
}

// Target is what the proxy forwards to.
func (p *Proxy) Target() string { return *p.target.Load() }

// SetTarget changes what the proxy forwards the connections it accepts
// from now on to (a proxy started before its target's address was known:
// a responder's own onward hop).
func (p *Proxy) SetTarget(target string) { p.target.Store(&target) }

// SetMode switches the proxy between Pass, Pause and Down.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := Mode(p.mode.Swap(int32(m)))
	if old == Pause && m != Pause {
		close(p.resume)
	}
	if m == Pause && old != Pause {
		p.resume = make(chan struct{})
	}
	if m == Down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *Proxy) resumed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resume
}

// Stats returns a copy of what was forwarded so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s Stats
	for i := range 2 {
		s.Bytes[i], s.Chunks[i] = p.bytes[i].Load(), p.chunks[i].Load()
	}
	s.Achieved = hdrhistogram.Import(p.achieved.Export())
	return s
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	select {
	case <-p.closed:
		return nil
	default:
	}
	close(p.closed)
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	if Mode(p.mode.Load()) == Pause {
		close(p.resume)
		p.mode.Store(int32(Pass))
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		select {
		case <-p.closed:
			c.Close()
			return false
		default:
		}
		if Mode(p.mode.Load()) == Down {
			c.Close()
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if Mode(p.mode.Load()) == Down {
			in.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(in)
	}
}

func (p *Proxy) serve(in net.Conn) {
	defer p.wg.Done()
	out, err := net.DialTimeout("tcp", p.Target(), 10*time.Second)
	if err != nil {
		in.Close()
		return
	}
	for _, c := range []net.Conn{in, out} {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
	}
	if !p.track(in, true) || !p.track(out, true) {
		in.Close()
		out.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(out, in, 0) }()
	go func() { defer wg.Done(); p.pipe(in, out, 1) }()
	wg.Wait()
	p.track(in, false)
	p.track(out, false)
}

// chunk is bytes read at a time, due at a time.
type chunk struct {
	b    []byte
	read time.Duration // since base
	due  time.Duration
}

// pipe copies src to dst in direction dir through a writer that waits
// for each chunk's due time: at 0 delay too, so that a 0-delay cell
// measures the path the delayed ones take.
func (p *Proxy) pipe(dst, src net.Conn, dir int) {
	defer dst.Close()
	defer src.Close()
	base := time.Now()
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// on any exit: stop both sides and let the reader finish
		defer func() {
			dst.Close()
			src.Close()
			for range q {
			}
		}()
		// Go's timers wake up to a millisecond late here: a chunk due
		// within MaxSpin is waited for by spinning, which costs CPU while
		// it waits (see the package comment).
		w := clock.NewWaiter(base)
		w.MaxSpin = MaxSpin
		for c := range q {
			cfg := p.cfg.Load()
			w.Floor = min(cfg.OneWay+cfg.Jitter, MaxSpin)
			if !w.Until(context.Background(), c.due) || !p.hold() {
				return
			}
			p.count(dir, len(c.b), time.Since(base)-c.read)
			if _, err := dst.Write(c.b); err != nil {
				return
			}
		}
	}()
	var last time.Duration
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Since(base)
			cfg := p.cfg.Load()
			due := now + cfg.OneWay
			if cfg.Jitter > 0 {
				due += time.Duration(rand.Int64N(int64(cfg.Jitter)))
			}
			due = max(due, last) // no overtaking
			last = due
			c := chunk{b: append([]byte(nil), buf[:n]...), read: now, due: due}
			select {
			case q <- c:
			case <-done:
				close(q)
				return
			}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

// hold waits while the proxy is paused; false once it is down or closed.
func (p *Proxy) hold() bool {
	for {
		switch Mode(p.mode.Load()) {
		case Pass:
			return true
		case Down:
			return false
		}
		select {
		case <-p.resumed():
		case <-p.closed:
			return false
		}
	}
}

func (p *Proxy) count(dir, n int, achieved time.Duration) {
	p.bytes[dir].Add(int64(n))
	p.chunks[dir].Add(1)
	p.mu.Lock()
	p.achieved.RecordValue(max(int64(achieved), 1))
	p.mu.Unlock()
}

var _ io.Closer = (*Proxy)(nil)
