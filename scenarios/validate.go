package scenarios

import (
	"fmt"
	"slices"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Limits on scenario values.
const (
	MaxPayload     = 64 << 20
	MaxConcurrency = 4096
	MaxRate        = 10_000_000
	MaxInFlight    = 100_000
	MaxRepeat      = 100
)

// MaxResponderConcurrency bounds responder_concurrency.
const MaxResponderConcurrency = 4096

// check checks what no single key can: the required keys, closed or open
// loop, and settings that contradict each other. seen maps each key given
// to its value.
func (p *parser) check(root *yaml.Node, seen map[string]*yaml.Node, s *Scenario) {
	for _, req := range []string{"name", "drivers", "payloads"} {
		if seen[req] == nil {
			p.fail(root, req, "missing (required)")
			return
		}
	}
	if n := seen["phases"]; n != nil {
		if len(s.Phases) == 0 {
			p.fail(n, "phases", "empty: give at least one {duration, rate}")
			return
		}
		for _, k := range []string{"concurrency", "rate", "duration", "calls"} {
			if seen[k] != nil {
				p.fail(seen[k], k, "phases set the open-loop rate and the cell's length: leave %s out", k)
				return
			}
		}
		var total time.Duration
		for _, ph := range s.Phases {
			total += time.Duration(ph.Duration)
		}
		s.Duration = Duration(total)
	}
	if seen["concurrency"] == nil && seen["rate"] == nil && seen["phases"] == nil {
		p.fail(root, "concurrency", "missing: give concurrency (closed loop), rate (open loop) or phases (open loop, changing rate)")
	}
	if seen["concurrency"] != nil && seen["rate"] != nil {
		p.fail(seen["rate"], "rate", "give either concurrency (closed loop) or rate (open loop), not both")
	}
	if seen["max_in_flight"] != nil && seen["rate"] == nil && seen["phases"] == nil {
		p.fail(seen["max_in_flight"], "max_in_flight", "only applies to open loop (rate)")
	}
	for i, d := range s.Drivers {
		if d.Duration == 0 || p.err != nil {
			continue
		}
		var why string
		switch {
		case seen["calls"] != nil:
			why = "the scenario's calls end every cell"
		case seen["phases"] != nil:
			why = "the scenario's phases set every cell's length"
		case seen["faults"] != nil:
			why = "the scenario's faults are timed against its duration"
		}
		if why != "" {
			p.fail(&yaml.Node{Line: d.Line}, fmt.Sprintf("drivers[%d].duration", i), "%s: leave the driver's own duration out", why)
		}
	}
	if field, msg := s.checkChain(); msg != "" && p.err == nil {
		n := seen[field]
		if n == nil {
			n = seen["chain"]
		}
		p.fail(n, field, "%s", msg)
	}
	if field, line, msg := s.checkFaults(); msg != "" && p.err == nil {
		p.fail(&yaml.Node{Line: line}, field, "%s", msg)
	}
	if msg := s.serviceBelowTimeout(); msg != "" && p.err == nil {
		n := seen["service_time"]
		if n == nil {
			n = seen["timeout"]
		}
		p.fail(n, "service_time", "%s", msg)
	}
}

// checkChain refuses a chain with what cannot carry it, and chains that
// would stall the responder or time out by design: the field at fault
// (a key of the scenario) and why, or "".
func (s *Scenario) checkChain() (field, msg string) {
	if s.Chain == nil {
		return "", ""
	}
	if len(s.Faults) > 0 {
		return "faults", "chain and faults cannot be combined: a fault run accounts every call by its id, which every hop of a chain carries; leave one out"
	}
	depth := slices.Max(s.Chain.Depths)
	if !slices.Contains(s.Chain.Modes, ChainSync) {
		return "", ""
	}
	// every hop of a synchronous chain waits on the next one: at
	// concurrency c a chain of depth d holds c×d of the responder's
	// requests at once
	callers, what := s.MaxInFlight, "max_in_flight"
	if !s.OpenLoop() {
		callers, what = slices.Max(s.Concurrency), "concurrency"
	}
	if callers*depth > s.ResponderConcurrency {
		return "chain.depth", fmt.Sprintf("a synchronous chain of depth %d at %s %d holds %d requests at the responder at once, above its responder_concurrency %d: every slot would wait on a hop that cannot start; raise responder_concurrency or lower depth or %s", depth, what, callers, callers*depth, s.ResponderConcurrency, what)
	}
	for _, st := range s.ServiceTimes {
		if time.Duration(depth)*st.Mean >= time.Duration(s.Timeout) {
			return "chain.depth", fmt.Sprintf("a synchronous chain of depth %d at service time %s takes at least %s, not below the timeout %s: every call would time out; raise timeout or lower depth", depth, st, time.Duration(depth)*st.Mean, s.Timeout)
		}
	}
	return "", ""
}

// serviceBelowTimeout says what is wrong when a service time is not below
// the timeout: every call would time out by design.
func (s *Scenario) serviceBelowTimeout() string {
	for _, st := range s.ServiceTimes {
		if st.Mean >= time.Duration(s.Timeout) {
			return fmt.Sprintf("service time %s is not below the timeout %s: every call would time out; lower it or raise timeout", st, s.Timeout)
		}
	}
	return ""
}

// noRepeats fails on the first value of a list given twice: its cells
// would run twice and be taken for repetitions.
func noRepeats[T comparable](p *parser, n *yaml.Node, field string, values []T) {
	if p.err != nil || n.Kind != yaml.SequenceNode {
		return
	}
	seen := map[T]int{}
	for i := 0; i < len(values) && i < len(n.Content); i++ {
		k := values[i]
		if j, dup := seen[k]; dup {
			p.fail(n.Content[i], fmt.Sprintf("%s[%d]", field, i), "%s is the same as %s[%d]: its cells would run twice; list each value once (use repeat for repetitions)", n.Content[i].Value, field, j)
			return
		}
		seen[k] = i
	}
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// variantsOverlap reports whether two variant lists (empty: every
// variant) select a variant in common.
func variantsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, v := range a {
		if slices.Contains(b, v) {
			return true
		}
	}
	return false
}
