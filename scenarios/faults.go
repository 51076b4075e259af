package scenarios

import (
	"fmt"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Fault actions: what a fault cell does to the responder or the broker.
const (
	// KillResponder SIGKILLs the responder process; restored by starting
	// a new one at the same place (same port or queue).
	KillResponder = "kill-responder"
	// StopResponder freezes the responder (SIGSTOP); restored by SIGCONT.
	StopResponder = "stop-responder"
	// KillBroker kills the broker (SIGKILL or container kill); restored by
	// starting it again on the same ports and storage.
	KillBroker = "kill-broker"
	// StopBroker stops the broker gracefully; restored by starting it.
	StopBroker = "stop-broker"
	// PauseBroker freezes the broker (container pause or SIGSTOP);
	// restored by unfreezing it.
	PauseBroker = "pause-broker"
)

// FaultActions lists the actions in the order help text shows them.
var FaultActions = []string{KillResponder, StopResponder, KillBroker, StopBroker, PauseBroker}

// BrokerFault reports whether an action is done to the broker.
func BrokerFault(action string) bool { return strings.HasSuffix(action, "-broker") }

// Fault is one scheduled fault of every cell of a fault scenario.
type Fault struct {
	// At is when the fault happens, from the start of the cell's load.
	At Duration `json:"at"`
	// Action is one of FaultActions.
	Action string `json:"action"`
	// RestoreAfter is how long after At the fault is undone (0: at once,
	// e.g. a killed responder restarted immediately).
	RestoreAfter Duration `json:"restore_after"`
	// Line is where the entry stands in its file (0: from a flag).
	Line int `json:"-"`
}

// String is the flag form: ACTION@AT+RESTORE.
func (f Fault) String() string {
	return fmt.Sprintf("%s@%s+%s", f.Action, f.At, f.RestoreAfter)
}

// MaxFaultTime bounds at and restore_after.
const MaxFaultTime = time.Hour

// ParseFault parses the flag form ACTION@AT+RESTORE (e.g.
// kill-responder@2s+1s; "+RESTORE" may be left out for 0).
func ParseFault(s string) (Fault, error) {
	action, rest, ok := strings.Cut(s, "@")
	if !ok {
		return Fault{}, fmt.Errorf("%q: want ACTION@AT+RESTORE, e.g. kill-responder@2s+1s", s)
	}
	if err := checkAction(action); err != nil {
		return Fault{}, fmt.Errorf("%q: %v", s, err)
	}
	atS, restoreS, _ := strings.Cut(rest, "+")
	f := Fault{Action: action}
	for _, x := range []struct {
		name string
		s    string
		d    *Duration
	}{{"AT", atS, &f.At}, {"RESTORE", restoreS, &f.RestoreAfter}} {
		if x.s == "" && x.name == "RESTORE" {
			continue
		}
		d, err := time.ParseDuration(x.s)
		if x.s == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 || d > MaxFaultTime {
			return Fault{}, fmt.Errorf("%q: %s %q: want a duration from 0 to %v such as 2s", s, x.name, x.s, MaxFaultTime)
		}
		*x.d = Duration(d)
	}
	return f, nil
}

func checkAction(a string) error {
	for _, k := range FaultActions {
		if a == k {
			return nil
		}
	}
	return fmt.Errorf("unknown fault action %q (want one of %s)", a, strings.Join(FaultActions, ", "))
}

// faults parses the faults key: a list of {at, action, restore_after}.
func (p *parser) faults(n *yaml.Node) []Fault {
	var out []Fault
	for i, e := range p.list(n, "faults") {
		field := fmt.Sprintf("faults[%d]", i)
		if e.Kind != yaml.MappingNode {
			p.fail(e, field, "want a mapping {at: 2s, action: kill-responder, restore_after: 1s}, not a %s", kindName(e))
			return nil
		}
		f := Fault{Line: e.Line}
		seen := map[string]bool{}
		for j := 0; j+1 < len(e.Content); j += 2 {
			k, v := e.Content[j], e.Content[j+1]
			kf := field + "." + k.Value
			if seen[k.Value] {
				p.fail(k, kf, "given twice")
				return nil
			}
			seen[k.Value] = true
			switch k.Value {
			case "at":
				f.At = p.duration(v, kf, 0, MaxFaultTime)
			case "restore_after":
				f.RestoreAfter = p.duration(v, kf, 0, MaxFaultTime)
			case "action":
				f.Action = p.str(v, kf)
				if err := checkAction(f.Action); err != nil && p.err == nil {
					p.fail(v, kf, "%v", err)
				}
			default:
				p.fail(k, kf, "unknown key (known keys: at, action, restore_after)")
			}
			if p.err != nil {
				return nil
			}
		}
		for _, req := range []string{"at", "action"} {
			if !seen[req] {
				p.fail(e, field+"."+req, "missing (required)")
				return nil
			}
		}
		out = append(out, f)
	}
	return out
}

// checkFaults checks what a fault scenario needs: open loop (the load must
// not back off during an outage), faults in time order that do not overlap,
// and each fault within the cell.
func (s *Scenario) checkFaults() (field string, line int, msg string) {
	if len(s.Faults) == 0 {
		return "", 0, ""
	}
	if !s.OpenLoop() {
		return "faults", s.Faults[0].Line, "fault cells run open loop at a constant offered rate (the load must not back off during an outage): give rate, not concurrency"
	}
	if s.Calls > 0 {
		return "calls", s.Faults[0].Line, "fault cells run for a duration (the faults are placed in time): leave calls out"
	}
	var prevEnd time.Duration = -1
	for i, f := range s.Faults {
		at, end := time.Duration(f.At), time.Duration(f.At+f.RestoreAfter)
		if at <= prevEnd {
			return fmt.Sprintf("faults[%d].at", i), f.Line, fmt.Sprintf("%v is before the fault before it is restored (%v): list faults in time order, one at a time", f.At, prevEnd)
		}
		if end >= time.Duration(s.Duration) {
			return fmt.Sprintf("faults[%d]", i), f.Line, fmt.Sprintf("restored at %v, not before the cell ends (duration %v): lengthen duration so the run sees the recovery", end, s.Duration)
		}
		prevEnd = end
	}
	return "", 0, ""
}

// MaxPhases bounds the phases of a schedule.
const MaxPhases = 100

// phases parses the phases key: a list of {duration, rate}.
func (p *parser) phases(n *yaml.Node) []Phase {
	var out []Phase
	for i, e := range p.list(n, "phases") {
		field := fmt.Sprintf("phases[%d]", i)
		if e.Kind != yaml.MappingNode {
			p.fail(e, field, "want a mapping {duration: 5s, rate: 1000}, not a %s", kindName(e))
			return nil
		}
		var ph Phase
		seen := map[string]bool{}
		for j := 0; j+1 < len(e.Content); j += 2 {
			k, v := e.Content[j], e.Content[j+1]
			kf := field + "." + k.Value
			if seen[k.Value] {
				p.fail(k, kf, "given twice")
				return nil
			}
			seen[k.Value] = true
			switch k.Value {
			case "duration":
				ph.Duration = p.duration(v, kf, time.Millisecond, 24*time.Hour)
			case "rate":
				ph.Rate = p.float(v, kf, 0.001, MaxRate)
			default:
				p.fail(k, kf, "unknown key (known keys: duration, rate)")
			}
			if p.err != nil {
				return nil
			}
		}
		for _, req := range []string{"duration", "rate"} {
			if !seen[req] {
				p.fail(e, field+"."+req, "missing (required)")
				return nil
			}
		}
		out = append(out, ph)
	}
	if len(out) > MaxPhases {
		p.fail(n, "phases", "%d phases: at most %d", len(out), MaxPhases)
	}
	return out
}
