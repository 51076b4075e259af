package rpcx_test

import (
	"context"
	"fmt"
	"testing"

	rpcxclient "github.com/smallnest/rpcx/client"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/rpcx"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// plain is a minimal rpcx direct-mode client: one client.Client shared
// by every goroutine, Call with raw bytes.
func plain(b *testing.B, addr string) func() func(uint64) error {
	c := rpcxclient.NewClient(rpcx.Option())
	if err := c.Connect("tcp", addr); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	payload := driverstest.BenchPayload(64) // the driver's calls' bytes (zeros gzip for free)
	sum := wire.Checksum(payload)
	ctx := context.Background()
	return func() func(uint64) error {
		return func(id uint64) error {
			var reply []byte
			if err := c.Call(ctx, rpcx.Service, rpcx.Method, wire.Append(nil, &wire.Fields{ID: id, Payload: payload, Checksum: sum, SentUnixNano: driverstest.SentNow()}), &reply); err != nil {
				return err
			}
			var f wire.Fields
			if err := wire.Parse(reply, &f); err != nil || f.ID != id {
				return fmt.Errorf("reply %d to call %d (%v)", f.ID, id, err)
			}
			return nil
		}
	}
}

// BenchmarkVsPlain: the driver against the plain loop, one server.
func BenchmarkVsPlain(b *testing.B) {
	cfg := drivers.Config{}
	tr := driverstest.Configure(b, rpcx.New(), cfg)
	addr := driverstest.ServeApart(b, "rpcx", cfg)
	driverstest.Versus(b, tr, addr, plain(b, addr))
}
