package rpcx_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/rpcx"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

func TestConformance(t *testing.T) {
	for _, conns := range []string{"1", "2"} {
		t.Run("connections="+conns, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, rpcx.New(), drivers.Config{Options: map[string]string{"connections": conns}}), drivers.Place{})
		})
	}
}

func TestResponderGone(t *testing.T) {
	driverstest.ResponderGone(t, driverstest.Configure(t, rpcx.New(), drivers.Config{}), drivers.Place{})
}

func TestStalled(t *testing.T) {
	driverstest.Stalled(t, driverstest.Configure(t, rpcx.New(), drivers.Config{}), drivers.Place{})
}

func TestSilentPeer(t *testing.T) {
	driverstest.SilentPeer(t, driverstest.Configure(t, rpcx.New(), drivers.Config{}), drivers.Place{})
}

func TestConfigure(t *testing.T) {
	_, err := rpcx.New().Configure(drivers.Config{Variant: "etcd"})
	if err == nil || err.Error() != `rpcx: unknown variant "etcd" (want one of direct)` {
		t.Fatalf("got %v", err)
	}
	_, err = rpcx.New().Configure(drivers.Config{Options: map[string]string{"connections": "x"}})
	if err == nil || err.Error() != `rpcx: option connections="x": want a whole number from 1 to 256` {
		t.Fatalf("got %v", err)
	}
}

func TestResponderBack(t *testing.T) {
	driverstest.ResponderBack(t, driverstest.Configure(t, rpcx.New(), drivers.Config{}))
}
