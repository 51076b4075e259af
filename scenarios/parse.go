package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

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

var topKeys = []string{"name", "description", "drivers", "payloads", "response_size", "concurrency", "rate", "max_in_flight", "service_time", "duration", "calls", "warmup", "broker_warmup", "timeout", "repeat", "responder_concurrency", "settle", "network", "faults", "phases", "chain"}

func (p *parser) scenario(root *yaml.Node) *Scenario {
	s := defaultScenario()
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
		case "network":
			s.Network = p.network(v)
		case "faults":
			s.Faults = p.faults(v)
		case "phases":
			s.Phases = p.phases(v)
		case "chain":
			s.Chain = p.chain(v)
		default:
			p.fail(k, k.Value, "unknown key (known keys: %s)", strings.Join(topKeys, ", "))
		}
		if p.err != nil {
			return s
		}
	}
	p.check(root, seen, s)
	return s
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

// MaxOneWayDelay bounds network.one_way_delay and jitter.
const MaxOneWayDelay = time.Second

func (p *parser) network(n *yaml.Node) *Network {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "network", "want a mapping with one_way_delay (a list of durations) and jitter, not a %s", kindName(n))
		return nil
	}
	nw := &Network{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "network." + k.Value
		if seen[k.Value] {
			p.fail(k, field, "given twice")
			return nil
		}
		seen[k.Value] = true
		switch k.Value {
		case "one_way_delay":
			for j, e := range p.list(v, field) {
				nw.OneWayDelay = append(nw.OneWayDelay, p.duration(e, fmt.Sprintf("%s[%d]", field, j), 0, MaxOneWayDelay))
			}
			noRepeats(p, v, field, nw.OneWayDelay)
		case "jitter":
			nw.Jitter = p.duration(v, field, 0, MaxOneWayDelay)
		default:
			p.fail(k, field, "unknown key (known keys: one_way_delay, jitter)")
		}
		if p.err != nil {
			return nil
		}
	}
	if len(nw.OneWayDelay) == 0 {
		p.fail(n, "network.one_way_delay", "missing: give the one-way delays to run, e.g. [0, 250us, 1ms] (0 measures the proxy itself)")
		return nil
	}
	return nw
}

func (p *parser) chain(n *yaml.Node) *Chain {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "chain", "want a mapping with depth (a list of hop counts) and mode (sync, async-tail or both), not a %s", kindName(n))
		return nil
	}
	c := &Chain{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "chain." + k.Value
		if seen[k.Value] {
			p.fail(k, field, "given twice")
			return nil
		}
		seen[k.Value] = true
		switch k.Value {
		case "depth":
			c.Depths = p.ints(v, field, 1, MaxChainDepth)
			noRepeats(p, v, field, c.Depths)
		case "mode":
			for j, e := range p.list(v, field) {
				f := fmt.Sprintf("%s[%d]", field, j)
				m, ok := p.scalar(e, f, "sync or async-tail")
				if ok && m != ChainSync && m != ChainAsyncTail {
					p.fail(e, f, "%q: want sync (each hop waits for the rest) or async-tail (the first hop replies and sends the rest as fire-and-forget calls)", m)
				}
				c.Modes = append(c.Modes, m)
			}
			noRepeats(p, v, field, c.Modes)
		default:
			p.fail(k, field, "unknown key (known keys: depth, mode)")
		}
		if p.err != nil {
			return nil
		}
	}
	if len(c.Depths) == 0 {
		p.fail(n, "chain.depth", "missing: give the chain depths to run (hops in all, the first included), e.g. [1, 2, 4, 6]")
		return nil
	}
	if len(c.Modes) == 0 {
		c.Modes = []string{ChainSync}
	}
	return c
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
				case "duration":
					d.Duration = p.duration(v, field+".duration", time.Millisecond, 24*time.Hour)
				default:
					p.fail(k, field+"."+k.Value, "unknown key (known keys: name, variants, options, duration)")
				}
			}
			if d.Name == "" {
				p.fail(e, field+".name", "missing (required)")
			}
		default:
			p.fail(e, field, "want a driver name or a mapping with name, variants, options, duration; got %s", kindName(e))
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
