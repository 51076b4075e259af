package thrift_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/thrift"
	"github.com/rpcbench/rpcbench/drivers/thrift/benchthrift"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
)

var variants = []string{"binary", "compact"}

func TestConformance(t *testing.T) {
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, thrift.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestResponderGone(t *testing.T) {
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			driverstest.ResponderGone(t, driverstest.Configure(t, thrift.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestStalled(t *testing.T) {
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			driverstest.Stalled(t, driverstest.Configure(t, thrift.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestSilentPeer(t *testing.T) {
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			driverstest.SilentPeer(t, driverstest.Configure(t, thrift.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestConfigure(t *testing.T) {
	_, err := thrift.New().Configure(drivers.Config{Variant: "json"})
	if err == nil || err.Error() != `thrift: unknown variant "json" (want one of binary, compact)` {
		t.Fatalf("got %v", err)
	}
}

// TestWireRoundTrip: the Thrift struct carries every field of the Call,
// the unsigned ones at their full width.
func TestWireRoundTrip(t *testing.T) {
	in := benchthrift.Call{ID: -1, Payload: []byte("abc"), Checksum: -2, ServiceTimeNs: 5, ResponseSize: 3, SentUnixNano: 11, HandlerNs: 13, Error: "e", QueuedNs: 17}
	var out benchthrift.Call
	if err := thrift.FromWire(thrift.AppendWire(nil, &in), &out); err != nil {
		t.Fatal(err)
	}
	if string(out.Payload) != "abc" || out.ID != -1 || out.Checksum != -2 || out.ServiceTimeNs != 5 || out.ResponseSize != 3 || out.SentUnixNano != 11 || out.HandlerNs != 13 || out.Error != "e" || out.QueuedNs != 17 {
		t.Fatalf("got %+v", out)
	}
}

// TestOneResponderEveryVariant: the responder of the default variant
// answers callers of every variant (rpcbench serve runs one responder;
// run --target calls it with each variant).
func TestOneResponderEveryVariant(t *testing.T) {
	srv := driverstest.Serve(t, driverstest.Configure(t, thrift.New(), drivers.Config{}), drivers.Place{})
	for _, v := range thrift.New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			client := driverstest.Dial(t, driverstest.Configure(t, thrift.New(), drivers.Config{Variant: v.Name}), srv.Addr())
			driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)
		})
	}
}

func TestResponderBack(t *testing.T) {
	driverstest.ResponderBack(t, driverstest.Configure(t, thrift.New(), drivers.Config{}))
}
