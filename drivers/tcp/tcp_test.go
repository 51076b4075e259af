package tcp_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/tcp"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

func TestConformance(t *testing.T) {
	for _, conns := range []string{"1", "3"} {
		t.Run("connections="+conns, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, tcp.New(), drivers.Config{Options: map[string]string{"connections": conns}}), drivers.Place{})
		})
	}
}

func TestResponderGone(t *testing.T) {
	driverstest.ResponderGone(t, driverstest.Configure(t, tcp.New(), drivers.Config{}), drivers.Place{})
}

func TestConfigure(t *testing.T) {
	d := tcp.New()
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Options: map[string]string{"connections": "0"}}, `tcp: option connections="0": want a whole number from 1 to 256`},
		{drivers.Config{Options: map[string]string{"conns": "2"}}, `tcp: unknown option "conns" (want one of connections)`},
		{drivers.Config{Variant: "pipelined"}, `tcp: unknown variant "pipelined" (want one of mux)`},
	} {
		_, err := d.Configure(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Configure(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	tr, err := d.Configure(drivers.Config{Options: map[string]string{"connections": "03"}})
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	// the effective configuration: default variant, canonical option values,
	// the default responder concurrency
	got := tr.Config()
	if got.Variant != "mux" || got.Options["connections"] != "3" || got.ResponderConcurrency != drivers.DefaultResponderConcurrency {
		t.Errorf("effective config = %+v", got)
	}
	if err := tr.CheckTarget("127.0.0.1"); err == nil {
		t.Errorf("CheckTarget without a port: no error")
	}
	if err := tr.CheckTarget("127.0.0.1:7000"); err != nil {
		t.Errorf("CheckTarget(127.0.0.1:7000): %v", err)
	}
}

func TestStalled(t *testing.T) {
	driverstest.Stalled(t, driverstest.Configure(t, tcp.New(), drivers.Config{}), drivers.Place{})
}

func TestSilentPeer(t *testing.T) {
	driverstest.SilentPeer(t, driverstest.Configure(t, tcp.New(), drivers.Config{}), drivers.Place{})
}

func TestResponderBack(t *testing.T) {
	driverstest.ResponderBack(t, driverstest.Configure(t, tcp.New(), drivers.Config{}))
}
