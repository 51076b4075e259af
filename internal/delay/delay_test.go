package delay

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// echo serves an echo server on 127.0.0.1 and returns its address.
func echo(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func start(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	p, err := Start(context.Background(), echo(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// roundTrip writes msg and reads it back.
func roundTrip(t testing.TB, c net.Conn, r *bufio.Reader, msg []byte) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(msg) {
		t.Fatalf("got %q, want %q", got, msg)
	}
}

func TestForwardsAndCounts(t *testing.T) {
	for _, cfg := range []Config{{}, {OneWay: 200 * time.Microsecond}, {OneWay: 100 * time.Microsecond, Jitter: 300 * time.Microsecond}} {
		p := start(t, cfg)
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		total := 0
		for i := range 50 {
			msg := []byte("call-" + string(rune('a'+i%26)))
			roundTrip(t, c, r, msg)
			total += len(msg)
		}
		c.Close()
		st := p.Stats()
		if st.Bytes[0] != int64(total) || st.Bytes[1] != int64(total) || st.Chunks[0] < 50 {
			t.Fatalf("%+v: stats %+v, want %d bytes each way", cfg, st, total)
		}
		if cfg.OneWay > 0 {
			// a chunk is never forwarded before its delay
			if min := time.Duration(st.Achieved.Min()); min < cfg.OneWay-cfg.OneWay/1000 {
				t.Fatalf("%+v: a chunk was forwarded after %v", cfg, min)
			}
			if st.Achieved.TotalCount() != st.Chunks[0]+st.Chunks[1] {
				t.Fatalf("achieved delays for %d of %d chunks", st.Achieved.TotalCount(), st.Chunks[0]+st.Chunks[1])
			}
		}
	}
}

// With jitter, chunks still arrive in order: a stream of numbered bytes
// written in many small writes comes back intact.
func TestJitterKeepsOrder(t *testing.T) {
	p := start(t, Config{OneWay: 50 * time.Microsecond, Jitter: 2 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for i := range 4000 {
			c.Write([]byte{byte(i)})
		}
	}()
	got := make([]byte, 4000)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if b != byte(i) {
			t.Fatalf("byte %d is %d: reordered", i, b)
		}
	}
}

// Pause holds the bytes and keeps the connection; Pass delivers them.
// Down closes connections and refuses new ones until Pass.
func TestPauseAndDown(t *testing.T) {
	p := start(t, Config{})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	roundTrip(t, c, r, []byte("before"))
	p.SetMode(Pause)
	c.Write([]byte("held"))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("a byte went through a paused proxy")
	}
	c.SetReadDeadline(time.Time{})
	p.SetMode(Pass)
	got := make([]byte, 4)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "held" {
		t.Fatalf("after the pause: %q, %v", got, err)
	}
	p.SetMode(Down)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("the connection survived Down")
	}
	before := p.Stats().Chunks
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		c2.Write([]byte("x"))
		c2.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			t.Fatal("a new connection was echoed while down")
		}
		c2.Close()
	}
	if after := p.Stats().Chunks; after != before {
		t.Fatalf("chunks forwarded while down: %v -> %v", before, after)
	}
	p.SetMode(Pass)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	roundTrip(t, c3, bufio.NewReader(c3), []byte("after"))
}

// SetConfig changes the delay of chunks read from then on, on a
// connection already open; ResetStats starts the counts anew.
func TestSetConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
	}()
	px, err := Start(context.Background(), ln.Addr().String(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	c, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rtt := func() time.Duration {
		start := time.Now()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	rtt()
	if err := px.SetConfig(Config{OneWay: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	px.ResetStats()
	if d := rtt(); d < 40*time.Millisecond {
		t.Fatalf("round trip %v after a 20ms one-way delay was set", d)
	}
	if st := px.Stats(); st.Chunks != [2]int64{1, 1} || st.Achieved.Min() < int64(20*time.Millisecond)*995/1000 { // 3 digits of histogram precision
		t.Fatalf("stats after reset: chunks %v, least achieved %v", st.Chunks, time.Duration(st.Achieved.Min()))
	}
	if err := px.SetConfig(Config{OneWay: -1}); err == nil {
		t.Fatal("a negative delay was taken")
	}
}
