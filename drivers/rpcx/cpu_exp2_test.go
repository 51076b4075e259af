package rpcx_test

import (
	"os"
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/rpcx"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

func BenchmarkCPUProf(b *testing.B) {
	tr := driverstest.Configure(b, rpcx.New(), drivers.Config{})
	srv := driverstest.Serve(b, tr, drivers.Place{})
	client := driverstest.Dial(b, tr, srv.Addr())
	if os.Getenv("MODE") == "cell" {
		driverstest.DriverCell(b, client, 64, 1_000_000)
	} else if os.Getenv("MODE") == "callers" {
		driverstest.PlainLoop(b, 64, 1_000_000, driverstest.CallerLoop(b, client))
	} else {
		driverstest.PlainLoop(b, 64, 1_000_000, plain(b, srv.Addr()))
	}
}
