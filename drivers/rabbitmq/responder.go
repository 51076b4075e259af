package rabbitmq

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

type server struct {
	url    string
	queue  string
	o      options
	h      drivers.Handler
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	conn *amqp.Connection
}

// Serve connects the responder to the broker at at.Broker (an amqp URL,
// optionally with "#queue"), declares the request queue (a unique name
// unless given) and consumes it with manual acks: a request is acked
// after its reply is published, so one a killed responder never answered
// is delivered again to the next.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	o := t.o
	if at.Broker == "" {
		return nil, fmt.Errorf("%s: no broker URL to serve on: start a broker or give --broker rabbitmq=amqp://host:port", Name)
	}
	// "#queue" serves a given request queue (a responder restarted in a
	// fault run takes over its predecessor's queue, with the requests it
	// never acknowledged)
	url, queue, _ := strings.Cut(at.Broker, "#")
	if queue == "" {
		queue = randomName("rpcbench.req.")
	}
	s := &server{url: url, queue: queue, o: o, h: h}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	conn, err := s.connect(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.wg.Add(1)
	go s.run(conn)
	return s, nil
}

func (s *server) Addr() string { return s.url + "#" + s.queue }

// connect dials, declares the request queue and opens the consumer
// channels.
func (s *server) connect(ctx context.Context) (*amqp.Connection, error) {
	conn, err := dial(ctx, s.url, "rpcbench-responder")
	if err != nil {
		return nil, fmt.Errorf("%s: responder: dial: %w", Name, err)
	}
	defer guardSetup(ctx, conn)()
	fail := func(what string, err error) (*amqp.Connection, error) {
		closeConn(conn)
		return nil, fmt.Errorf("%s: responder: %s: %w", Name, what, err)
	}
	setup, err := conn.Channel()
	if err != nil {
		return fail("channel", err)
	}
	if err := declareRequestQueue(setup, s.o.v, s.queue); err != nil {
		return fail("declare "+s.queue, err)
	}
	setup.Close()
	consumers := make([]<-chan amqp.Delivery, 0, s.o.parallelism)
	chans := make([]*amqp.Channel, 0, s.o.parallelism)
	for i := 0; i < s.o.parallelism; i++ {
		ch, err := conn.Channel()
		if err != nil {
			return fail("channel", err)
		}
		if err := ch.Qos(s.o.prefetch(i), 0, false); err != nil {
			return fail("qos", err)
		}
		d, err := ch.Consume(s.queue, "", false, false, false, false, nil)
		if err != nil {
			return fail("consume "+s.queue, err)
		}
		chans = append(chans, ch)
		consumers = append(consumers, d)
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		// Close ran meanwhile and will not see this connection.
		s.mu.Unlock()
		closeConn(conn)
		return nil, s.ctx.Err()
	}
	s.conn = conn
	s.startConsumers(chans, consumers)
	s.mu.Unlock()
	return conn, nil
}

// startConsumers runs one goroutine per consumer channel.
func (s *server) startConsumers(chans []*amqp.Channel, ds []<-chan amqp.Delivery) {
	for i := range chans {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.consume(chans[i], ds[i], s.o.prefetch(i))
		}()
	}
}

// run watches the connection and reconnects until Close.
func (s *server) run(conn *amqp.Connection) {
	defer s.wg.Done()
	for {
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-s.ctx.Done():
			closeConn(conn)
			return
		case <-closed:
		}
		s.mu.Lock()
		s.conn = nil
		s.mu.Unlock()
		for attempt := 0; ; attempt++ {
			if !backoff(s.ctx, attempt) {
				return
			}
			c, err := s.connect(s.ctx)
			if err == nil {
				conn = c
				break
			}
		}
	}
}

type slowReply struct {
	d     amqp.Delivery
	reply []byte
}

// consume owns ch: it publishes every reply and acks every request on it.
// At most prefetch requests are delivered and unacknowledged at once, so
// the slow replies never outnumber the buffer.
func (s *server) consume(ch *amqp.Channel, deliveries <-chan amqp.Delivery, prefetch int) {
	slow := make(chan slowReply, prefetch)
	var buf []byte
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			if wire.PeekServiceTime(d.Body) > 0 {
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					slow <- slowReply{d, s.h(d.Body, nil)}
				}()
				continue
			}
			buf = s.h(d.Body, buf[:0])
			s.reply(ch, &d, buf)
		case r := <-slow:
			s.reply(ch, &r.d, r.reply)
		}
	}
}

func (s *server) reply(ch *amqp.Channel, d *amqp.Delivery, body []byte) {
	if d.ReplyTo != "" {
		msg := amqp.Publishing{CorrelationId: d.CorrelationId, Body: body}
		if len(body) > MaxMessageSize {
			msg.Body = nil
			msg.Headers = amqp.Table{errorHeader: fmt.Sprintf("reply of %d bytes exceeds the driver's limit %d (max_message_size)", len(body), MaxMessageSize)}
		}
		// mandatory=false: a reply to a caller that is gone is dropped, not
		// returned (basic.return on direct reply-to in 3.x).
		err := ch.PublishWithContext(s.ctx, "", d.ReplyTo, false, false, msg)
		if err != nil {
			return // the channel is gone; deliveries will close
		}
	}
	d.Ack(false)
}

// Close stops the responder, deletes its request queue and waits for its
// goroutines.
func (s *server) Close() error {
	s.cancel()
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.mu.Unlock()
	var err error
	if conn != nil {
		// Bounded: a broker that stopped answering fails the delete when
		// the guard closes the connection.
		guard := time.AfterFunc(3*time.Second, func() { closeConn(conn) })
		if ch, cerr := conn.Channel(); cerr == nil {
			_, err = ch.QueueDelete(s.queue, false, false, false)
		}
		guard.Stop()
		closeConn(conn)
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("%s: responder close: %w", Name, err)
	}
	return nil
}
