package scenarios

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Overrides are command-line values that replace scenario values. Without
// Set, empty and zero fields leave the scenario's value.
type Overrides struct {
	// Set names the flags given on the command line ("repeat", "duration",
	// ...): each is applied and checked even when empty or zero, so that
	// --repeat 0 is an error rather than "not given".
	Set map[string]bool

	Drivers  string
	Duration string
	Warmup   string
	// BrokerWarmup replaces broker_warmup.
	BrokerWarmup string
	Concurrency  string
	Rate         string
	Payload      string
	ServiceTime  string
	Repeat       int
	Timeout      string
	Calls        int64
	// ResponderConcurrency replaces responder_concurrency (0: unset).
	ResponderConcurrency int
	// Settle replaces settle.
	Settle string
	// Faults replace the scenario's faults (ACTION@AT+RESTORE each).
	Faults []string
}

// Apply applies o to s; errors name the flag.
func (s *Scenario) Apply(o Overrides) error {
	bad := func(flag string, format string, args ...any) error {
		return fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...))
	}
	given := func(flag string, nonzero bool) bool {
		if o.Set != nil {
			return o.Set[flag]
		}
		return nonzero
	}
	if given("drivers", o.Drivers != "") {
		// tcp,grpc:unary,grpc:stream -> one spec per driver, variants merged.
		var out []DriverSpec
		idx := map[string]int{}
		all := map[string]bool{} // drivers given without a variant
		for _, part := range strings.Split(o.Drivers, ",") {
			part = strings.TrimSpace(part)
			name, variant, colon := strings.Cut(part, ":")
			if name == "" || colon && variant == "" {
				return bad("drivers", "%q: want a comma-separated list such as tcp,grpc:unary", o.Drivers)
			}
			i, ok := idx[name]
			if ok && (all[name] || variant == "" || slices.Contains(out[i].Variants, variant)) {
				return bad("drivers", "%q: %s is given twice (its cells would run twice): name each driver variant once", o.Drivers, part)
			}
			all[name] = variant == ""
			if !ok {
				// keep the scenario's options for a driver it already lists
				spec := DriverSpec{Name: name}
				for _, d := range s.Drivers {
					if d.Name == name {
						spec.Options, spec.Duration = d.Options, d.Duration
					}
				}
				out = append(out, spec)
				i = len(out) - 1
				idx[name] = i
			}
			if variant != "" {
				out[i].Variants = append(out[i].Variants, variant)
			}
		}
		s.Drivers = out
	}
	if given("duration", o.Duration != "") && len(s.Phases) > 0 && !given("rate", o.Rate != "") && !given("concurrency", o.Concurrency != "") {
		return bad("duration", "the scenario's phases set the cell's length: leave --duration out (or give --rate or --concurrency instead of the phases)")
	}
	if given("duration", o.Duration != "") {
		d, err := time.ParseDuration(o.Duration)
		if err != nil || d < time.Millisecond || d > 24*time.Hour {
			return bad("duration", "%q: want a duration from 1ms to 24h, e.g. 10s", o.Duration)
		}
		s.Duration = Duration(d)
	}
	if given("warmup", o.Warmup != "") {
		d, err := time.ParseDuration(o.Warmup)
		if err != nil || d < 0 || d > time.Hour {
			return bad("warmup", "%q: want a duration from 0s to 1h, e.g. 1s", o.Warmup)
		}
		s.Warmup = Duration(d)
	}
	if given("broker-warmup", o.BrokerWarmup != "") {
		d, err := time.ParseDuration(o.BrokerWarmup)
		if err != nil || d < 0 || d > time.Hour {
			return bad("broker-warmup", "%q: want a duration from 0s to 1h, e.g. 5s", o.BrokerWarmup)
		}
		s.BrokerWarmup = Duration(d)
	}
	if given("timeout", o.Timeout != "") {
		d, err := time.ParseDuration(o.Timeout)
		if err != nil || d < time.Millisecond || d > 10*time.Minute {
			return bad("timeout", "%q: want a duration from 1ms to 10m, e.g. 5s", o.Timeout)
		}
		s.Timeout = Duration(d)
	}
	setConc, setRate := given("concurrency", o.Concurrency != ""), given("rate", o.Rate != "")
	if setConc && setRate {
		return bad("rate", "give --concurrency (closed loop) or --rate (open loop), not both")
	}
	if setConc {
		var cs []int
		for _, part := range strings.Split(o.Concurrency, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil || c < 1 || c > MaxConcurrency {
				return bad("concurrency", "%q: want whole numbers from 1 to %d, comma-separated", o.Concurrency, MaxConcurrency)
			}
			if slices.Contains(cs, c) {
				return bad("concurrency", "%q: %d is given twice (its cells would run twice)", o.Concurrency, c)
			}
			cs = append(cs, c)
		}
		s.Concurrency, s.Rates, s.Phases = cs, nil, nil
	}
	if setRate {
		var rs []float64
		for _, part := range strings.Split(o.Rate, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
			if err != nil || r < 0.001 || r > MaxRate || math.IsNaN(r) {
				return bad("rate", "%q: want calls per second from 0.001 to %d, comma-separated", o.Rate, MaxRate)
			}
			if slices.Contains(rs, r) {
				return bad("rate", "%q: %v is given twice (its cells would run twice)", o.Rate, r)
			}
			rs = append(rs, r)
		}
		s.Rates, s.Concurrency, s.Phases = rs, nil, nil
	}
	if given("payload", o.Payload != "") {
		var ps []int
		for _, part := range strings.Split(o.Payload, ",") {
			n, err := ParseSize(part)
			if err != nil {
				return bad("payload", "%v", err)
			}
			if slices.Contains(ps, n) {
				return bad("payload", "%q: %d bytes is given twice (its cells would run twice)", o.Payload, n)
			}
			ps = append(ps, n)
		}
		s.Payloads = ps
	}
	if given("service-time", o.ServiceTime != "") {
		var sts []ServiceTime
		for _, part := range strings.Split(o.ServiceTime, ",") {
			st, err := ParseServiceTime(part)
			if err != nil {
				return bad("service-time", "%v", err)
			}
			if slices.Contains(sts, st) {
				return bad("service-time", "%q: %s is given twice (its cells would run twice)", o.ServiceTime, st)
			}
			sts = append(sts, st)
		}
		s.ServiceTimes = sts
	}
	if given("repeat", o.Repeat != 0) {
		if o.Repeat < 1 || o.Repeat > MaxRepeat {
			return bad("repeat", "%d: want 1 to %d", o.Repeat, MaxRepeat)
		}
		s.Repeat = o.Repeat
	}
	if given("calls", o.Calls != 0) {
		if o.Calls < 1 || o.Calls > math.MaxInt32 {
			return bad("calls", "%d: want 1 to %d measured calls per cell (leave --calls out to end cells after --duration)", o.Calls, math.MaxInt32)
		}
		s.Calls = o.Calls
	}
	if given("settle", o.Settle != "") {
		d, err := time.ParseDuration(o.Settle)
		if err != nil || d < 0 || d > time.Hour {
			return bad("settle", "%q: want a duration from 0s to 1h, e.g. 15s", o.Settle)
		}
		s.Settle = Duration(d)
	}
	if given("responder-concurrency", o.ResponderConcurrency != 0) {
		if o.ResponderConcurrency < 1 || o.ResponderConcurrency > MaxResponderConcurrency {
			return bad("responder-concurrency", "%d: want 1 to %d", o.ResponderConcurrency, MaxResponderConcurrency)
		}
		s.ResponderConcurrency = o.ResponderConcurrency
	}
	if given("fault", len(o.Faults) > 0) {
		s.Faults = nil
		for _, v := range o.Faults {
			f, err := ParseFault(v)
			if err != nil {
				return bad("fault", "%v", err)
			}
			s.Faults = append(s.Faults, f)
		}
	}
	// --duration, --calls and --fault set or time every cell, drivers'
	// own lengths included (a scenario file cannot give both: check)
	if given("duration", o.Duration != "") || s.Calls > 0 || len(s.Faults) > 0 {
		for i := range s.Drivers {
			s.Drivers[i].Duration = 0
		}
	}
	if msg := s.serviceBelowTimeout(); msg != "" {
		return bad("service-time", "%s (--timeout sets the timeout)", msg)
	}
	if field, _, msg := s.checkFaults(); msg != "" {
		return bad("fault", "%s: %s", field, msg)
	}
	if field, msg := s.checkChain(); msg != "" {
		return fmt.Errorf("%s: %s: %s (with the flags given)", s.Source, field, msg)
	}
	return nil
}
