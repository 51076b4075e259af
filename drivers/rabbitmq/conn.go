package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Connections and queues, shared by the responder and the callers.

// dial connects to url, giving up when ctx ends.
func dial(ctx context.Context, url, name string) (*amqp.Connection, error) {
	type res struct {
		c   *amqp.Connection
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := amqp.DialConfig(url, amqp.Config{
			Dial:       amqp.DefaultDial(5 * time.Second),
			Heartbeat:  10 * time.Second,
			Properties: amqp.Table{"connection_name": name},
		})
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				closeConn(r.c)
			}
		}()
		return nil, ctx.Err()
	}
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

// closeConn closes a connection without waiting more than 2 s for the
// broker's close-ok (Connection.Close waits for ever on a broker that no
// longer answers).
func closeConn(c *amqp.Connection) {
	_ = c.CloseDeadline(time.Now().Add(2 * time.Second))
}

// setupTimeout bounds the declarations and consumer set-up after a dial: a
// broker that is still recovering its queues may not answer them.
const setupTimeout = 15 * time.Second

// guardSetup closes conn if ctx ends or setup takes longer than
// setupTimeout, which fails the blocked AMQP call; the returned func ends
// the guard.
func guardSetup(ctx context.Context, conn *amqp.Connection) func() {
	t := time.AfterFunc(setupTimeout, func() { closeConn(conn) })
	stop := context.AfterFunc(ctx, func() { closeConn(conn) })
	return func() {
		t.Stop()
		stop()
	}
}

func randomName(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// queueArgs are the request queue's declare arguments. x-expires removes
// a queue left behind by a crashed run after 10 idle minutes.
func declareRequestQueue(ch *amqp.Channel, v variant, name string) error {
	args := amqp.Table{"x-expires": int32(10 * 60 * 1000)}
	durable := false
	switch v.durability {
	case Persistent:
		durable = true
		args["x-queue-type"] = "classic"
	case Quorum:
		durable = true
		args["x-queue-type"] = "quorum"
	}
	_, err := ch.QueueDeclare(name, durable, false, false, false, args)
	return err
}
