package drivers

import (
	"maps"
	"testing"
)

func TestVia(t *testing.T) {
	via := map[string]string{"127.0.0.1:9092": "127.0.0.1:41001", "127.0.0.1:10911": "127.0.0.1:41002"}
	addr := WithVia("127.0.0.1:9876#topic", via)
	if addr != "127.0.0.1:9876#topic~via=127.0.0.1:10911>127.0.0.1:41002,127.0.0.1:9092>127.0.0.1:41001" {
		t.Fatalf("WithVia: %q", addr)
	}
	base, got, err := SplitVia(addr)
	if err != nil || base != "127.0.0.1:9876#topic" || !maps.Equal(got, via) {
		t.Fatalf("SplitVia(%q) = %q, %v, %v", addr, base, got, err)
	}
	if r := Route(got, "127.0.0.1:9092"); r != "127.0.0.1:41001" {
		t.Fatalf("Route: %q", r)
	}
	if r := Route(got, "127.0.0.1:1"); r != "127.0.0.1:1" {
		t.Fatalf("Route of an address with no route: %q", r)
	}
	// again: the routes are replaced, not added
	if again := WithVia(addr, map[string]string{"a:1": "b:2"}); again != "127.0.0.1:9876#topic~via=a:1>b:2" {
		t.Fatalf("WithVia again: %q", again)
	}
	if base, got, err := SplitVia("127.0.0.1:9876"); err != nil || base != "127.0.0.1:9876" || got != nil {
		t.Fatalf("no routes: %q %v %v", base, got, err)
	}
	for _, bad := range []string{"x~via=", "x~via=a:1", "x~via=a:1>b", "x~via=a:1>b:2,"} {
		if _, _, err := SplitVia(bad); err == nil {
			t.Errorf("SplitVia(%q): no error", bad)
		}
	}
}
