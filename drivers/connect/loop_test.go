package connect_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// versus runs the shared driver-vs-loop benchmark with this package's
// minimal loop, mk: three alternating rounds, each side's best kept
// (driverstest.VersusRounds), since one round's ratios moved by ±20%
// between runs on this shared 2-core machine.
func versus(b *testing.B, tr drivers.Transport, addr string, mk func() func(id uint64) error) {
	b.Helper()
	driverstest.VersusRounds(b, tr, addr, mk, 3)
}
