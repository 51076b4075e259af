// Package scenarios parses scenario files: a matrix of drivers × variants ×
// payload sizes × load (concurrency or rate) × service time, with duration,
// warm-up, repetitions and timeout. Decoding is strict: unknown keys, wrong
// types, missing required fields and out-of-range values are errors of the
// form "file:line: field: what is wrong".
package scenarios

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

//go:embed *.yaml
var embedded embed.FS

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
}

// DriverSpec selects a driver, some of its variants (none: all) and options.
type DriverSpec struct {
	Name     string            `json:"name"`
	Variants []string          `json:"variants,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	// Line is where the entry stands in its file, for error messages.
	Line int `json:"-"`
}

// OpenLoop reports whether the scenario paces calls at fixed rates.
func (s *Scenario) OpenLoop() bool { return len(s.Rates) > 0 }

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

// ParseServiceTime parses "0", "250us" (fixed) or "exp:250us".
func ParseServiceTime(s string) (ServiceTime, error) {
	raw := strings.TrimSpace(s)
	var out ServiceTime
	if rest, ok := strings.CutPrefix(raw, "exp:"); ok {
		out.Exponential = true
		raw = rest
	} else if rest, ok := strings.CutPrefix(raw, "fixed:"); ok {
		raw = rest
	}
	if raw == "0" {
		return ServiceTime{}, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < 0 || d > time.Minute {
		return ServiceTime{}, fmt.Errorf("%q is not a service time: want 0, a duration such as 250us (fixed) or exp:250us (exponential with that mean), at most 1m", s)
	}
	out.Mean = d
	return out, nil
}

// ParseSize parses a byte size: 64, "1KiB", "4kb", "1MiB".
func ParseSize(s string) (int, error) {
	raw := strings.TrimSpace(s)
	mult := 1
	lower := strings.ToLower(raw)
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"kb", 1000}, {"mb", 1000 * 1000}, {"k", 1 << 10}, {"m", 1 << 20}, {"b", 1}} {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			raw = strings.TrimSpace(raw[:len(raw)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 || n > MaxPayload/mult {
		return 0, fmt.Errorf("%q is not a payload size: want bytes from 0 to 64MiB, e.g. 64, 1KiB, 1MiB", s)
	}
	return n * mult, nil
}

// Limits on scenario values.
const (
	MaxPayload     = 64 << 20
	MaxConcurrency = 4096
	MaxRate        = 10_000_000
	MaxInFlight    = 100_000
	MaxRepeat      = 100
)

// DefaultResponderConcurrency is responder_concurrency when a scenario
// does not set it (drivers.DefaultResponderConcurrency, the same for every
// driver).
const DefaultResponderConcurrency = 64

// MaxResponderConcurrency bounds responder_concurrency.
const MaxResponderConcurrency = 4096

// DefaultSettle is settle when a scenario does not set it: the cap on each
// unit's settling before its first cell.
const DefaultSettle = 15 * time.Second

// DefaultBrokerWarmup is broker_warmup when a scenario does not set it.
const DefaultBrokerWarmup = 10 * time.Second

// Error is a scenario error with its place.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Field != "":
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Field != "":
		return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Default is the name of the scenario embedded in the binary.
const Default = "default"

// Embedded lists the scenarios built into the binary.
func Embedded() []string {
	ents, _ := embedded.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// Load reads a scenario from a file path, or an embedded one by name.
func Load(nameOrPath string) (*Scenario, error) {
	if data, err := embedded.ReadFile(nameOrPath + ".yaml"); err == nil && !strings.ContainsAny(nameOrPath, `/\`) {
		return Parse("embedded:"+nameOrPath, data)
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: nameOrPath, Msg: fmt.Sprintf("no such file and no embedded scenario of that name (embedded: %s)", strings.Join(Embedded(), ", "))}
		}
		return nil, &Error{File: nameOrPath, Msg: err.Error()}
	}
	return Parse(nameOrPath, data)
}

// Parse decodes and validates a scenario; file names it in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{File: file, Line: yamlErrLine(err), Msg: "not valid YAML: " + cleanYAMLErr(err)}
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &Error{File: file, Line: yamlErrLine(err), Msg: "not valid YAML: " + cleanYAMLErr(err)}
		}
		if len(next.Content) == 0 || next.Content[0].Tag == "!!null" && next.Content[0].Value == "" {
			continue // a bare "---" holds nothing
		}
		return nil, &Error{File: file, Line: next.Content[0].Line, Msg: "a second YAML document (after ---): a scenario file holds one scenario; remove the second or put it in a file of its own"}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty scenario: want a mapping with at least name, drivers, payloads and concurrency or rate"}
	}
	root := doc.Content[0]
	p := parser{file: file}
	s := p.scenario(root)
	if p.err != nil {
		return nil, p.err
	}
	s.Source = file
	return s, nil
}

type parser struct {
	file string
	err  *Error
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	if p.err == nil {
		line := 0
		if n != nil {
			line = n.Line
		}
		p.err = &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
}

var topKeys = []string{"name", "description", "drivers", "payloads", "response_size", "concurrency", "rate", "max_in_flight", "service_time", "duration", "calls", "warmup", "broker_warmup", "timeout", "repeat", "responder_concurrency", "settle"}

func (p *parser) scenario(root *yaml.Node) *Scenario {
	s := &Scenario{MaxInFlight: 256, Duration: Duration(5 * time.Second), Warmup: Duration(time.Second), BrokerWarmup: Duration(DefaultBrokerWarmup), Timeout: Duration(5 * time.Second), Repeat: 1, ServiceTimes: []ServiceTime{{}}, ResponderConcurrency: DefaultResponderConcurrency, Settle: Duration(DefaultSettle)}
	if root.Kind != yaml.MappingNode {
		p.fail(root, "", "a scenario is a mapping of keys (name, drivers, payloads, ...), not a %s", kindName(root))
		return s
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if _, dup := seen[k.Value]; dup {
			p.fail(k, k.Value, "given twice")
			return s
		}
		seen[k.Value] = v
		switch k.Value {
		case "name":
			s.Name = p.str(v, "name")
			if s.Name != "" && !validName(s.Name) {
				p.fail(v, "name", "%q: use letters, digits, '-', '_' or '.' (it names the results directory)", s.Name)
			}
		case "description":
			s.Description = p.str(v, "description")
		case "drivers":
			s.Drivers = p.drivers(v)
		case "payloads":
			s.Payloads = p.sizes(v, "payloads")
			noRepeats(p, v, "payloads", s.Payloads)
		case "response_size":
			s.ResponseSize = p.size(v, "response_size")
		case "concurrency":
			s.Concurrency = p.ints(v, "concurrency", 1, MaxConcurrency)
			noRepeats(p, v, "concurrency", s.Concurrency)
		case "rate":
			s.Rates = p.floats(v, "rate", 0.001, MaxRate)
			noRepeats(p, v, "rate", s.Rates)
		case "max_in_flight":
			s.MaxInFlight = p.int(v, "max_in_flight", 1, MaxInFlight)
		case "service_time":
			s.ServiceTimes = p.serviceTimes(v)
			noRepeats(p, v, "service_time", s.ServiceTimes)
		case "duration":
			s.Duration = p.duration(v, "duration", time.Millisecond, 24*time.Hour)
		case "calls":
			s.Calls = int64(p.int(v, "calls", 0, math.MaxInt32))
		case "warmup":
			s.Warmup = p.duration(v, "warmup", 0, time.Hour)
		case "broker_warmup":
			s.BrokerWarmup = p.duration(v, "broker_warmup", 0, time.Hour)
		case "timeout":
			s.Timeout = p.duration(v, "timeout", time.Millisecond, 10*time.Minute)
		case "repeat":
			s.Repeat = p.int(v, "repeat", 1, MaxRepeat)
		case "settle":
			s.Settle = p.duration(v, "settle", 0, time.Hour)
		case "responder_concurrency":
			s.ResponderConcurrency = p.int(v, "responder_concurrency", 1, MaxResponderConcurrency)
		default:
			p.fail(k, k.Value, "unknown key (known keys: %s)", strings.Join(topKeys, ", "))
		}
		if p.err != nil {
			return s
		}
	}
	for _, req := range []string{"name", "drivers", "payloads"} {
		if seen[req] == nil {
			p.fail(root, req, "missing (required)")
			return s
		}
	}
	if seen["concurrency"] == nil && seen["rate"] == nil {
		p.fail(root, "concurrency", "missing: give concurrency (closed loop) or rate (open loop)")
	}
	if seen["concurrency"] != nil && seen["rate"] != nil {
		p.fail(seen["rate"], "rate", "give either concurrency (closed loop) or rate (open loop), not both")
	}
	if seen["max_in_flight"] != nil && seen["rate"] == nil {
		p.fail(seen["max_in_flight"], "max_in_flight", "only applies to open loop (rate)")
	}
	if msg := s.serviceBelowTimeout(); msg != "" && p.err == nil {
		n := seen["service_time"]
		if n == nil {
			n = seen["timeout"]
		}
		p.fail(n, "service_time", "%s", msg)
	}
	return s
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

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "scalar " + strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

func (p *parser) scalar(n *yaml.Node, field, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, field, "want %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) str(n *yaml.Node, field string) string {
	v, ok := p.scalar(n, field, "a string")
	if ok && v == "" {
		p.fail(n, field, "must not be empty")
	}
	return v
}

func (p *parser) int(n *yaml.Node, field string, min, max int) int {
	v, ok := p.scalar(n, field, "a whole number")
	if !ok {
		return 0
	}
	i, err := strconv.Atoi(v)
	if err != nil || n.Tag != "!!int" {
		p.fail(n, field, "want a whole number from %d to %d, got %q", min, max, v)
		return 0
	}
	if i < min || i > max {
		p.fail(n, field, "%d is out of range: want %d to %d", i, min, max)
	}
	return i
}

func (p *parser) float(n *yaml.Node, field string, min, max float64) float64 {
	v, ok := p.scalar(n, field, "a number")
	if !ok {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") || math.IsNaN(f) {
		p.fail(n, field, "want a number, got %q", v)
		return 0
	}
	if f < min || f > max {
		p.fail(n, field, "%v is out of range: want %v to %v", f, min, max)
	}
	return f
}

func (p *parser) list(n *yaml.Node, field string) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []*yaml.Node{n}
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "want a list, got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.fail(n, field, "must not be empty")
	}
	return n.Content
}

func (p *parser) ints(n *yaml.Node, field string, min, max int) []int {
	var out []int
	for i, e := range p.list(n, field) {
		out = append(out, p.int(e, fmt.Sprintf("%s[%d]", field, i), min, max))
	}
	return out
}

func (p *parser) floats(n *yaml.Node, field string, min, max float64) []float64 {
	var out []float64
	for i, e := range p.list(n, field) {
		out = append(out, p.float(e, fmt.Sprintf("%s[%d]", field, i), min, max))
	}
	return out
}

func (p *parser) size(n *yaml.Node, field string) int {
	v, ok := p.scalar(n, field, "a size in bytes")
	if !ok {
		return 0
	}
	sz, err := ParseSize(v)
	if err != nil {
		p.fail(n, field, "%v", err)
	}
	return sz
}

func (p *parser) sizes(n *yaml.Node, field string) []int {
	var out []int
	for i, e := range p.list(n, field) {
		out = append(out, p.size(e, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

func (p *parser) duration(n *yaml.Node, field string, min, max time.Duration) Duration {
	v, ok := p.scalar(n, field, "a duration such as 5s")
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(n, field, "%q is not a duration: want e.g. 500ms, 5s, 1m", v)
		return 0
	}
	if d < min || d > max {
		p.fail(n, field, "%v is out of range: want %v to %v", d, min, max)
	}
	return Duration(d)
}

func (p *parser) serviceTimes(n *yaml.Node) []ServiceTime {
	var out []ServiceTime
	for i, e := range p.list(n, "service_time") {
		field := fmt.Sprintf("service_time[%d]", i)
		v, ok := p.scalar(e, field, "a service time such as 0, 100us or exp:100us")
		if !ok {
			return nil
		}
		st, err := ParseServiceTime(v)
		if err != nil {
			p.fail(e, field, "%v", err)
		}
		out = append(out, st)
	}
	return out
}

func (p *parser) drivers(n *yaml.Node) []DriverSpec {
	var out []DriverSpec
	for i, e := range p.list(n, "drivers") {
		field := fmt.Sprintf("drivers[%d]", i)
		d := DriverSpec{Line: e.Line}
		switch e.Kind {
		case yaml.ScalarNode:
			d.Name = p.str(e, field)
		case yaml.MappingNode:
			keys := map[string]bool{}
			for j := 0; j+1 < len(e.Content); j += 2 {
				k, v := e.Content[j], e.Content[j+1]
				if keys[k.Value] {
					p.fail(k, field+"."+k.Value, "given twice in this driver entry: keep one")
					break
				}
				keys[k.Value] = true
				switch k.Value {
				case "name":
					d.Name = p.str(v, field+".name")
				case "variants":
					for vi, vn := range p.list(v, field+".variants") {
						vf := fmt.Sprintf("%s.variants[%d]", field, vi)
						name := p.str(vn, vf)
						if slices.Contains(d.Variants, name) {
							p.fail(vn, vf, "%q given twice: list each variant once", name)
						}
						d.Variants = append(d.Variants, name)
					}
				case "options":
					d.Options = p.options(v, field+".options")
				default:
					p.fail(k, field+"."+k.Value, "unknown key (known keys: name, variants, options)")
				}
			}
			if d.Name == "" {
				p.fail(e, field+".name", "missing (required)")
			}
		default:
			p.fail(e, field, "want a driver name or a mapping with name, variants, options; got %s", kindName(e))
		}
		for j, prev := range out {
			if prev.Name == d.Name && d.Name != "" && maps.Equal(prev.Options, d.Options) && variantsOverlap(prev.Variants, d.Variants) {
				p.fail(e, field, "driver %s is already listed at line %d (drivers[%d]) with the same options: its cells would run twice; list each driver once (merge the variants), or give different options", d.Name, prev.Line, j)
			}
		}
		out = append(out, d)
	}
	return out
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

func (p *parser) options(n *yaml.Node, field string) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.fail(n, field, "want a mapping of option: value, got %s", kindName(n))
		return nil
	}
	out := map[string]string{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		val, ok := p.scalar(v, field+"."+k.Value, "a scalar value")
		if !ok {
			return out
		}
		if _, dup := out[k.Value]; dup {
			p.fail(k, field+"."+k.Value, "given twice: keep one")
			return out
		}
		out[k.Value] = val
	}
	return out
}

func yamlErrLine(err error) int {
	var n int
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i:], "line %d", &n)
	}
	return n
}

func cleanYAMLErr(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "line ") {
		msg = msg[i+2:]
	}
	return msg
}

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
						spec.Options = d.Options
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
		s.Concurrency, s.Rates = cs, nil
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
		s.Rates, s.Concurrency = rs, nil
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
	if msg := s.serviceBelowTimeout(); msg != "" {
		return bad("service-time", "%s (--timeout sets the timeout)", msg)
	}
	return nil
}

// Name of the results directory for a run of s started at t.
func (s *Scenario) RunID(t time.Time) string {
	return t.UTC().Format("20060102T150405Z") + "-" + filepath.Base(s.Name)
}
