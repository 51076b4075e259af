package results

// Faults is a fault cell's record: what was done when, every call
// accounted for against the responder's ledger, a 100 ms timeline of what
// the callers saw, and how long each fault took to recover from.
type Faults struct {
	Events []FaultEvent `json:"events"`
	Ledger Ledger       `json:"ledger"`
	// StepMs is the timeline's step.
	StepMs int `json:"step_ms"`
	// Timeline runs from the cell's start (warm-up included) to the end of
	// its drain.
	Timeline []TimelinePoint `json:"timeline"`
	Drain    Drain           `json:"drain"`
	// Notes say what this cell's accounting cannot show.
	Notes []string `json:"notes,omitempty"`
}

// FaultEvent is one fault as it happened. Times are seconds from the start
// of the cell's load (warm-up included).
type FaultEvent struct {
	Action string `json:"action"`
	// At and Restored are when the fault was done and undone (Restored
	// absent: it was not undone before the cell ended).
	At       float64  `json:"at"`
	Restored *float64 `json:"restored,omitempty"`
	// Error says why the fault or its restore failed.
	Error string `json:"error,omitempty"`
	// NotApplicable says why the fault was not done to this cell (a
	// broker fault on a direct driver); At is then -1.
	NotApplicable string `json:"not_applicable,omitempty"`
	// FirstOKMs is the time from the restore to the first ok call that
	// ended after it (null: none did).
	FirstOKMs *float64 `json:"first_ok_after_restore_ms"`
	// RecoveredMs is the time from the restore until the p99 of the calls
	// started in each half-second window stays within 1.5× of its value
	// before the fault, with none failing, for 2 s (null: it never did
	// before the load or the next fault ended).
	RecoveredMs *float64 `json:"p99_recovered_ms"`
	// BaselineP99Us is that p99 before the fault (µs; 0: too few calls).
	BaselineP99Us float64 `json:"baseline_p99_us"`
}

// Ledger accounts for every call of a fault cell. Attempted = ExactlyOnce +
// Duplicated + Lost + ExecutedAfterTimeout; NotSent calls (the schedule
// found every slot busy past their timeout) are counted apart.
type Ledger struct {
	// Attempted are the calls a caller sent.
	Attempted int64 `json:"attempted"`
	// NotSent are the calls due that never started, or that the driver
	// said it never sent (its connection down), and no responder handled.
	NotSent int64 `json:"not_sent"`
	// ExactlyOnce were handled once and the caller saw the reply.
	ExactlyOnce int64 `json:"exactly_once"`
	// Duplicated were handled more than once (whatever the caller saw).
	Duplicated int64 `json:"duplicated"`
	// DuplicatedOK are those of Duplicated whose caller saw ok.
	DuplicatedOK int64 `json:"duplicated_ok"`
	// Lost were never handled.
	Lost int64 `json:"lost"`
	// LostAcknowledged were never handled although the broker had
	// acknowledged the request (null: the driver does not report acks).
	LostAcknowledged *int64 `json:"lost_acknowledged"`
	// ExecutedAfterTimeout were handled once but the caller had failed
	// them (timed out, or failed otherwise): the work was done, the
	// caller never learned it.
	ExecutedAfterTimeout int64 `json:"executed_after_timeout"`
	// OKUnrecorded are calls the caller saw ok with no ledger record (a
	// broken ledger: should be 0).
	OKUnrecorded int64 `json:"ok_unrecorded"`
	// Unexpected are handlings of ids this cell never attempted (e.g. old
	// requests replayed from a durable queue).
	Unexpected int64 `json:"unexpected"`
	// OrphanReplies are replies that arrived for calls no longer waiting
	// (null: the driver does not report them).
	OrphanReplies *int64 `json:"orphan_replies"`
	// Redelivered are the handlings of an id handled before (rpcbench's
	// callers never resend an id: each is the broker's redelivery).
	Redelivered int64 `json:"redelivered"`
	// Handlings is the number of ledger records of this cell, and
	// Incarnations the responder processes that wrote them.
	Handlings    int64 `json:"handlings"`
	Incarnations int   `json:"incarnations"`
	// Undrained is set when the drain hit its bound with records still
	// arriving: later handlings are not counted.
	Undrained bool `json:"undrained,omitempty"`
}

// TimelinePoint is one step of a fault cell's timeline: the calls that
// ended in it (ok, failed), the calls in flight at its end, and the ok
// calls' latency percentiles (µs, 0 without ok calls).
type TimelinePoint struct {
	T        float64 `json:"t"`
	OK       int64   `json:"ok"`
	Failed   int64   `json:"failed"`
	InFlight int64   `json:"in_flight"`
	P50      float64 `json:"p50_us"`
	P99      float64 `json:"p99_us"`
}

// Drain is how a fault cell waited, after its load, for handlings still
// to come (requests redelivered to a restarted responder).
type Drain struct {
	Seconds float64 `json:"seconds"`
	// Quiet is how long no new ledger record had to arrive; Bound the
	// longest the drain may take.
	QuietSeconds float64 `json:"quiet_seconds"`
	BoundSeconds float64 `json:"bound_seconds"`
}
