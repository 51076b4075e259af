package netrpc_test

import (
	"fmt"
	"net/rpc"
	"net/rpc/jsonrpc"
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/netrpc"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// plain is a minimal net/rpc client: one rpc.Client shared by every
// goroutine, Client.Call with the struct.
func plain(b *testing.B, addr string, asJSON bool) func() func(uint64) error {
	var rc *rpc.Client
	var err error
	if asJSON {
		rc, err = jsonrpc.Dial("tcp", addr)
	} else {
		rc, err = rpc.Dial("tcp", addr)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rc.Close() })
	payload := driverstest.BenchPayload(64) // the driver's calls' bytes (zeros gzip for free)
	sum := wire.Checksum(payload)
	return func() func(uint64) error {
		return func(id uint64) error {
			var reply netrpc.Call
			if err := rc.Call(netrpc.Method, &netrpc.Call{ID: id, Payload: payload, Checksum: sum, SentUnixNano: driverstest.SentNow()}, &reply); err != nil {
				return err
			}
			if reply.ID != id {
				return fmt.Errorf("reply %d to call %d", reply.ID, id)
			}
			return nil
		}
	}
}

// BenchmarkVsPlain: both codecs against the plain loop, one server each.
func BenchmarkVsPlain(b *testing.B) {
	for _, v := range []string{"gob", "jsonrpc"} {
		b.Run(v, func(b *testing.B) {
			cfg := drivers.Config{Variant: v}
			tr := driverstest.Configure(b, netrpc.New(), cfg)
			addr := driverstest.ServeApart(b, "netrpc", cfg)
			driverstest.Versus(b, tr, addr, plain(b, addr, v == "jsonrpc"))
		})
	}
}
