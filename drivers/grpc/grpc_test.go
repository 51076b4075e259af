package grpc_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/grpc"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

func TestConformance(t *testing.T) {
	for _, v := range []string{"unary", "stream"} {
		for _, conns := range []string{"1", "2"} {
			t.Run(v+"/connections="+conns, func(t *testing.T) {
				driverstest.Conformance(t, driverstest.Configure(t, grpc.New(), drivers.Config{Variant: v, Options: map[string]string{"connections": conns}}), drivers.Place{})
			})
		}
	}
}

func TestResponderGone(t *testing.T) {
	for _, v := range []string{"unary", "stream"} {
		t.Run(v, func(t *testing.T) {
			driverstest.ResponderGone(t, driverstest.Configure(t, grpc.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestConfigure(t *testing.T) {
	_, err := grpc.New().Configure(drivers.Config{Variant: "bidi"})
	if err == nil || err.Error() != `grpc: unknown variant "bidi" (want one of unary, stream)` {
		t.Fatalf("got %v", err)
	}
}

func TestStalled(t *testing.T) {
	for _, v := range grpc.New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			driverstest.Stalled(t, driverstest.Configure(t, grpc.New(), drivers.Config{Variant: v.Name}), drivers.Place{})
		})
	}
}

func TestSilentPeer(t *testing.T) {
	for _, v := range grpc.New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			driverstest.SilentPeer(t, driverstest.Configure(t, grpc.New(), drivers.Config{Variant: v.Name}), drivers.Place{})
		})
	}
}

func TestResponderBack(t *testing.T) {
	driverstest.ResponderBack(t, driverstest.Configure(t, grpc.New(), drivers.Config{}))
}
