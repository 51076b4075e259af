package rmqadmin

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
)

// Relay stands in for a name server: it forwards each connection to the
// name server at upstream, and in every frame the name server sends back
// it replaces each broker address of rewrite by its value (in the body,
// where routes and cluster tables carry them), so that clients connect to
// the brokers where a run wants them: a delay proxy in front of each.
// RocketMQ clients have no dialer to redirect, and connect to the
// addresses the name server gives them.
type Relay struct {
	ln       net.Listener
	upstream string
	rewrite  [][2][]byte
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	closed   bool
}

// StartRelay listens on a random loopback port.
func StartRelay(upstream string, rewrite map[string]string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("rmqadmin: name server relay: %w", err)
	}
	r := &Relay{ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	for from, to := range rewrite {
		if from != to {
			r.rewrite = append(r.rewrite, [2][]byte{[]byte(from), []byte(to)})
		}
	}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is where clients reach the relay.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Close stops listening, closes every connection and waits for them.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}

// track records c until untrack; false when the relay is closed.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = true
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

// serve forwards one client connection: its requests as they are, the
// name server's frames rewritten.
func (r *Relay) serve(c net.Conn) {
	defer r.wg.Done()
	if !r.track(c) {
		c.Close()
		return
	}
	defer r.untrack(c)
	up, err := net.Dial("tcp", r.upstream)
	if err != nil {
		return
	}
	if !r.track(up) {
		up.Close()
		return
	}
	defer r.untrack(up)
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		up.Close() // the client left: end the other direction too
		close(done)
	}()
	br := bufio.NewReader(up)
	for {
		frame, err := readFrame(br)
		if err != nil {
			break
		}
		if _, err := c.Write(r.rewriteFrame(frame)); err != nil {
			break
		}
	}
	c.Close()
	<-done
}

// readFrame reads one whole frame: the length word and what follows.
func readFrame(br *bufio.Reader) ([]byte, error) {
	var pre [8]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		return nil, err
	}
	total := binary.BigEndian.Uint32(pre[0:4])
	hl := binary.BigEndian.Uint32(pre[4:8]) & 0xffffff
	if total > maxFrame || hl+4 > total {
		return nil, fmt.Errorf("rmqadmin: bad frame (length %d, header %d)", total, hl)
	}
	frame := make([]byte, 4+total)
	copy(frame, pre[:])
	if _, err := io.ReadFull(br, frame[8:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// rewriteFrame replaces the addresses in frame's body and sets its length
// word to the new length (the header is left as it is: its length word
// stays right).
func (r *Relay) rewriteFrame(frame []byte) []byte {
	hl := binary.BigEndian.Uint32(frame[4:8]) & 0xffffff
	body := frame[8+hl:]
	changed := false
	for _, rw := range r.rewrite {
		if bytes.Contains(body, rw[0]) {
			body = bytes.ReplaceAll(body, rw[0], rw[1])
			changed = true
		}
	}
	if !changed {
		return frame
	}
	out := make([]byte, 0, 8+int(hl)+len(body))
	out = append(out, frame[:8+hl]...)
	out = append(out, body...)
	binary.BigEndian.PutUint32(out[0:4], uint32(len(out)-4))
	return out
}
