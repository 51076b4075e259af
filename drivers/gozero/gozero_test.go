package gozero_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/gozero"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

func variants() []string {
	var vs []string
	for _, v := range gozero.New().Spec().Variants {
		vs = append(vs, v.Name)
	}
	return vs
}

// TestConformance runs the middleware variant with load shedding off:
// go-zero sheds calls while the CPU of the whole cgroup is above 90%,
// which on a shared machine (or right after the previous subtest's burst)
// fails calls the checks want answered. Shedding is go-zero's, not the
// driver's; TestMiddlewareConf checks that it is on by default.
func TestConformance(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			cfg := drivers.Config{Variant: v}
			if v == gozero.VariantMiddleware {
				cfg.Options = map[string]string{"cpu-threshold": "0"}
			}
			driverstest.Conformance(t, driverstest.Configure(t, gozero.New(), cfg), drivers.Place{})
		})
	}
}

// failing configures variant v for a test whose calls fail, load
// shedding off as in TestConformance (its first calls must succeed);
// under the race detector the middleware variant's client breaker is off
// too, as go-zero's breaker races within itself once it opens (see
// WithoutClientBreaker).
func failing(t *testing.T, v string) drivers.Transport {
	tr := driverstest.Configure(t, gozero.New(), drivers.Config{Variant: v, Options: map[string]string{"cpu-threshold": "0"}}).(*gozero.Transport)
	if raceDetector && v == gozero.VariantMiddleware {
		t.Log("race detector: client breaker off (go-zero v1.10.3 core/breaker races once it opens)")
		return gozero.WithoutClientBreaker(tr)
	}
	return tr
}

func TestResponderGone(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			driverstest.ResponderGone(t, failing(t, v), drivers.Place{})
		})
	}
}

func TestStalled(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			driverstest.Stalled(t, failing(t, v), drivers.Place{})
		})
	}
}

func TestSilentPeer(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			driverstest.SilentPeer(t, failing(t, v), drivers.Place{})
		})
	}
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Variant: "bare"}, `gozero: unknown variant "bare" (want one of middleware, no-middleware)`},
		{drivers.Config{Options: map[string]string{"connections": "2"}}, `gozero: unknown option "connections" (want one of cpu-threshold)`},
		{drivers.Config{Options: map[string]string{"cpu-threshold": "1000"}}, `gozero: option cpu-threshold="1000": want a whole number from 0 to 999`},
	} {
		_, err := gozero.New().Configure(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Configure(%+v) = %v, want %s", tc.cfg, err, tc.want)
		}
	}
	tr, err := gozero.New().Configure(drivers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Config().Variant; got != gozero.VariantMiddleware {
		t.Fatalf("default variant %q, want %q", got, gozero.VariantMiddleware)
	}
}

// TestMiddlewareConf checks that the default variant keeps go-zero's
// middleware defaults (load shedding and breakers on) and the other turns
// them off.
func TestMiddlewareConf(t *testing.T) {
	on := driverstest.Configure(t, gozero.New(), drivers.Config{Variant: gozero.VariantMiddleware}).(*gozero.Transport)
	off := driverstest.Configure(t, gozero.New(), drivers.Config{Variant: gozero.VariantNoMiddleware}).(*gozero.Transport)
	sOn, err := on.ServerConf("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	cOn, _ := on.ClientConf("127.0.0.1:1")
	if !sOn.Middlewares.Breaker || !sOn.Middlewares.Stat || sOn.CpuThreshold != 900 || !cOn.Middlewares.Breaker || sOn.Timeout != 0 || cOn.Timeout != 0 || sOn.DevServer.Enabled {
		t.Fatalf("middleware variant: server %+v client %+v", sOn, cOn)
	}
	sOff, _ := off.ServerConf("127.0.0.1:1")
	cOff, _ := off.ClientConf("127.0.0.1:1")
	if sOff.Middlewares.Breaker || sOff.Middlewares.Stat || sOff.CpuThreshold != 0 || cOff.Middlewares.Breaker {
		t.Fatalf("no-middleware variant: server %+v client %+v", sOff, cOff)
	}
}

// TestResponderBack: both variants; with the middleware, go-zero's
// client breaker rejects some calls for a while after the responder is
// back (it opened on the failures while it was gone).
func TestResponderBack(t *testing.T) {
	for _, v := range []string{"middleware", "no-middleware"} {
		t.Run(v, func(t *testing.T) {
			driverstest.ResponderBack(t, driverstest.Configure(t, gozero.New(), drivers.Config{Variant: v}))
		})
	}
}
