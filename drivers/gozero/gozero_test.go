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

func TestConformance(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, gozero.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

// failing configures variant v for a test whose calls fail: under the
// race detector the middleware variant's client breaker is off, as go-zero's
// breaker races within itself once it opens (see WithoutClientBreaker).
func failing(t *testing.T, v string) drivers.Transport {
	tr := driverstest.Configure(t, gozero.New(), drivers.Config{Variant: v}).(*gozero.Transport)
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
		{drivers.Config{Options: map[string]string{"connections": "2"}}, `gozero: unknown option "connections" (this driver has no options)`},
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
