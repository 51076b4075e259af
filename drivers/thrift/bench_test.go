package thrift_test

import (
	"context"
	"fmt"
	"testing"

	thriftlib "github.com/apache/thrift/lib/go/thrift"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/thrift"
	"github.com/rpcbench/rpcbench/drivers/thrift/benchthrift"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// plain is a minimal Thrift client as the library's tutorial writes it:
// TSocket, TFramedTransport, the protocol, the generated client, one per
// goroutine.
func plain(b *testing.B, addr string, compact bool) func() func(uint64) error {
	payload := driverstest.BenchPayload(64) // the driver's calls' bytes (zeros gzip for free)
	sum := int32(wire.Checksum(payload))
	ctx := context.Background()
	cfg := &thriftlib.TConfiguration{}
	return func() func(uint64) error {
		sock := thriftlib.NewTSocketConf(addr, cfg)
		tr := thriftlib.NewTFramedTransportConf(sock, cfg)
		if err := tr.Open(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tr.Close() })
		var pf thriftlib.TProtocolFactory = thriftlib.NewTBinaryProtocolFactoryConf(cfg)
		if compact {
			pf = thriftlib.NewTCompactProtocolFactoryConf(cfg)
		}
		c := benchthrift.NewBenchClientFactory(tr, pf)
		return func(id uint64) error {
			rep, err := c.Unary(ctx, &benchthrift.Call{ID: int64(id), Payload: payload, Checksum: sum, SentUnixNano: driverstest.SentNow()})
			if err != nil {
				return err
			}
			if rep.ID != int64(id) {
				return fmt.Errorf("reply %d to call %d", rep.ID, id)
			}
			return nil
		}
	}
}

// BenchmarkVsPlain: both protocols against the plain loop, one server each.
func BenchmarkVsPlain(b *testing.B) {
	for _, v := range []string{"binary", "compact"} {
		b.Run(v, func(b *testing.B) {
			cfg := drivers.Config{Variant: v}
			tr := driverstest.Configure(b, thrift.New(), cfg)
			addr := driverstest.ServeApart(b, "thrift", cfg)
			driverstest.Versus(b, tr, addr, plain(b, addr, v == "compact"))
		})
	}
}
