// Package results is the one type between measuring and reporting: the
// runner fills a Run, reporters and compare read it. A Run is written as one
// JSON document per run (result.json); its format is described by the JSON
// Schema in schema.json.
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// SchemaVersion is the version of the result format written by this build.
// Readers refuse other versions.
const SchemaVersion = 2

// Run is one rpcbench run: its environment, the resolved scenario, and
// every measured cell.
type Run struct {
	SchemaVersion int         `json:"schema_version"`
	ID            string      `json:"id"`
	StartedAt     time.Time   `json:"started_at"`
	FinishedAt    time.Time   `json:"finished_at"`
	Complete      bool        `json:"complete"`
	Incomplete    string      `json:"incomplete_reason,omitempty"`
	Environment   Environment `json:"environment"`
	Scenario      Scenario    `json:"scenario"`
	Cells         []Cell      `json:"cells"`
	Skipped       []Skip      `json:"skipped"`
	// Responder is where the responders ran: "process" (each its own
	// process), "in-process" (the run's own) or "remote" (--target).
	Responder string `json:"responder,omitempty"`
	// Saturation is what `rpcbench sweep` found per driver variant.
	Saturation []Saturation `json:"saturation,omitempty"`
	// Warmups is what each unit's settling saw before its first cell.
	Warmups []Warmup `json:"warmups,omitempty"`
}

// Warmup is a unit's (driver variant's) settling before its first cell:
// unmeasured windows (as long as its cells, 0.5-1 s: WindowSeconds) at the
// first cell's load until three in a row agree (p50 within 10%, throughput within 20%), or the last five show
// no trend beyond those bands (runner.SettledWindows), or the cap runs out.
type Warmup struct {
	Driver     string            `json:"driver"`
	Variant    string            `json:"variant"`
	Options    map[string]string `json:"options,omitempty"`
	Settled    bool              `json:"settled"`
	Seconds    float64           `json:"seconds"`
	CapSeconds float64           `json:"cap_seconds"`
	// WindowSeconds is each window's length (0 in results from before
	// it was recorded: 1 s).
	WindowSeconds float64        `json:"window_seconds,omitempty"`
	Windows       []WarmupWindow `json:"windows"`
	Note          string         `json:"note"`
}

// WarmupWindow is one settling window.
type WarmupWindow struct {
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50_us"`
	Failed     int64   `json:"failed"`
}

// Environment is the manifest of what produced the numbers.
type Environment struct {
	RpcbenchVersion string            `json:"rpcbench_version"`
	Commit          string            `json:"commit"`
	GoVersion       string            `json:"go_version"`
	OS              string            `json:"os"`
	Arch            string            `json:"arch"`
	Kernel          string            `json:"kernel"`
	CPUModel        string            `json:"cpu_model"`
	Cores           int               `json:"cores"`
	GOMAXPROCS      int               `json:"gomaxprocs"`
	Libraries       map[string]string `json:"libraries"`
	Brokers         []Broker          `json:"brokers"`
}

// Broker records a broker a run used.
type Broker struct {
	Kind    string            `json:"kind"`
	Source  string            `json:"source"`
	URL     string            `json:"url,omitempty"`
	Image   string            `json:"image,omitempty"`
	Version string            `json:"version,omitempty"`
	Details map[string]string `json:"details,omitempty"`
	// StartedAt and ReadyAt are when the run asked for the broker and when
	// it answered; WarmAt when its warm-up ended (if it had one). All are
	// before the first cell.
	StartedAt time.Time  `json:"started_at,omitzero"`
	ReadyAt   time.Time  `json:"ready_at,omitzero"`
	WarmAt    *time.Time `json:"warm_at,omitempty"`
}

// Skip records a driver that did not run, and why.
type Skip struct {
	Driver  string `json:"driver"`
	Variant string `json:"variant,omitempty"`
	Reason  string `json:"reason"`
}

// Cell is one point of the scenario matrix, one repetition.
type Cell struct {
	// Key identifies the cell's workload across runs and repetitions: it
	// is CellKey(c) (driver, variant, effective options, payload and
	// response size, load, service time and responder concurrency).
	Key          string            `json:"key"`
	Driver       string            `json:"driver"`
	Kind         string            `json:"kind"`
	Variant      string            `json:"variant"`
	Options      map[string]string `json:"options,omitempty"`
	Payload      int               `json:"payload_bytes"`
	ResponseSize int               `json:"response_bytes"`
	// Mode is "closed" (Concurrency callers) or "open" (Rate calls/s with at
	// most Concurrency in flight).
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	// Phases is the open-loop schedule of a cell whose rate changes
	// (DURATION@RATE/s, comma-separated); Rate is then its mean.
	Phases      string `json:"phases,omitempty"`
	ServiceTime string `json:"service_time"`
	Repetition  int    `json:"repetition"`
	Broker      string `json:"broker,omitempty"`

	StartedAt time.Time `json:"started_at"`
	// Seconds is the length of the measured window (warm-up excluded).
	Seconds float64 `json:"seconds"`
	Counts  Counts  `json:"counts"`
	// Throughput is successful calls per second over the measured window.
	Throughput float64 `json:"throughput"`
	// ErrorRate is the share of the calls due in the window that did not
	// succeed: (failed + overflow) / scheduled.
	ErrorRate float64 `json:"error_rate"`
	// Latency holds the ok calls, measured from each call's intended start
	// (coordinated omission corrected) less the generator's own lateness;
	// Uncorrected from its actual send. In closed loop the two are the
	// same. AllCalls holds every call due, failed ones included (timeouts,
	// stuck and overflow calls at their timeout).
	Latency     Latency `json:"latency"`
	Uncorrected Latency `json:"uncorrected"`
	AllCalls    Latency `json:"all_calls"`
	Responder   Latency `json:"responder"`
	// QueueDelay is, for ok calls, the time from the caller's send to the
	// responder's handler start, measured by the responder against the
	// request's send time on one host's wall clock: the network, a
	// broker's queues, a consumer's polling. Absent when the responder is
	// remote (two hosts' clocks) or its replies carried none.
	QueueDelay *Latency `json:"queue_delay,omitempty"`
	// ResponderConcurrency is how many requests the responder handled at
	// once at most.
	ResponderConcurrency int `json:"responder_concurrency,omitempty"`
	// Generator is the open-loop generator's own record (absent in closed
	// loop).
	Generator *Generator `json:"generator,omitempty"`
	// Hop is the delay proxy the cell's calls went through (absent: none).
	Hop *Hop `json:"hop,omitempty"`
	// Chain is the call chain every call of the cell was (absent: plain
	// calls).
	Chain *Chain `json:"chain,omitempty"`
	// Cost is the CPU each process spent per call in the measured window.
	Cost *Cost `json:"cost,omitempty"`
	// Little is the cell's Little's-law check (absent when too few calls
	// completed to check it).
	Little *Little `json:"little,omitempty"`
	// Faults is a fault cell's accounting (absent: not a fault cell).
	Faults     *Faults      `json:"faults,omitempty"`
	Errors     []ErrorCount `json:"errors,omitempty"`
	Warnings   []string     `json:"warnings,omitempty"`
	Histograms Histograms   `json:"histograms"`
	Series     []Point      `json:"series"`
	// Error is set when the cell could not run or was cut short.
	Error      string `json:"error,omitempty"`
	Incomplete bool   `json:"incomplete,omitempty"`
	// Unsettled is set when the cell's unit did not reach a steady state
	// before it (see Run.Warmups).
	Unsettled bool `json:"unsettled,omitempty"`
}

// Generator is what the open-loop generator itself did: how late it
// started calls, beyond anything the system under test caused. Its
// lateness is never part of Latency.
type Generator struct {
	Lateness Latency `json:"lateness"`
	// Limited is set when the generator missed its bounds (BoundP99US at
	// p99, or more than BoundLateShare of calls started over 1 ms late):
	// the cell's load was not the load asked for.
	Limited        bool    `json:"limited"`
	Reason         string  `json:"reason,omitempty"`
	BoundP99US     float64 `json:"bound_p99_us"`
	BoundLateShare float64 `json:"bound_late_share"`
}

// ErrorCount is one distinct failure message and how many calls failed
// with it.
type ErrorCount struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

// Measured reports whether the cell ran and measured calls.
func (c *Cell) Measured() bool { return c.Error == "" && c.Counts.Scheduled > 0 }

// GeneratorLimited reports whether the cell's generator missed its bounds.
func (c *Cell) GeneratorLimited() bool { return c.Generator != nil && c.Generator.Limited }

// MaxErrorRate is the highest error rate at which a cell still counts in
// headlines, rankings and ratios: 0.1%.
const MaxErrorRate = 0.001

// Rankable reports whether the cell may be used in a headline, ranking or
// ratio, and why not: it must have run, measured calls, failed at most
// MaxErrorRate of them, and have had a healthy generator.
func (c *Cell) Rankable() (bool, string) {
	switch {
	case c.Error != "":
		return false, "did not run: " + c.Error
	case c.Counts.Scheduled == 0:
		return false, "no calls measured"
	case c.ErrorRate > MaxErrorRate:
		return false, fmt.Sprintf("%.2f%% of calls failed (more than %.1f%%)", 100*c.ErrorRate, 100*MaxErrorRate)
	case c.GeneratorLimited():
		return false, "generator-limited: " + c.Generator.Reason
	}
	return true, ""
}

// Counts classifies every call. Scheduled = Started + Overflow and
// Started = OK + Timeout + Transport + Responder + Mismatch + Stuck.
type Counts struct {
	Scheduled int64 `json:"scheduled"`
	Started   int64 `json:"started"`
	OK        int64 `json:"ok"`
	Timeout   int64 `json:"timeout"`
	Transport int64 `json:"transport_error"`
	Responder int64 `json:"responder_error"`
	Mismatch  int64 `json:"mismatch"`
	// Stuck counts calls still inside the driver when the cell stopped
	// waiting (its window, one timeout and a grace past): abandoned.
	Stuck int64 `json:"stuck"`
	// Overflow counts open-loop calls that never started because the
	// in-flight cap stayed full past their timeout.
	Overflow int64 `json:"overflow"`
	// Late counts open-loop calls the generator itself started more than
	// 1 ms after it could have (its own lateness, not the system's).
	Late int64 `json:"late"`
	// Queued counts open-loop calls that waited for a free in-flight slot
	// (the system under test held every one): their latency counts from
	// their intended start.
	Queued int64 `json:"queued"`
	// OutOfRange counts values beyond the histograms' range (not in them).
	OutOfRange int64 `json:"out_of_range"`
}

// Failed is the number of started calls that did not succeed.
func (c Counts) Failed() int64 {
	return c.Timeout + c.Transport + c.Responder + c.Mismatch + c.Stuck
}

// ErrorRate is the share of scheduled calls that did not succeed (failed or
// never started).
func (c Counts) ErrorRate() float64 {
	if c.Scheduled == 0 {
		return 0
	}
	return float64(c.Failed()+c.Overflow) / float64(c.Scheduled)
}

// Latency summarises a histogram, in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min_us"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p99_9_us"`
	P9999 float64 `json:"p99_99_us"`
	Max   float64 `json:"max_us"`
}

// Chain is a cell's call chain: Depth hops in all (the first included),
// each the same service through the same driver; Mode "sync" (each hop
// waits for the rest) or "async-tail" (the first hop replies after its own
// work and sends the rest as fire-and-forget calls).
type Chain struct {
	Depth int    `json:"depth"`
	Mode  string `json:"mode"`
}

// Chain modes (scenarios.ChainSync, scenarios.ChainAsyncTail).
const (
	ChainModeSync      = "sync"
	ChainModeAsyncTail = "async-tail"
)

// Hop is the delay proxy (internal/delay) a cell's calls crossed between
// caller and responder, in both directions.
type Hop struct {
	// OneWayDelay and Jitter are what was asked ("250µs", "0s").
	OneWayDelay string `json:"one_way_delay"`
	Jitter      string `json:"jitter"`
	// Achieved is the delay the proxy gave the chunks it forwarded
	// during the cell (warm-up included), in µs; absent at 0 delay, where
	// bytes are copied as they come.
	Achieved *Latency `json:"achieved,omitempty"`
	// Bytes and Chunks forwarded: [0] caller to responder, [1] back.
	Bytes  [2]int64 `json:"bytes"`
	Chunks [2]int64 `json:"chunks"`
}

// Cost is what the cell's calls cost each process involved, over the
// measured window.
type Cost struct {
	WindowSeconds float64 `json:"window_seconds"`
	// Calls is the calls completed in the window (ok and failed).
	Calls int64 `json:"calls"`
	// CPUUsPerCall is CPU time (user + system) per call, in µs, by role:
	// "caller" (rpcbench's own process; "caller+responder" when the
	// responder runs in it), "responder", "broker".
	CPUUsPerCall map[string]float64 `json:"cpu_us_per_call"`
	// SegmentsPerCall are TCP segments that carried data, per call, sent
	// and received on the connections each role's processes hold (the
	// kernel's per-socket tcp_info counters); BytesPerCall the payload
	// bytes. On one host a segment one role sends another receives, so
	// the sum of Sent over the roles is the network transfers per call.
	SegmentsPerCall map[string]Flow `json:"segments_per_call,omitempty"`
	BytesPerCall    map[string]Flow `json:"bytes_per_call,omitempty"`
	// Connections are the TCP connections each role held at the window's
	// end.
	Connections map[string]int `json:"connections,omitempty"`
	// OtherCPUCores is the CPU, in cores, that processes other than the
	// measured roles used on the machine during the window (the machine's
	// user, system and steal time less the roles'): over 0.25 the machine
	// was busy and the cell's figures say less about the transport.
	OtherCPUCores *float64 `json:"other_cpu_cores,omitempty"`
	// StealCores is the CPU, in cores, the hypervisor gave to others
	// while this VM had work (/proc/stat steal): over 0.25, busy too.
	StealCores *float64 `json:"steal_cores,omitempty"`
	// Notes say what is not counted where.
	Notes []string `json:"notes,omitempty"`
}

// BusyCores is how much CPU, in cores, others (processes other than a
// cell's own, or the hypervisor as steal) may take during a cell's window
// before the machine counts as busy for it.
const BusyCores = 0.25

// Busy reports whether others took more than BusyCores of the machine in
// the window.
func (c *Cost) Busy() bool {
	return c != nil && ((c.OtherCPUCores != nil && *c.OtherCPUCores > BusyCores) || (c.StealCores != nil && *c.StealCores > BusyCores))
}

// Flow is a per-call amount in each direction.
type Flow struct {
	Sent     float64 `json:"sent"`
	Received float64 `json:"received"`
}

// Little checks a cell against Little's law: calls in flight on average =
// completion rate x mean latency. In closed loop it must come to the
// concurrency (less means time spent outside the calls, in the harness or
// the scheduler, that the figures do not show); in open loop it is the
// mean number of calls in the system, and near max_in_flight the cap binds
// (the transport did not keep up with the offered rate).
type Little struct {
	// InFlight is completions per second x mean latency (all calls).
	InFlight float64 `json:"in_flight"`
	// Bound is the concurrency (closed loop) or max_in_flight (open loop).
	Bound int `json:"bound"`
	// Holds is false when a closed-loop cell's InFlight is under
	// LittleClosedShare of its concurrency, or an open-loop cell's reaches
	// LittleOpenShare of max_in_flight.
	Holds bool   `json:"holds"`
	Note  string `json:"note,omitempty"`
}

// Little's-law bounds.
const (
	LittleClosedShare = 0.95
	LittleOpenShare   = 0.95
)

// Histograms holds HdrHistograms (values in nanoseconds) in the V2
// compressed, base64 encoding; DecodeHistogram restores them.
type Histograms struct {
	Corrected   string `json:"corrected"`
	Uncorrected string `json:"uncorrected"`
	AllCalls    string `json:"all_calls"`
	Responder   string `json:"responder"`
	Lateness    string `json:"lateness,omitempty"`
}

// Point is one second of a cell's measured window.
type Point struct {
	Second     int     `json:"second"`
	OK         int64   `json:"ok"`
	Errors     int64   `json:"errors"`
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50_us"`
	P99        float64 `json:"p99_us"`
}

// Histogram bounds: values in nanoseconds from 1 ns to 60 s with three
// significant digits (1 µs latencies keep their sub-microsecond digits).
const (
	HistMin    = 1
	HistMax    = int64(60 * time.Second)
	HistDigits = 3
)

// NewHistogram returns an empty latency histogram with the standard bounds.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistMin, HistMax, HistDigits)
}

// EncodeHistogram encodes h for a Cell.
func EncodeHistogram(h *hdrhistogram.Histogram) (string, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// DecodeHistogram decodes a histogram from a Cell. Corrupt or truncated
// input is an error, never a panic (the decoder can panic on some inputs).
func DecodeHistogram(s string) (h *hdrhistogram.Histogram, err error) {
	if s == "" {
		return NewHistogram(), nil
	}
	if err := checkHistogram(s); err != nil {
		return nil, fmt.Errorf("corrupt histogram: %v", err)
	}
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("corrupt histogram: %v", r)
		}
	}()
	h, err = hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("corrupt histogram: %v", err)
	}
	if h == nil {
		return nil, errors.New("corrupt histogram: nothing decoded")
	}
	return h, nil
}

// Summarize computes a Latency from a histogram of nanoseconds.
func Summarize(h *hdrhistogram.Histogram) Latency {
	n := h.TotalCount()
	if n == 0 {
		return Latency{}
	}
	us := func(v int64) float64 { return float64(v) / 1e3 }
	return Latency{
		Count: n,
		Min:   us(h.Min()),
		Mean:  round(h.Mean() / 1e3),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		P9999: us(h.ValueAtQuantile(99.99)),
		Max:   us(h.Max()),
	}
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

// Write writes run as indented JSON to path atomically: a reader sees the
// old file or the whole new one, never half of it.
func Write(path string, run *Run) error {
	data, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	data = append(data, '\n')
	return WriteFileAtomic(path, data)
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it, and
// renames it into place.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Chmod(0o644)
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if werr != nil || serr != nil || cerr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, firstErr(werr, serr, cerr))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// OptionsString is options as "k=v,k=v", keys sorted ("" for none).
func OptionsString(o map[string]string) string {
	parts := make([]string, 0, len(o))
	for _, k := range slices.Sorted(maps.Keys(o)) {
		parts = append(parts, k+"="+o[k])
	}
	return strings.Join(parts, ",")
}

// UnitID names a unit of a run: a driver variant with its options.
type UnitID struct {
	Driver, Variant string
	Options         map[string]string
}

// Optioned returns the "driver/variant"s that appear among units with
// more than one set of options: their labels need the options.
func Optioned(units []UnitID) map[string]bool {
	seen := map[string]map[string]bool{}
	for _, u := range units {
		k := u.Driver + "/" + u.Variant
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		seen[k][OptionsString(u.Options)] = true
	}
	out := map[string]bool{}
	for k, s := range seen {
		if len(s) > 1 {
			out[k] = true
		}
	}
	return out
}

// Label is "driver/variant", with the options in brackets when optioned
// (Optioned) says the run has this driver and variant with other options.
func (u UnitID) Label(optioned map[string]bool) string {
	return u.Driver + "/" + u.VariantLabel(optioned)
}

// VariantLabel is Label without the driver.
func (u UnitID) VariantLabel(optioned map[string]bool) string {
	if o := OptionsString(u.Options); optioned[u.Driver+"/"+u.Variant] && o != "" {
		return u.Variant + " [" + o + "]"
	}
	return u.Variant
}
