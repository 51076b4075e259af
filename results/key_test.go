package results_test

import (
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// TestCellKey: every setting that changes the workload changes the key;
// the repetition and what was measured do not.
func TestCellKey(t *testing.T) {
	base := func() results.Cell {
		return results.Cell{Driver: "tcp", Variant: "mux", Options: map[string]string{"connections": "2"}, Payload: 64, ResponseSize: 64,
			Mode: "closed", Concurrency: 8, ServiceTime: "0", Repetition: 1, ResponderConcurrency: 64}
	}
	b := base()
	want := "tcp/mux connections=2 payload=64 response=64 concurrency=8 service=0 responder_concurrency=64"
	if got := results.CellKey(&b); got != want {
		t.Fatalf("key %q, want %q", got, want)
	}
	same := base()
	same.Repetition, same.Throughput, same.Key = 3, 1234, "anything"
	if results.CellKey(&same) != want {
		t.Errorf("repetition or measurements changed the key: %q", results.CellKey(&same))
	}
	open := base()
	open.Mode, open.Rate, open.Concurrency = "open", 1000, 256
	if got := results.CellKey(&open); got != "tcp/mux connections=2 payload=64 response=64 rate=1000 max_in_flight=256 service=0 responder_concurrency=64" {
		t.Errorf("open-loop key %q", got)
	}
	for name, edit := range map[string]func(c *results.Cell){
		"driver":                func(c *results.Cell) { c.Driver = "grpc" },
		"variant":               func(c *results.Cell) { c.Variant = "other" },
		"option value":          func(c *results.Cell) { c.Options = map[string]string{"connections": "1"} },
		"another option":        func(c *results.Cell) { c.Options = map[string]string{"connections": "2", "x": "1"} },
		"payload":               func(c *results.Cell) { c.Payload = 65 },
		"response size":         func(c *results.Cell) { c.ResponseSize = 0 },
		"concurrency":           func(c *results.Cell) { c.Concurrency = 9 },
		"mode":                  func(c *results.Cell) { c.Mode = "open" },
		"service time":          func(c *results.Cell) { c.ServiceTime = "exp:100µs" },
		"responder concurrency": func(c *results.Cell) { c.ResponderConcurrency = 1 },
	} {
		c := base()
		edit(&c)
		if results.CellKey(&c) == want {
			t.Errorf("%s: the key did not change", name)
		}
	}
	rate := open
	rate.Concurrency = 128 // max_in_flight
	if results.CellKey(&rate) == results.CellKey(&open) {
		t.Error("max_in_flight: the key did not change")
	}
}
