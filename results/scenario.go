package results

// Scenario is the results' own record of the scenario a run resolved:
// its JSON is part of the result format (results/schema.json), so it is
// written out here rather than borrowed from the scenario parser's types,
// whose changes must not change the format unseen. Durations and service
// times are in their canonical written form ("1.5s", "exp:100µs").
type Scenario struct {
	Name         string           `json:"name"`
	Description  string           `json:"description,omitempty"`
	Source       string           `json:"source"`
	Drivers      []ScenarioDriver `json:"drivers"`
	Payloads     []int            `json:"payloads"`
	ResponseSize int              `json:"response_size"`
	Concurrency  []int            `json:"concurrency,omitempty"`
	Rates        []float64        `json:"rates,omitempty"`
	MaxInFlight  int              `json:"max_in_flight"`
	ServiceTimes []string         `json:"service_times"`
	Duration     string           `json:"duration"`
	Calls        int64            `json:"calls,omitempty"`
	Warmup       string           `json:"warmup"`
	// BrokerWarmup is the unmeasured load run before the first cell on each
	// broker whose driver declares it needs one.
	BrokerWarmup string `json:"broker_warmup,omitempty"`
	Timeout      string `json:"timeout"`
	Repeat       int    `json:"repeat"`
	// ResponderConcurrency is how many requests every driver's responder
	// handles at once.
	ResponderConcurrency int `json:"responder_concurrency,omitempty"`
	// Settle caps each unit's settling before its first cell.
	Settle string `json:"settle,omitempty"`
	// Network is the hop delay the cells ran with (absent: no proxy).
	Network *ScenarioNetwork `json:"network,omitempty"`
	// Chain is the call chains every cell ran once per depth and mode
	// (absent: plain calls).
	Chain *ScenarioChain `json:"chain,omitempty"`
	// Faults are the faults of every cell, each ACTION@AT+RESTORE (absent:
	// no fault cells).
	Faults []string `json:"faults,omitempty"`
	// Phases is the open-loop schedule of every cell (DURATION@RATE/s,
	// comma-separated; absent: fixed rates or closed loop).
	Phases string `json:"phases,omitempty"`
}

// ScenarioChain is the call chains of a scenario.
type ScenarioChain struct {
	Depth []int    `json:"depth"`
	Mode  []string `json:"mode"`
}

// ScenarioNetwork is the hop delay of a scenario.
type ScenarioNetwork struct {
	OneWayDelay []string `json:"one_way_delay"`
	Jitter      string   `json:"jitter"`
}

// ScenarioDriver is one driver entry of a scenario: a driver, some of its
// variants (none: all) and options, as written.
type ScenarioDriver struct {
	Name     string            `json:"name"`
	Variants []string          `json:"variants,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	// Duration is the length of this entry's cells where it is not the
	// scenario's (absent: the scenario's).
	Duration string `json:"duration,omitempty"`
}
