package tcp_test

import (
	"context"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/tcp"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// TestCallAllocations: a call on a warm connection allocates nothing on
// the caller's side (the responder's reply buffer is reused too).
func TestCallAllocations(t *testing.T) {
	d := tcp.New()
	srv := driverstest.Serve(t, driverstest.Configure(t, d, drivers.Config{}), drivers.Place{})
	client := driverstest.Dial(t, driverstest.Configure(t, d, drivers.Config{}), srv.Addr())
	c, err := client.NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 64)
	req := wire.Append(nil, &wire.Fields{ID: 1, Payload: p, Checksum: wire.Checksum(p)})
	buf := make([]byte, 0, 256)
	ctx := context.Background()
	call := func() {
		out, err := c.Call(ctx, time.Now().Add(5*time.Second), req, buf[:0])
		if err != nil || len(out) == 0 {
			t.Fatal(err)
		}
	}
	call()
	if n := testing.AllocsPerRun(2000, call); n > 0 {
		t.Fatalf("%.1f allocations per call, want 0", n)
	}
}
