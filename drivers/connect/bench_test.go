package connect_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	connectlib "connectrpc.com/connect"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/connect"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// plain is a minimal Connect client with the generated Call type and
// Connect's own codecs, over the same h2c HTTP client. Each call has a
// deadline, as a Connect client should (and as the driver's calls do, and
// the dubbo, gozero and kafka loops): Connect sends it as
// Connect-Timeout-Ms or grpc-timeout, and the handler arms a timer for it.
func plain(addr string, opts ...connectlib.ClientOption) func() func(uint64) error {
	hc, _ := connect.NewHTTPClient(false)
	c := connectlib.NewClient[wire.Call, wire.Call](hc, "http://"+addr+connect.Procedure, opts...)
	payload := driverstest.BenchPayload(64) // the driver's calls' bytes (zeros gzip for free)
	sum := wire.Checksum(payload)
	return func() func(uint64) error {
		return func(id uint64) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := c.CallUnary(ctx, connectlib.NewRequest(&wire.Call{Id: id, Payload: payload, Checksum: sum, SentUnixNano: driverstest.SentNow()}))
			cancel()
			if err != nil {
				return err
			}
			if res.Msg.Id != id {
				return fmt.Errorf("reply %d to call %d", res.Msg.Id, id)
			}
			return nil
		}
	}
}

// BenchmarkVsPlain: each protocol against a plain Connect client of the
// same protocol and codec, one server, one run.
func BenchmarkVsPlain(b *testing.B) {
	for _, c := range []struct {
		variant string
		opts    []connectlib.ClientOption
	}{
		{"connect", nil},
		{"connect-json", []connectlib.ClientOption{connectlib.WithProtoJSON()}},
		{"grpc", []connectlib.ClientOption{connectlib.WithGRPC()}},
		{"grpcweb", []connectlib.ClientOption{connectlib.WithGRPCWeb()}},
	} {
		b.Run(c.variant, func(b *testing.B) {
			cfg := drivers.Config{Variant: c.variant}
			tr := driverstest.Configure(b, connect.New(), cfg)
			addr := driverstest.ServeApart(b, "connect", cfg)
			driverstest.Versus(b, tr, addr, plain(addr, c.opts...))
		})
	}
}
