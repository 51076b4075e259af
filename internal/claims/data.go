package claims

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// data is the runs indexed for the judges: cells grouped by key across
// repetitions and runs (a key is the same workload wherever it ran).
type data struct {
	runs   []*results.Run
	groups []*group
	// chains are the call-chain cells' groups (C10's evidence), kept
	// apart: a chain's latency is no single call's, for any other claim
	chains  []*group
	byKey   map[string]*group
	skipped map[string]string // driver or driver/variant -> why it did not run
	machine string
	// notes apply to every claim (runs whose steadiness was not checked)
	notes []string
	// hopNotes are the hop delay slopes of every configuration measured
	// at several delays, and anyHop whether any cell ran through the
	// delay proxy: from all the cells, whatever this index keeps
	hopNotes []string
	anyHop   bool
	// delayed: the index holds the cells of one injected hop delay (the
	// runs' sweeps, measured without the proxy, are not among them)
	delayed bool
}

// group is one cell key's repetitions, from every run that has it.
type group struct {
	key     string
	point   string // the key without driver, variant and options: the load point
	driver  string
	kind    string
	variant string
	cells   []*results.Cell
	runs    []string
}

type sat struct {
	run string
	s   *results.Saturation
}

// index groups the runs' cells that keep keeps.
func index(runs []*results.Run, keep func(c *results.Cell) bool) *data {
	d := &data{runs: runs, byKey: map[string]*group{}, skipped: map[string]string{}}
	var machines []string
	for _, r := range runs {
		if r == nil {
			continue
		}
		if m := machineOf(r.Environment); !slices.Contains(machines, m) {
			machines = append(machines, m)
		}
		if (r.Scenario.Settle == "0s" || r.Scenario.Settle == "0") && len(r.Cells) > 0 {
			d.notes = append(d.notes, "run "+r.ID+": settle 0s: whether each driver variant had reached a steady state was not checked")
		}
		for _, s := range r.Skipped {
			k := s.Driver
			if s.Variant != "" {
				k += "/" + s.Variant
			}
			d.skipped[k] = s.Reason
		}
		for i := range r.Cells {
			c := &r.Cells[i]
			if !keep(c) {
				continue
			}
			key := c.Key
			if key == "" {
				key = results.CellKey(c)
			}
			g := d.byKey[key]
			if g == nil {
				g = &group{key: key, point: pointOf(key), driver: c.Driver, kind: c.Kind, variant: c.Variant}
				d.byKey[key] = g
				if c.Chain != nil {
					d.chains = append(d.chains, g)
				} else {
					d.groups = append(d.groups, g)
				}
			}
			g.cells = append(g.cells, c)
			if !slices.Contains(g.runs, r.ID) {
				g.runs = append(g.runs, r.ID)
			}
		}
	}
	d.machine = strings.Join(machines, "\n")
	if d.machine == "" {
		d.machine = "unknown (no runs)"
	}
	return d
}

func machineOf(e results.Environment) string {
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s/%s, kernel %s, %s, rpcbench %s (%s); caller, responder and brokers on one host over loopback",
		orUnknown(e.CPUModel), e.Cores, e.GOMAXPROCS, e.OS, e.Arch, orUnknown(e.Kernel), e.GoVersion, e.RpcbenchVersion, e.Commit)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// pointOf is a cell key's load point: the key from " payload=" on.
func pointOf(key string) string {
	if i := strings.Index(key, " payload="); i >= 0 {
		return key[i+1:]
	}
	return key
}

// saturations are the runs' saturation records of driver (and variant,
// when not empty).
func (d *data) saturations(driver, variant string) []sat {
	var out []sat
	if d.delayed {
		return nil
	}
	for _, r := range d.runs {
		for i := range r.Saturation {
			s := &r.Saturation[i]
			if s.Driver == driver && (variant == "" || s.Variant == variant) {
				out = append(out, sat{r.ID, s})
			}
		}
	}
	return out
}

// find returns the groups matching keep, in data order.
func (d *data) find(keep func(g *group) bool) []*group {
	var out []*group
	for _, g := range d.groups {
		if keep(g) {
			out = append(out, g)
		}
	}
	return out
}

// missing says why driver/variant (variant "" for any) is not in the
// data: the runs' skip reason, or "not in the data".
func (d *data) missing(driver, variant string) string {
	name := driver
	if variant != "" {
		name += "/" + variant
	}
	if why, ok := d.skipped[name]; ok {
		return name + " (" + why + ")"
	}
	if why, ok := d.skipped[driver]; ok {
		return name + " (" + why + ")"
	}
	return name + " (not measured in these runs)"
}

// has reports whether any cell of driver/variant (variant "" for any) is
// in the data.
func (d *data) has(driver, variant string) bool {
	for _, g := range d.groups {
		if g.driver == driver && (variant == "" || g.variant == variant) {
			return true
		}
	}
	return false
}

// runIDs are the runs the comparisons' cells came from.
func (d *data) runIDs(cs []Comparison) []string {
	set := map[string]bool{}
	for _, c := range cs {
		for _, r := range c.Cells {
			for _, id := range r.Runs {
				set[id] = true
			}
		}
	}
	out := slices.Sorted(maps.Keys(set))
	if out == nil {
		out = []string{}
	}
	return out
}

// first cell of the group (for its load fields).
func (g *group) first() *results.Cell { return g.cells[0] }

func (g *group) name() string { return g.driver + "/" + g.variant }

func (g *group) closed() bool { return g.first().Mode == "closed" }

// label is the group's driver variant and load, for people.
func (g *group) label() string {
	c := g.first()
	l := fmt.Sprintf("c=%d", c.Concurrency)
	if c.Mode == "open" {
		l = fmt.Sprintf("%g/s", c.Rate)
	}
	if c.ServiceTime != "" && c.ServiceTime != "0" {
		l += " st=" + c.ServiceTime
	}
	if c.Payload != 64 {
		l += fmt.Sprintf(" %dB", c.Payload)
	}
	if c.Hop != nil {
		l += " hop=" + c.Hop.OneWayDelay
	}
	return g.name() + " " + l
}

// excluded says why a cell cannot stand in a latency or throughput
// comparison ("" when it can): it must have run to the end, failed at
// most results.MaxErrorRate of its calls, had a healthy generator, been
// measured after its unit settled, and on a machine others left alone
// (results.Cost.Busy).
func excluded(c *results.Cell) string {
	if ok, why := c.Rankable(); !ok {
		return why
	}
	switch {
	case c.Incomplete:
		return "cut short"
	case c.Unsettled:
		return "unsettled: its driver variant had not reached a steady state"
	case c.Cost.Busy():
		return fmt.Sprintf("busy machine: other processes took %.2f cores and the hypervisor %.2f during its window", *c.Cost.OtherCPUCores, *c.Cost.StealCores)
	}
	return ""
}

// metricFn reads one number from a cell.
type metricFn struct {
	name string
	get  func(c *results.Cell) float64
}

var (
	p50        = metricFn{"p50_us", func(c *results.Cell) float64 { return c.Latency.P50 }}
	p99        = metricFn{"p99_us", func(c *results.Cell) float64 { return c.Latency.P99 }}
	throughput = metricFn{"throughput", func(c *results.Cell) float64 { return c.Throughput }}
)

// ref is the group's cells as a comparison uses them: the metric per
// repetition, and why the group cannot be used ("" when it can).
func (g *group) ref(m metricFn) (CellRef, []float64, string) {
	r := CellRef{Key: g.key, Runs: slices.Clone(g.runs), Repetitions: len(g.cells), Values: []float64{}}
	var bad []string
	var vals []float64
	for _, c := range g.cells {
		if why := excluded(c); why != "" {
			bad = append(bad, fmt.Sprintf("repetition %d: %s", c.Repetition, why))
			continue
		}
		vals = append(vals, m.get(c))
	}
	r.Values = append(r.Values, vals...)
	r.Mean, r.SD = meanSD(vals)
	why := ""
	if len(bad) > 0 {
		why = g.label() + ": " + strings.Join(bad, ", ")
		r.Excluded = strings.Join(bad, ", ")
	}
	return r, vals, why
}
