package dubbo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/dubbo"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// plain is a minimal Dubbo-go Triple client: triple_protocol's Client with
// its default (protobuf) codec and the generated Call type, over the HTTP
// client Dubbo-go's Triple client builds for a plain-text URL, each call
// with a deadline as a real client's.
func plain(addr string) func() func(uint64) error {
	hc, _ := dubbo.NewHTTPClient()
	c := tri.NewClient(hc, "http://"+addr+dubbo.Procedure)
	payload := driverstest.BenchPayload(64) // the driver's calls' bytes
	sum := wire.Checksum(payload)
	return func() func(uint64) error {
		return func(id uint64) error {
			var rep wire.Call
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.CallUnary(ctx, tri.NewRequest(&wire.Call{Id: id, Payload: payload, Checksum: sum, SentUnixNano: driverstest.SentNow()}), tri.NewResponse(&rep))
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

// BenchmarkVsPlain: the driver against a plain Triple client, one server,
// one run (driverstest.Versus).
func BenchmarkVsPlain(b *testing.B) {
	cfg := drivers.Config{Variant: dubbo.VariantTriple}
	tr := driverstest.Configure(b, dubbo.New(), cfg)
	addr := driverstest.ServeApart(b, "dubbo", cfg)
	driverstest.Versus(b, tr, addr, plain(addr))
}
