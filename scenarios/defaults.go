package scenarios

import (
	"time"
)

// DefaultResponderConcurrency is responder_concurrency when a scenario
// does not set it (drivers.DefaultResponderConcurrency, the same for every
// driver).
const DefaultResponderConcurrency = 64

// DefaultSettle is settle when a scenario does not set it: the cap on each
// unit's settling before its first cell.
const DefaultSettle = 15 * time.Second

// DefaultBrokerWarmup is broker_warmup when a scenario does not set it.
const DefaultBrokerWarmup = 10 * time.Second

// defaultScenario is a scenario with every optional key at its default.
func defaultScenario() *Scenario {
	return &Scenario{MaxInFlight: 256, Duration: Duration(5 * time.Second), Warmup: Duration(time.Second), BrokerWarmup: Duration(DefaultBrokerWarmup), Timeout: Duration(5 * time.Second), Repeat: 1, ServiceTimes: []ServiceTime{{}}, ResponderConcurrency: DefaultResponderConcurrency, Settle: Duration(DefaultSettle)}
}
