package results

// Saturation is where one driver variant saturates (rpcbench sweep): the
// plateau of a closed-loop concurrency ladder, and the maximum rate it
// sustains in open loop under stated criteria, found by trials that are
// all kept.
type Saturation struct {
	Driver  string            `json:"driver"`
	Variant string            `json:"variant"`
	Options map[string]string `json:"options,omitempty"`
	// XSat is the ladder's highest throughput (ok calls/s), reached at
	// XSatConcurrency callers; the ladder's cells are in the run's cells.
	XSat            float64 `json:"x_sat"`
	XSatConcurrency int     `json:"x_sat_concurrency"`
	// MaxSustainableRate is R*; null when the search did not find it,
	// with Reason.
	MaxSustainableRate *float64 `json:"max_sustainable_rate"`
	Reason             string   `json:"reason,omitempty"`
	// AtLeast is a confirmed lower bound on R* when R* was not found
	// because the generator could not offer more on this machine.
	AtLeast float64 `json:"at_least,omitempty"`
	// BracketLo and BracketHi are the highest rate seen to pass and the
	// lowest seen to fail above it (0: none), or with
	// BracketHiGenerator the lowest the generator could not keep to;
	// FailingCriterion is why the trial at BracketHi failed.
	BracketLo          float64 `json:"bracket_lo"`
	BracketHi          float64 `json:"bracket_hi"`
	BracketHiGenerator bool    `json:"bracket_hi_generator,omitempty"`
	FailingCriterion   string  `json:"failing_criterion,omitempty"`
	// Criteria are what a trial had to meet; Settings how the sweep ran
	// (the scenario's concurrency, rates, duration and max_in_flight do
	// not apply to it).
	Criteria SweepCriteria `json:"criteria"`
	Settings SweepSettings `json:"settings"`
	Trials   []SweepTrial  `json:"trials"`
}

// SweepSettings are how a sweep ran.
type SweepSettings struct {
	Ladder      []int   `json:"ladder"`
	StepSeconds float64 `json:"step_seconds"`
	FullSeconds float64 `json:"full_seconds"`
	MaxInFlight int     `json:"max_in_flight"`
	// BudgetSeconds bounds each unit's sweep (0: none).
	BudgetSeconds float64 `json:"budget_seconds,omitempty"`
}

// SweepCriteria are the pass criteria of a sweep's trials.
type SweepCriteria struct {
	MinOKShare   float64 `json:"min_ok_share"`
	MaxFailShare float64 `json:"max_fail_share"`
	P99US        float64 `json:"p99_objective_us"`
	MaxP50Growth float64 `json:"max_p50_growth"`
	// GeneratorBoundUS is the generator lateness p99 within which a trial
	// is judged either way (beyond it only a pass within the objective
	// counts).
	GeneratorBoundUS float64 `json:"generator_bound_us"`
	// P99Why says where the p99 objective comes from.
	P99Why string `json:"p99_objective_why"`
}

// SweepTrial is one open-loop trial of a sweep.
type SweepTrial struct {
	Rate      float64 `json:"rate"`
	Full      bool    `json:"full"`
	Seconds   float64 `json:"seconds"`
	OKRate    float64 `json:"ok_rate"`
	FailShare float64 `json:"fail_share"`
	P50       float64 `json:"p50_us"`
	P99       float64 `json:"p99_us"`
	P999      float64 `json:"p99_9_us"`
	// P50First and P50Last are the p50 of the trial's first and last
	// seconds (a growing backlog shows between them).
	P50First         float64 `json:"p50_first_us"`
	P50Last          float64 `json:"p50_last_us"`
	GeneratorLimited bool    `json:"generator_limited"`
	// GeneratorLatenessP99 is the generator's own lateness at p99 (µs).
	GeneratorLatenessP99 float64 `json:"generator_lateness_p99_us"`
	// OtherCPUCores is what processes other than the trial's own used,
	// in cores (over 0.25: busy, and the trial is repeated).
	OtherCPUCores float64 `json:"other_cpu_cores"`
	StealCores    float64 `json:"steal_cores"`
	Verdict       string  `json:"verdict"`
	Why           string  `json:"why,omitempty"`
}
