package sockstat

import (
	"io"
	"net"
	"os"
	"testing"

	"github.com/rpcbench/rpcbench/internal/proc"
)

// Ten 100-byte writes, each answered before the next, are ten data
// segments of 100 bytes on the sending socket and ten received on the
// other end: the counters of this process's own sockets, found by inode.
func TestSnapshotCountsOwnSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	defer s.Close()
	before, err := Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	msg, buf := make([]byte, 100), make([]byte, 100)
	for i := 0; i < 10; i++ {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatal(err)
		}
	}
	after, err := Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mine := proc.SocketInodes([]int{os.Getpid()})
	var sent, recv []Counters
	for ino := range mine {
		a, ok := after[ino]
		if !ok {
			continue
		}
		d := a.Sub(before[ino])
		if d.BytesSent > 0 {
			sent = append(sent, d)
		}
		if d.BytesReceived > 0 {
			recv = append(recv, d)
		}
	}
	if len(sent) != 1 || len(recv) != 1 {
		t.Fatalf("sockets that sent %v, that received %v; want one each", sent, recv)
	}
	if g := sent[0]; g.BytesSent != 1000 || g.DataSegsOut != 10 {
		t.Errorf("sender: %+v, want 1000 bytes in 10 data segments", g)
	}
	if g := recv[0]; g.BytesReceived != 1000 || g.DataSegsIn != 10 {
		t.Errorf("receiver: %+v, want 1000 bytes in 10 data segments", g)
	}
}
