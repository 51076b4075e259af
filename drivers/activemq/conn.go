package activemq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// A STOMP 1.2 connection on go-stomp's frame codec (frame.Reader,
// frame.Writer), with rpcbench's own connection handling instead of
// stomp.Conn's (see the package doc): one reader goroutine that hands each
// frame to the connection's owner (routing replies and receipts straight
// to the waiting call), and writes made by the sending goroutine itself,
// combined: frames sent while another goroutine is writing join the next
// write, so one write system call carries every frame queued meanwhile.

// bufferSize is the read buffer (go-stomp's reader keeps a frame's command
// and header lines in it) and the write combining buffer's initial size.
const bufferSize = 64 << 10

// controlPrefix starts the receipt ids of the connection's own frames
// (SUBSCRIBE, DISCONNECT), which it routes itself.
const controlPrefix = "c-"

type stompConn struct {
	nc      net.Conn
	r       *frame.Reader
	server  string
	onFrame func(*frame.Frame) // set before start; runs on the reader

	wmu      sync.Mutex
	enc      *frame.Writer // encodes into wbuf
	wbuf     []byte
	spare    []byte
	flushing bool
	werr     error

	cmu      sync.Mutex
	controls map[string]chan *frame.Frame
	cseq     atomic.Uint64

	dead     chan struct{}
	deadOnce sync.Once
	deadErr  error
}

// appender is the io.Writer the frame encoder writes to: wbuf, under wmu.
type appender struct{ c *stompConn }

func (a appender) Write(b []byte) (int, error) {
	a.c.wbuf = append(a.c.wbuf, b...)
	return len(b), nil
}

// dialStomp connects to addr and does the STOMP 1.2 CONNECT (heart-beats
// off), bounded by ctx and a 10 s set-up timeout.
func dialStomp(ctx context.Context, addr, login, passcode string) (*stompConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &stompConn{nc: nc, r: frame.NewReaderSize(nc, bufferSize), controls: map[string]chan *frame.Frame{}, dead: make(chan struct{})}
	c.enc = frame.NewWriterSize(appender{c}, bufferSize)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	cf := frame.New(frame.CONNECT, frame.AcceptVersion, "1.2", frame.Host, "localhost", frame.HeartBeat, "0,0")
	if login != "" || passcode != "" {
		cf.Header.Add(frame.Login, login)
		cf.Header.Add(frame.Passcode, passcode)
	}
	// CONNECT is written directly: the socket is not shared yet
	if err := frame.NewWriter(nc).Write(cf); err != nil {
		nc.Close()
		return nil, fmt.Errorf("CONNECT: %w", err)
	}
	var f *frame.Frame
	for f == nil && err == nil {
		f, err = c.r.Read() // nil: a heart-beat
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no CONNECTED: %w", ctx.Err())
		}
		return nil, fmt.Errorf("no CONNECTED: %w", err)
	}
	if f.Command != frame.CONNECTED {
		nc.Close()
		return nil, fmt.Errorf("CONNECT refused: %s %s", f.Command, f.Header.Get(frame.Message))
	}
	if v := f.Header.Get(frame.Version); v != "1.2" {
		nc.Close()
		return nil, fmt.Errorf("the broker speaks STOMP %q, want 1.2", v)
	}
	if !stop() {
		nc.Close()
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	c.server = f.Header.Get(frame.Server)
	return c, nil
}

// start runs the reader until the connection dies; wg tracks it.
func (c *stompConn) start(wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			f, err := c.r.Read()
			if err != nil {
				c.kill(err)
				return
			}
			if f == nil {
				continue // heart-beat
			}
			if id := f.Header.Get(frame.ReceiptId); len(id) > len(controlPrefix) && id[:len(controlPrefix)] == controlPrefix {
				c.cmu.Lock()
				ch := c.controls[id]
				delete(c.controls, id)
				c.cmu.Unlock()
				if ch != nil {
					ch <- f
				}
				continue
			}
			c.onFrame(f)
		}
	}()
}

// kill closes the connection once; dead closes with err.
func (c *stompConn) kill(err error) {
	c.deadOnce.Do(func() {
		c.deadErr = err
		c.nc.Close()
		close(c.dead)
	})
}

func (c *stompConn) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

// errQueued says whether an error of send came after the frames were
// queued for writing (some of them may have reached the broker).
type sendError struct {
	queued bool
	err    error
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// send encodes the frames and writes them, with every frame other
// goroutines queue meanwhile, unless another goroutine is writing: then
// that one writes them. A write not done by deadline fails and kills the
// connection (a partly written frame cannot be taken back).
func (c *stompConn) send(deadline time.Time, fs ...*frame.Frame) error {
	c.wmu.Lock()
	if c.werr != nil {
		err := c.werr
		c.wmu.Unlock()
		return &sendError{queued: false, err: err}
	}
	for _, f := range fs {
		c.enc.Write(f) // into wbuf: cannot fail
	}
	if c.flushing {
		c.wmu.Unlock()
		return nil
	}
	c.flushing = true
	for len(c.wbuf) > 0 && c.werr == nil {
		b := c.wbuf
		c.wbuf = c.spare[:0]
		c.wmu.Unlock()
		c.nc.SetWriteDeadline(deadline)
		_, err := c.nc.Write(b)
		c.wmu.Lock()
		if cap(b) <= 4*bufferSize {
			c.spare = b[:0]
		} else {
			c.spare = nil // a large request's buffer is not kept
		}
		if err != nil {
			c.werr = err
		}
	}
	c.flushing = false
	err := c.werr
	c.wmu.Unlock()
	if err != nil {
		c.kill(err)
		return &sendError{queued: true, err: err}
	}
	return nil
}

// control sends f with a receipt and waits for the broker's RECEIPT (nil)
// or ERROR, at most timeout.
func (c *stompConn) control(f *frame.Frame, timeout time.Duration) error {
	id := controlPrefix + strconv.FormatUint(c.cseq.Add(1), 10)
	ch := make(chan *frame.Frame, 1)
	c.cmu.Lock()
	c.controls[id] = ch
	c.cmu.Unlock()
	defer func() {
		c.cmu.Lock()
		delete(c.controls, id)
		c.cmu.Unlock()
	}()
	f.Header.Set(frame.Receipt, id)
	deadline := time.Now().Add(timeout)
	if err := c.send(deadline, f); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.Command == frame.ERROR {
			return fmt.Errorf("%s refused: %s", f.Command, r.Header.Get(frame.Message))
		}
		return nil
	case <-c.dead:
		return fmt.Errorf("%s: connection lost: %v", f.Command, c.deadErr)
	case <-t.C:
		return fmt.Errorf("%s: no receipt within %v", f.Command, timeout)
	}
}

// close disconnects politely (DISCONNECT with a receipt, at most a
// second) and closes the socket.
func (c *stompConn) close() {
	if c.alive() {
		c.control(frame.New(frame.DISCONNECT), time.Second)
	}
	c.kill(errors.New("closed"))
}

// backoff sleeps before the attempt-th redial; false when ctx ended.
func backoff(ctx context.Context, attempt int) bool {
	d := 50 * time.Millisecond << min(attempt, 6)
	if d > 2*time.Second {
		d = 2 * time.Second
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func randomName(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
