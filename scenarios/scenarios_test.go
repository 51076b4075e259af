package scenarios

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const good = `name: t
drivers:
  - tcp
  - name: grpc
    variants: [unary]
    options: {connections: 2}
payloads: [64, 1KiB]
concurrency: [1, 8]
service_time: ["0", "exp:100us"]
duration: 3s
warmup: 500ms
broker_warmup: 7s
timeout: 2s
repeat: 3
`

func TestParseGood(t *testing.T) {
	s, err := Parse("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "t" || len(s.Drivers) != 2 || s.Drivers[1].Options["connections"] != "2" || s.Drivers[1].Line != 4 {
		t.Fatalf("drivers: %+v", s.Drivers)
	}
	if s.Payloads[1] != 1024 || s.Concurrency[1] != 8 || s.Repeat != 3 || time.Duration(s.Duration) != 3*time.Second {
		t.Fatalf("values: %+v", s)
	}
	if time.Duration(s.BrokerWarmup) != 7*time.Second {
		t.Fatalf("broker_warmup %v", s.BrokerWarmup)
	}
	if st := s.ServiceTimes[1]; !st.Exponential || st.Mean != 100*time.Microsecond || st.String() != "exp:100µs" {
		t.Fatalf("service time %+v", st)
	}
}

func TestEmbeddedDefault(t *testing.T) {
	s, err := Load(Default)
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "embedded:default" || len(s.Drivers) == 0 {
		t.Fatalf("%+v", s)
	}
	// A scenario that does not set broker_warmup gets the default.
	s, err = Parse("min.yaml", []byte("name: min\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(s.BrokerWarmup) != DefaultBrokerWarmup {
		t.Fatalf("broker_warmup %v, want %v", s.BrokerWarmup, DefaultBrokerWarmup)
	}
}

// TestMalformed: every bad scenario is rejected with file:line: field: what.
func TestMalformed(t *testing.T) {
	base := "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1]\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", base + "durration: 5s\n", "f.yaml:5: durration: unknown key (known keys: name,"},
		{"missing name", "drivers: [tcp]\npayloads: [64]\nconcurrency: [1]\n", "f.yaml:1: name: missing (required)"},
		{"missing drivers", "name: t\npayloads: [64]\nconcurrency: [1]\n", "f.yaml:1: drivers: missing (required)"},
		{"missing payloads", "name: t\ndrivers: [tcp]\nconcurrency: [1]\n", "f.yaml:1: payloads: missing (required)"},
		{"missing load", "name: t\ndrivers: [tcp]\npayloads: [64]\n", "f.yaml:1: concurrency: missing: give concurrency (closed loop), rate (open loop) or phases (open loop, changing rate)"},
		{"both loads", base + "rate: [100]\n", "f.yaml:5: rate: give either concurrency (closed loop) or rate (open loop), not both"},
		{"concurrency zero", "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [0]\n", "f.yaml:4: concurrency[0]: 0 is out of range: want 1 to 4096"},
		{"concurrency string", "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [lots]\n", `f.yaml:4: concurrency[0]: want a whole number from 1 to 4096, got "lots"`},
		{"concurrency float", "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1.5]\n", `f.yaml:4: concurrency[0]: want a whole number from 1 to 4096, got "1.5"`},
		{"concurrency mapping", "name: t\ndrivers: [tcp]\npayloads: [64]\nconcurrency: {a: 1}\n", "f.yaml:4: concurrency: want a list, got mapping"},
		{"rate negative", "name: t\ndrivers: [tcp]\npayloads: [64]\nrate: [-5]\n", "f.yaml:4: rate[0]: -5 is out of range"},
		{"rate text", "name: t\ndrivers: [tcp]\npayloads: [64]\nrate: [fast]\n", `f.yaml:4: rate[0]: want a number, got "fast"`},
		{"payload too big", "name: t\ndrivers: [tcp]\npayloads: [1GiB]\nconcurrency: [1]\n", `f.yaml:3: payloads[0]: "1GiB" is not a payload size`},
		{"payload negative", "name: t\ndrivers: [tcp]\npayloads: [-1]\nconcurrency: [1]\n", `f.yaml:3: payloads[0]: "-1" is not a payload size`},
		{"duration bad", base + "duration: forever\n", `f.yaml:5: duration: "forever" is not a duration: want e.g. 500ms, 5s, 1m`},
		{"duration zero", base + "duration: 0s\n", "f.yaml:5: duration: 0s is out of range: want 1ms to 24h0m0s"},
		{"duration number", base + "duration: 5\n", `f.yaml:5: duration: "5" is not a duration`},
		{"warmup negative", base + "warmup: -1s\n", "f.yaml:5: warmup: -1s is out of range"},
		{"broker_warmup too long", base + "broker_warmup: 2h\n", "f.yaml:5: broker_warmup: 2h0m0s is out of range: want 0s to 1h0m0s"},
		{"timeout too long", base + "timeout: 1h\n", "f.yaml:5: timeout: 1h0m0s is out of range: want 1ms to 10m0s"},
		{"repeat zero", base + "repeat: 0\n", "f.yaml:5: repeat: 0 is out of range: want 1 to 100"},
		{"repeat list", base + "repeat: [1]\n", "f.yaml:5: repeat: want a whole number, got list"},
		{"service time bad", base + "service_time: [slow]\n", `f.yaml:5: service_time[0]: "slow" is not a service time`},
		{"service time exp bad", base + "service_time: [\"exp:x\"]\n", `f.yaml:5: service_time[0]: "exp:x" is not a service time`},
		{"driver entry number list", "name: t\ndrivers:\n  - [tcp]\npayloads: [64]\nconcurrency: [1]\n", "f.yaml:3: drivers[0]: want a driver name or a mapping with name, variants, options, duration; got list"},
		{"driver unknown key", "name: t\ndrivers:\n  - name: tcp\n    variant: mux\npayloads: [64]\nconcurrency: [1]\n", "f.yaml:4: drivers[0].variant: unknown key (known keys: name, variants, options, duration)"},
		{"driver duration bad", "name: t\ndrivers:\n  - name: tcp\n    duration: long\npayloads: [64]\nconcurrency: [1]\n", `f.yaml:4: drivers[0].duration: "long" is not a duration`},
		{"driver duration zero", "name: t\ndrivers:\n  - name: tcp\n    duration: 0s\npayloads: [64]\nconcurrency: [1]\n", "f.yaml:4: drivers[0].duration: 0s is out of range: want 1ms to 24h0m0s"},
		{"driver duration with calls", "name: t\ndrivers:\n  - tcp\n  - name: grpc\n    duration: 5s\npayloads: [64]\nconcurrency: [1]\ncalls: 100\n", "f.yaml:4: drivers[1].duration: the scenario's calls end every cell: leave the driver's own duration out"},
		{"driver duration with phases", "name: t\ndrivers:\n  - name: grpc\n    duration: 5s\npayloads: [64]\nphases: [{duration: 1s, rate: 100}]\n", "f.yaml:3: drivers[0].duration: the scenario's phases set every cell's length: leave the driver's own duration out"},
		{"driver duration with faults", "name: t\ndrivers:\n  - name: tcp\n    duration: 20s\npayloads: [64]\nrate: [100]\nduration: 10s\nfaults: [{at: 1s, action: kill-responder}]\n", "f.yaml:3: drivers[0].duration: the scenario's faults are timed against its duration: leave the driver's own duration out"},
		{"driver without name", "name: t\ndrivers:\n  - variants: [mux]\npayloads: [64]\nconcurrency: [1]\n", "f.yaml:3: drivers[0].name: missing (required)"},
		{"driver options list", "name: t\ndrivers:\n  - name: tcp\n    options: [a]\npayloads: [64]\nconcurrency: [1]\n", "f.yaml:4: drivers[0].options: want a mapping of option: value, got list"},
		{"empty drivers", "name: t\ndrivers: []\npayloads: [64]\nconcurrency: [1]\n", "f.yaml:2: drivers: must not be empty"},
		{"name with slash", "name: a/b\ndrivers: [tcp]\npayloads: [64]\nconcurrency: [1]\n", `f.yaml:1: name: "a/b": use letters, digits`},
		{"duplicate key", base + "name: u\n", "f.yaml:5: name: given twice"},
		{"max in flight closed", base + "max_in_flight: 10\n", "f.yaml:5: max_in_flight: only applies to open loop (rate)"},
		{"not a mapping", "- tcp\n", "f.yaml:1: a scenario is a mapping of keys"},
		{"bad yaml", "name: [t\n", "f.yaml:1: not valid YAML"},
		{"empty", "", "f.yaml: empty scenario"},
		{"null value", base + "timeout:\n", "f.yaml:5: timeout: want a duration such as 5s, got null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted; want error %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error\n  %q\nwant prefix\n  %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	s, err := Parse("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(Overrides{Drivers: "grpc:stream,tcp", Rate: "100,200", Payload: "2KiB", ServiceTime: "1ms", Repeat: 2, Duration: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Drivers) != 2 || s.Drivers[0].Variants[0] != "stream" || s.Drivers[0].Options["connections"] != "2" {
		t.Fatalf("drivers %+v", s.Drivers)
	}
	if !s.OpenLoop() || s.Concurrency != nil || s.Payloads[0] != 2048 || s.Repeat != 2 {
		t.Fatalf("%+v", s)
	}
	if err := s.Apply(Overrides{BrokerWarmup: "0s"}); err != nil || s.BrokerWarmup != 0 {
		t.Fatalf("--broker-warmup 0s: %v, %v", err, s.BrokerWarmup)
	}
	for _, tc := range []struct {
		o    Overrides
		want string
	}{
		{Overrides{Duration: "x"}, `--duration: "x": want a duration from 1ms to 24h`},
		{Overrides{Concurrency: "0"}, `--concurrency: "0": want whole numbers from 1 to 4096`},
		{Overrides{Concurrency: "1", Rate: "5"}, "--rate: give --concurrency (closed loop) or --rate (open loop), not both"},
		{Overrides{Payload: "huge"}, `--payload: "huge" is not a payload size`},
		{Overrides{ServiceTime: "exp:"}, `--service-time: "exp:" is not a service time`},
		{Overrides{Repeat: 1000}, "--repeat: 1000: want 1 to 100"},
		{Overrides{Drivers: ",tcp"}, `--drivers: ",tcp": want a comma-separated list`},
		{Overrides{BrokerWarmup: "-1s"}, `--broker-warmup: "-1s": want a duration from 0s to 1h`},
	} {
		err := s.Apply(tc.o)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Apply(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
}

// A driver entry's own duration: its cells' length, kept by --drivers,
// replaced by --duration (the flag sets every cell's length).
func TestDriverDuration(t *testing.T) {
	const y = "name: t\ndrivers:\n  - tcp\n  - name: rocketmq\n    variants: [async-flush]\n    duration: 5s\npayloads: [64]\nconcurrency: [1]\nduration: 1500ms\n"
	s, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if s.Drivers[0].Duration != 0 || time.Duration(s.Drivers[1].Duration) != 5*time.Second || time.Duration(s.Duration) != 1500*time.Millisecond {
		t.Fatalf("drivers %+v, duration %v", s.Drivers, s.Duration)
	}
	if err := s.Apply(Overrides{Drivers: "rocketmq:async-flush,tcp"}); err != nil {
		t.Fatal(err)
	}
	if time.Duration(s.Drivers[0].Duration) != 5*time.Second || s.Drivers[1].Duration != 0 {
		t.Fatalf("--drivers: %+v", s.Drivers)
	}
	calls := *s
	calls.Drivers = slices.Clone(s.Drivers)
	if err := calls.Apply(Overrides{Calls: 100}); err != nil {
		t.Fatal(err)
	}
	if calls.Drivers[0].Duration != 0 {
		t.Fatalf("--calls: %+v", calls.Drivers)
	}
	if err := s.Apply(Overrides{Duration: "300ms"}); err != nil {
		t.Fatal(err)
	}
	if s.Drivers[0].Duration != 0 || time.Duration(s.Duration) != 300*time.Millisecond {
		t.Fatalf("--duration: %+v, %v", s.Drivers, s.Duration)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "64": 64, "1KiB": 1024, "1k": 1024, "2MiB": 2 << 20, "1kb": 1000, "10 B": 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
