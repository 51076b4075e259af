package gozero_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zeromicro/go-zero/zrpc"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/gozero"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// plain is a minimal zrpc client loop: zrpc.NewClient with the same
// configuration as the driver's (go-zero's defaults for the variant) and
// the generated Bench stub, against the same server, each call with a
// deadline as a real client's (zrpc's default client timeout gives every
// call one; the driver's is the scenario's).
func plain(b *testing.B, tr *gozero.Transport, addr string) func() func(uint64) error {
	c, err := tr.ClientConf(addr)
	if err != nil {
		b.Fatal(err)
	}
	zc, err := zrpc.NewClient(c)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { zc.Conn().Close() })
	if err := gozero.WaitReady(context.Background(), zc.Conn()); err != nil {
		b.Fatal(err)
	}
	client := wire.NewBenchClient(zc.Conn())
	payload := driverstest.BenchPayload(64) // the driver's calls' bytes
	sum := wire.Checksum(payload)
	return func() func(uint64) error {
		req := &wire.Call{Payload: payload, Checksum: sum}
		return func(id uint64) error {
			req.Id, req.SentUnixNano = id, driverstest.SentNow()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			rep, err := client.Unary(ctx, req)
			cancel()
			if err != nil {
				return err
			}
			if rep.Id != id {
				return fmt.Errorf("reply %d to call %d", rep.Id, id)
			}
			return nil
		}
	}
}

// BenchmarkVsPlain: each variant against the plain zrpc loop of the same
// configuration, one server, one run (driverstest.Versus). Targets:
// p50-ratio (driver/plain) at most 1.2, rate-ratio at least 1.
func BenchmarkVsPlain(b *testing.B) {
	for _, v := range []string{gozero.VariantMiddleware, gozero.VariantNoMiddleware} {
		b.Run(v, func(b *testing.B) {
			cfg := drivers.Config{Variant: v}
			tr := driverstest.Configure(b, gozero.New(), cfg)
			addr := driverstest.ServeApart(b, "gozero", cfg)
			driverstest.Versus(b, tr, addr, plain(b, tr.(*gozero.Transport), addr))
		})
	}
}
