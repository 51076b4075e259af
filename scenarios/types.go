package scenarios

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Scenario is a resolved scenario: every field set, defaults filled in.
type Scenario struct {
	Name         string        `json:"name"`
	Description  string        `json:"description,omitempty"`
	Source       string        `json:"source"`
	Drivers      []DriverSpec  `json:"drivers"`
	Payloads     []int         `json:"payloads"`
	ResponseSize int           `json:"response_size"`
	Concurrency  []int         `json:"concurrency,omitempty"`
	Rates        []float64     `json:"rates,omitempty"`
	MaxInFlight  int           `json:"max_in_flight"`
	ServiceTimes []ServiceTime `json:"service_times"`
	Duration     Duration      `json:"duration"`
	Calls        int64         `json:"calls,omitempty"`
	Warmup       Duration      `json:"warmup"`
	// BrokerWarmup is unmeasured load run before the first cell on each
	// broker that needs it (a JVM broker, RocketMQ, is several times slower
	// until its JIT has compiled the hot paths).
	BrokerWarmup Duration `json:"broker_warmup"`
	Timeout      Duration `json:"timeout"`
	Repeat       int      `json:"repeat"`
	// ResponderConcurrency is how many requests every driver's responder
	// handles at once.
	ResponderConcurrency int `json:"responder_concurrency,omitempty"`
	// Settle caps each unit's settling before its first cell (0: none).
	Settle Duration `json:"settle"`
	// Network puts a delay proxy (internal/delay) on every hop; nil: none.
	Network *Network `json:"network,omitempty"`
	// Faults makes every cell a fault cell: the faults happen on this
	// schedule (from the start of each cell's measured window) and every
	// call is accounted for against the responder's ledger.
	Faults []Fault `json:"faults,omitempty"`
	// Phases makes each cell's open-loop rate change on a schedule (a
	// base rate, a burst, the base again); the cell lasts their total.
	Phases []Phase `json:"phases,omitempty"`
	// Chain makes every call a call chain: each cell runs once per depth
	// and mode (nil: plain calls).
	Chain *Chain `json:"chain,omitempty"`
}

// Chain is a scenario's call chains (internal/chain): the caller calls
// the first hop, which does its work (the service time) and calls the
// next hop, the same service through the same driver, and so on for
// Depth hops in all. Sync: each hop waits for the rest before replying.
// Async-tail: the first hop replies after its own work and sends the rest
// as fire-and-forget calls.
type Chain struct {
	Depths []int    `json:"depth"`
	Modes  []string `json:"mode"`
}

// Chain modes.
const (
	ChainSync      = "sync"
	ChainAsyncTail = "async-tail"
)

// MaxChainDepth bounds chain.depth.
const MaxChainDepth = 32

// Phase is one stretch of an open-loop schedule.
type Phase struct {
	Duration Duration `json:"duration"`
	Rate     float64  `json:"rate"`
}

// PhasesString is the phases' written form: 5s@200/s,2s@2000/s.
func PhasesString(ps []Phase) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s@%s/s", p.Duration, strconv.FormatFloat(p.Rate, 'f', -1, 64)))
	}
	return strings.Join(parts, ",")
}

// Network is the hop delay of a scenario: every cell runs once per one-way
// delay, through the proxy (0 measures the proxy's own cost).
type Network struct {
	OneWayDelay []Duration `json:"one_way_delay"`
	Jitter      Duration   `json:"jitter"`
}

// DriverSpec selects a driver, some of its variants (none: all) and options.
type DriverSpec struct {
	Name     string            `json:"name"`
	Variants []string          `json:"variants,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	// Duration, when set, is the length of this entry's cells instead of
	// the scenario's duration: for a driver whose throughput moves from
	// second to second more than others' (RocketMQ at sixteen callers on
	// two cores saturates the machine with its broker), so that its cells
	// average enough of it. Closed loop and fixed rates only.
	Duration Duration `json:"duration,omitempty"`
	// Line is where the entry stands in its file, for error messages.
	Line int `json:"-"`
}

// OpenLoop reports whether the scenario paces calls on a schedule (fixed
// rates, or phases).
func (s *Scenario) OpenLoop() bool { return len(s.Rates) > 0 || len(s.Phases) > 0 }

// Duration is a time.Duration written as "3s" in YAML and JSON.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// ServiceTime is the responder's simulated work per call: a fixed duration
// or an exponential distribution with a mean.
type ServiceTime struct {
	Exponential bool
	Mean        time.Duration
}

// String is the canonical form: "0", "100µs", "exp:100µs".
func (s ServiceTime) String() string {
	if s.Mean == 0 {
		return "0"
	}
	if s.Exponential {
		return "exp:" + s.Mean.String()
	}
	return s.Mean.String()
}

// Sample draws one service time.
func (s ServiceTime) Sample(r *rand.Rand) time.Duration {
	if !s.Exponential || s.Mean == 0 {
		return s.Mean
	}
	return time.Duration(r.ExpFloat64() * float64(s.Mean))
}

// MarshalJSON writes the canonical form.
func (s ServiceTime) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON parses the canonical form.
func (s *ServiceTime) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	v, err := ParseServiceTime(str)
	*s = v
	return err
}
