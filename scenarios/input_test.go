package scenarios

import (
	"errors"
	"strings"
	"testing"
)

// TestRepeatedInput: a value given twice is an error naming where, never
// two cells taken for repetitions of one, never "the last one wins".
func TestRepeatedInput(t *testing.T) {
	const head = "name: t\npayloads: [64]\nconcurrency: [1]\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"driver twice", head + "drivers:\n  - tcp\n  - tcp\n", "t.yaml:6: drivers[1]: driver tcp is already listed at line 5 (drivers[0])"},
		{"driver twice, one with variants", head + "drivers:\n  - grpc\n  - name: grpc\n    variants: [unary]\n", "t.yaml:6: drivers[1]: driver grpc is already listed at line 5"},
		{"driver twice, overlapping variants", head + "drivers:\n  - {name: grpc, variants: [unary, stream]}\n  - {name: grpc, variants: [stream]}\n", "t.yaml:6: drivers[1]: driver grpc is already listed"},
		{"key twice in a driver entry", head + "drivers:\n  - name: grpc\n    variants: [unary]\n    variants: [stream]\n", "t.yaml:7: drivers[0].variants: given twice in this driver entry"},
		{"option twice", head + "drivers:\n  - name: tcp\n    options: {connections: 1, connections: 2}\n", "t.yaml:6: drivers[0].options.connections: given twice"},
		{"variant twice", head + "drivers:\n  - {name: grpc, variants: [unary, unary]}\n", "t.yaml:5: drivers[0].variants[1]: \"unary\" given twice"},
		{"second document", head + "drivers: [tcp]\n---\nname: u\n", "t.yaml:6: a second YAML document"},
		{"second document, empty", head + "drivers: [tcp]\n---\n", ""},
		{"payload twice", "name: t\ndrivers: [tcp]\npayloads: [64, 1KiB, 1024]\nconcurrency: [1]\n", "t.yaml:3: payloads[2]: 1024 is the same as payloads[1]"},
		{"concurrency twice", "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1, 1]\n", "t.yaml:4: concurrency[1]: 1 is the same as concurrency[0]"},
		{"rate twice", "name: t\ndrivers: [tcp]\npayloads: [64]\nrate: [10, 10.0]\n", "t.yaml:4: rate[1]"},
		{"service time twice", "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1]\nservice_time: [\"0\", \"fixed:0\"]\n", "t.yaml:5: service_time[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.doc))
			if tc.want == "" {
				// "---" followed by nothing is no second scenario
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q...", err, tc.want)
			}
		})
	}
	// different options are different cells
	if _, err := Parse("t.yaml", []byte(head+"drivers:\n  - tcp\n  - {name: tcp, options: {connections: 4}}\n")); err != nil {
		t.Errorf("the same driver with other options: %v", err)
	}
}

func TestOverridesGivenZero(t *testing.T) {
	set := func(o Overrides, flags ...string) Overrides {
		o.Set = map[string]bool{}
		for _, f := range flags {
			o.Set[f] = true
		}
		return o
	}
	for _, tc := range []struct {
		o    Overrides
		want string
	}{
		{set(Overrides{}, "repeat"), "--repeat: 0: want 1 to 100"},
		{set(Overrides{Repeat: 101}, "repeat"), "--repeat: 101: want 1 to 100"},
		{set(Overrides{}, "calls"), "--calls: 0: want 1 to"},
		{set(Overrides{Calls: 1 << 40}, "calls"), "--calls: 1099511627776: want 1 to"},
		{set(Overrides{}, "responder-concurrency"), "--responder-concurrency: 0: want 1 to 4096"},
		{set(Overrides{}, "duration"), `--duration: "": want a duration from 1ms to 24h`},
		{set(Overrides{Duration: "0s"}, "duration"), `--duration: "0s"`},
		{set(Overrides{Duration: "25h"}, "duration"), `--duration: "25h"`},
		{set(Overrides{Warmup: "-1s"}, "warmup"), `--warmup: "-1s"`},
		{set(Overrides{Warmup: "2h"}, "warmup"), `--warmup: "2h"`},
		{set(Overrides{BrokerWarmup: "2h"}, "broker-warmup"), `--broker-warmup: "2h"`},
		{set(Overrides{Timeout: "0s"}, "timeout"), `--timeout: "0s"`},
		{set(Overrides{Timeout: "11m"}, "timeout"), `--timeout: "11m"`},
		{set(Overrides{}, "concurrency"), `--concurrency: "": want whole numbers`},
		{set(Overrides{Concurrency: "0"}, "concurrency"), `--concurrency: "0"`},
		{set(Overrides{Concurrency: "4097"}, "concurrency"), `--concurrency: "4097"`},
		{set(Overrides{Concurrency: "1,1"}, "concurrency"), `--concurrency: "1,1": 1 is given twice`},
		{set(Overrides{Rate: "0"}, "rate"), `--rate: "0"`},
		{set(Overrides{Rate: "1e8"}, "rate"), `--rate: "1e8"`},
		{set(Overrides{Rate: "5,5"}, "rate"), `--rate: "5,5": 5 is given twice`},
		{set(Overrides{}, "payload"), `--payload: "" is not a payload size`},
		{set(Overrides{Payload: "65MiB"}, "payload"), `--payload: "65MiB" is not a payload size`},
		{set(Overrides{Payload: "1KiB,1024"}, "payload"), `--payload: "1KiB,1024": 1024 bytes is given twice`},
		{set(Overrides{ServiceTime: "2m"}, "service-time"), `--service-time: "2m" is not a service time`},
		{set(Overrides{ServiceTime: "exp:1ms,exp:1ms"}, "service-time"), `--service-time: "exp:1ms,exp:1ms": exp:1ms is given twice`},
		{set(Overrides{ResponderConcurrency: 5000}, "responder-concurrency"), "--responder-concurrency: 5000"},
		{set(Overrides{}, "drivers"), `--drivers: "": want a comma-separated list`},
		{set(Overrides{Drivers: "tcp,tcp"}, "drivers"), `--drivers: "tcp,tcp": tcp is given twice`},
		{set(Overrides{Drivers: "grpc,grpc:unary"}, "drivers"), `--drivers: "grpc,grpc:unary": grpc:unary is given twice`},
		{set(Overrides{Drivers: "grpc:unary,grpc:unary"}, "drivers"), `--drivers: "grpc:unary,grpc:unary": grpc:unary is given twice`},
		{set(Overrides{Drivers: "grpc:"}, "drivers"), `--drivers: "grpc:": want a comma-separated list`},
	} {
		s, err := Parse("t.yaml", []byte(good))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(tc.o); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Apply(%+v) = %v, want %q...", tc.o, err, tc.want)
		}
	}
	// Set lists what was given: the rest keeps the scenario's values.
	s, _ := Parse("t.yaml", []byte(good))
	if err := s.Apply(Overrides{Set: map[string]bool{"repeat": true}, Repeat: 5}); err != nil || s.Repeat != 5 || len(s.Payloads) != 2 {
		t.Errorf("Apply repeat=5: %v %+v", err, s)
	}
	if err := s.Apply(Overrides{Set: map[string]bool{"drivers": true}, Drivers: "grpc:stream,grpc:unary"}); err != nil || len(s.Drivers) != 1 || len(s.Drivers[0].Variants) != 2 {
		t.Errorf("Apply drivers: %v %+v", err, s.Drivers)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("name: t\ndrivers: [tcp, tcp]\npayloads: [64]\nconcurrency: [1]\n---\nx: 1\n"))
	f.Add([]byte("name: t\ndrivers:\n  - {name: grpc, options: {connections: 2}}\npayloads: [64]\nrate: [10]\nmax_in_flight: 4\n"))
	if data, err := embedded.ReadFile(Default + ".yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("message on several lines: %q", err)
			}
			return
		}
		// what Parse accepts is a scenario the runner can expand
		if s.Name == "" || len(s.Drivers) == 0 || len(s.Payloads) == 0 || len(s.Concurrency)+len(s.Rates) == 0 || s.Repeat < 1 {
			t.Fatalf("accepted an incomplete scenario: %+v", s)
		}
	})
}

// TestNetwork: the network key's delays and jitter, and what is wrong with
// them named by line and field.
func TestNetwork(t *testing.T) {
	const head = "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1]\n"
	sc, err := Parse("t.yaml", []byte(head+"network:\n  one_way_delay: [0, 250us, 1ms]\n  jitter: 20us\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Network == nil || len(sc.Network.OneWayDelay) != 3 || sc.Network.OneWayDelay[1].String() != "250µs" || sc.Network.Jitter.String() != "20µs" {
		t.Fatalf("network = %+v", sc.Network)
	}
	for _, tc := range []struct{ doc, want string }{
		{"network: 1ms\n", "t.yaml:5: network: want a mapping with one_way_delay"},
		{"network:\n  jitter: 1ms\n", "t.yaml:6: network.one_way_delay: missing"},
		{"network:\n  one_way_delay: [1ms, 1000us]\n", "t.yaml:6: network.one_way_delay[1]"},
		{"network:\n  one_way_delay: [2s]\n", "t.yaml:6: network.one_way_delay[0]: 2s is out of range"},
		{"network:\n  delay: [1ms]\n", "t.yaml:6: network.delay: unknown key"},
	} {
		_, err := Parse("t.yaml", []byte(head+tc.doc))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q...", tc.doc, err, tc.want)
		}
	}
}

// TestChain: the chain key's depths and modes, and what is wrong with them
// or with what they are combined with, named by line and field.
func TestChain(t *testing.T) {
	const head = "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1, 4]\n"
	sc, err := Parse("t.yaml", []byte(head+"service_time: [5ms]\nchain:\n  depth: [1, 2, 6]\n  mode: [sync, async-tail]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Chain == nil || len(sc.Chain.Depths) != 3 || sc.Chain.Depths[2] != 6 || len(sc.Chain.Modes) != 2 || sc.Chain.Modes[1] != ChainAsyncTail {
		t.Fatalf("chain = %+v", sc.Chain)
	}
	sc, err = Parse("t.yaml", []byte(head+"chain:\n  depth: [3]\n"))
	if err != nil || len(sc.Chain.Modes) != 1 || sc.Chain.Modes[0] != ChainSync {
		t.Fatalf("mode left out: %+v, %v; want sync", sc.Chain, err)
	}
	for _, tc := range []struct{ doc, want string }{
		{"chain: 3\n", "t.yaml:5: chain: want a mapping with depth"},
		{"chain:\n  mode: sync\n", "t.yaml:6: chain.depth: missing"},
		{"chain:\n  depth: [0]\n", "t.yaml:6: chain.depth[0]: 0 is out of range"},
		{"chain:\n  depth: [2, 2]\n", "t.yaml:6: chain.depth[1]: 2 is the same as chain.depth[0]"},
		{"chain:\n  depth: [2]\n  mode: [async]\n", "t.yaml:7: chain.mode[0]: \"async\": want sync"},
		{"chain:\n  depth: [2]\n  hops: 3\n", "t.yaml:7: chain.hops: unknown key"},
		// 4 callers × 20 hops = 80 requests held, above 64
		{"chain:\n  depth: [20]\n", "t.yaml:6: chain.depth: a synchronous chain of depth 20 at concurrency 4 holds 80 requests"},
		{"service_time: [1s]\nchain:\n  depth: [5]\n", "t.yaml:7: chain.depth: a synchronous chain of depth 5 at service time 1s takes at least 5s, not below the timeout 5s"},
	} {
		_, err := Parse("t.yaml", []byte(head+tc.doc))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q...", tc.doc, err, tc.want)
		}
	}
	// async-tail hops do not wait on each other: no slot check
	if _, err := Parse("t.yaml", []byte(head+"chain:\n  depth: [20]\n  mode: [async-tail]\n")); err != nil {
		t.Errorf("async-tail depth 20: %v", err)
	}
	// a flag that breaks the chain's bound names the scenario's key
	sc, err = Parse("t.yaml", []byte(head+"chain:\n  depth: [8]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Apply(Overrides{Concurrency: "16"}); err == nil || !strings.HasPrefix(err.Error(), "t.yaml: chain.depth: a synchronous chain of depth 8 at concurrency 16") {
		t.Errorf("--concurrency 16 with depth 8: %v", err)
	}
}
