package netrpc_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/netrpc"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
)

func cfg(v, conns string) drivers.Config {
	return drivers.Config{Variant: v, Options: map[string]string{"connections": conns}}
}

func TestConformance(t *testing.T) {
	for _, v := range []string{"gob", "jsonrpc"} {
		for _, conns := range []string{"1", "2"} {
			t.Run(v+"/connections="+conns, func(t *testing.T) {
				driverstest.Conformance(t, driverstest.Configure(t, netrpc.New(), cfg(v, conns)), drivers.Place{})
			})
		}
	}
}

func TestResponderGone(t *testing.T) {
	for _, v := range []string{"gob", "jsonrpc"} {
		t.Run(v, func(t *testing.T) {
			driverstest.ResponderGone(t, driverstest.Configure(t, netrpc.New(), cfg(v, "1")), drivers.Place{})
		})
	}
}

func TestStalled(t *testing.T) {
	for _, v := range []string{"gob", "jsonrpc"} {
		t.Run(v, func(t *testing.T) {
			driverstest.Stalled(t, driverstest.Configure(t, netrpc.New(), cfg(v, "1")), drivers.Place{})
		})
	}
}

func TestSilentPeer(t *testing.T) {
	for _, v := range []string{"gob", "jsonrpc"} {
		t.Run(v, func(t *testing.T) {
			driverstest.SilentPeer(t, driverstest.Configure(t, netrpc.New(), cfg(v, "1")), drivers.Place{})
		})
	}
}

func TestConfigure(t *testing.T) {
	_, err := netrpc.New().Configure(drivers.Config{Variant: "xml"})
	if err == nil || err.Error() != `netrpc: unknown variant "xml" (want one of gob, jsonrpc)` {
		t.Fatalf("got %v", err)
	}
	_, err = netrpc.New().Configure(cfg("gob", "0"))
	if err == nil || err.Error() != `netrpc: option connections="0": want a whole number from 1 to 256` {
		t.Fatalf("got %v", err)
	}
}

// TestOneResponderEveryVariant: the responder of the default variant
// answers callers of every variant (rpcbench serve runs one responder;
// run --target calls it with each variant).
func TestOneResponderEveryVariant(t *testing.T) {
	srv := driverstest.Serve(t, driverstest.Configure(t, netrpc.New(), drivers.Config{}), drivers.Place{})
	for _, v := range netrpc.New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			client := driverstest.Dial(t, driverstest.Configure(t, netrpc.New(), drivers.Config{Variant: v.Name}), srv.Addr())
			driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)
		})
	}
}

func TestResponderBack(t *testing.T) {
	driverstest.ResponderBack(t, driverstest.Configure(t, netrpc.New(), drivers.Config{}))
}
