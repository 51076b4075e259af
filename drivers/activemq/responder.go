package activemq

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// replyWriteTimeout bounds a responder's write of a reply and ACK.
const replyWriteTimeout = 10 * time.Second

type server struct {
	ep     endpoint
	queue  string
	dest   string
	o      options
	h      drivers.Handler
	slots  chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // connection owners and readers
	work   sync.WaitGroup // requests with service time
	errors atomic.Int64   // broker ERROR frames without a receipt

	mu    sync.Mutex
	conns map[*stompConn]struct{}
	once  sync.Once
}

// Serve connects `responders` connections to the broker at at.Broker
// (stomp://HOST:PORT, optionally "#QUEUE" to serve a given request queue)
// and subscribes each to the request queue.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	if at.Broker == "" {
		return nil, fmt.Errorf("%s: no broker to serve on: start one or give --broker activemq=stomp://HOST:PORT", Name)
	}
	ep, queue, err := parseAddr(at.Broker)
	if err != nil {
		return nil, err
	}
	if queue == "" {
		queue = randomName("rpcbench.req.")
	}
	s := &server{ep: ep, queue: queue, dest: "/queue/" + queue, o: t.o, h: h,
		slots: make(chan struct{}, t.o.concurrency), conns: map[*stompConn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var first []*stompConn
	for i := 0; i < t.o.responders; i++ {
		c, err := s.connect(ctx, i)
		if err != nil {
			s.Close()
			return nil, err
		}
		first = append(first, c)
	}
	for i, c := range first {
		s.wg.Add(1)
		go s.run(i, c)
	}
	return s, nil
}

func (s *server) Addr() string { return s.ep.raw + "#" + s.queue }

// connect dials responder i's connection and subscribes it.
func (s *server) connect(ctx context.Context, i int) (*stompConn, error) {
	c, err := dialStomp(ctx, s.ep.hostport, s.ep.login, s.ep.passcode)
	if err != nil {
		return nil, fmt.Errorf("%s: responder: connect to %s: %w", Name, s.ep.hostport, err)
	}
	var buf []byte
	c.onFrame = func(f *frame.Frame) {
		switch f.Command {
		case frame.MESSAGE:
			buf = s.handle(c, f, buf)
		case frame.ERROR:
			s.errors.Add(1)
		}
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		c.kill(ErrClosed)
		return nil, ErrClosed
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.start(&s.wg)
	sub := frame.New(frame.SUBSCRIBE, frame.Id, "req", frame.Destination, s.dest, frame.Ack, "client-individual",
		"activemq.prefetchSize", strconv.Itoa(s.o.prefetchOf(i)))
	if err := c.control(sub, 15*time.Second); err != nil {
		c.kill(err)
		return nil, fmt.Errorf("%s: responder: subscribe %s: %w", Name, s.dest, err)
	}
	return c, nil
}

// run owns responder i's connection: when it dies, it redials and
// subscribes again until Close.
func (s *server) run(i int, c *stompConn) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-c.dead:
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		for attempt := 0; ; attempt++ {
			if !backoff(s.ctx, attempt) {
				return
			}
			nc, err := s.connect(s.ctx, i)
			if err == nil {
				c = nc
				break
			}
		}
	}
}

// handle takes a slot for request f, then answers it inline (no service
// time: buf is the reader's reply buffer, returned for reuse) or on a
// goroutine of its own.
func (s *server) handle(c *stompConn, f *frame.Frame, buf []byte) []byte {
	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		return buf
	case <-c.dead:
		return buf
	}
	if wire.PeekServiceTime(f.Body) > 0 {
		s.work.Add(1)
		go func() {
			defer s.work.Done()
			s.answer(c, f, nil)
			<-s.slots
		}()
		return buf
	}
	buf = s.answer(c, f, buf[:0])
	<-s.slots
	return buf
}

// answer runs the handler, sends the reply where the request says and
// acknowledges the request, in one write.
func (s *server) answer(c *stompConn, f *frame.Frame, buf []byte) []byte {
	ack := frame.New(frame.ACK, frame.Id, f.Header.Get(frame.Ack))
	replyTo := f.Header.Get("reply-to")
	if replyTo == "" {
		c.send(time.Now().Add(replyWriteTimeout), ack) // nowhere to reply
		return buf
	}
	buf = s.h(f.Body, buf)
	rep := frame.New(frame.SEND, frame.Destination, replyTo, "correlation-id", f.Header.Get("correlation-id"))
	if n := len(buf); n > MaxMessageSize {
		rep.Header.Add(errorHeader, fmt.Sprintf("reply of %d bytes exceeds the driver's limit of %d", n, MaxMessageSize))
		rep.Header.Add(frame.ContentLength, "0")
	} else {
		rep.Header.Add(frame.ContentLength, strconv.Itoa(n))
		rep.Body = buf
	}
	// the frames are encoded before send returns: buf may be reused
	c.send(time.Now().Add(replyWriteTimeout), rep, ack)
	return buf
}

// Close closes the responder connections (the broker hands their
// unacknowledged requests to other subscribers) and waits for the
// requests in hand. The request queue stays (STOMP cannot delete it); a
// broker rpcbench started goes with its store.
func (s *server) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.mu.Lock()
		conns := make([]*stompConn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.kill(ErrClosed)
		}
		s.wg.Wait()
		s.work.Wait()
	})
	return nil
}
