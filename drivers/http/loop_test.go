package http_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

// versus runs the shared driver-vs-loop benchmark (driverstest.Versus)
// with this package's minimal loop, mk.
func versus(b *testing.B, tr drivers.Transport, addr string, mk func() func(id uint64) error) {
	b.Helper()
	driverstest.Versus(b, tr, addr, mk)
}
