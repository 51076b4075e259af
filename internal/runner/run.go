package runner

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/wire"
	"github.com/rpcbench/rpcbench/results"
	"github.com/rpcbench/rpcbench/scenarios"
)

// Unit is one driver variant with its options: what a responder serves.
type Unit struct {
	Driver drivers.Driver
	Config drivers.Config
}

// Resolve checks every driver, variant and option a scenario names against
// the registry, and expands drivers without variants to all of theirs.
// Errors name the scenario file and line.
func Resolve(reg *drivers.Registry, sc *scenarios.Scenario) ([]Unit, error) {
	var units []Unit
	for i, ds := range sc.Drivers {
		where := func(field string) *scenarios.Error {
			return &scenarios.Error{File: sc.Source, Line: ds.Line, Field: fmt.Sprintf("drivers[%d]%s", i, field)}
		}
		d, ok := reg.Get(ds.Name)
		if !ok {
			e := where(".name")
			e.Msg = fmt.Sprintf("unknown driver %q (want one of %s)", ds.Name, strings.Join(reg.Names(), ", "))
			return nil, e
		}
		spec := d.Spec()
		variants := ds.Variants
		if len(variants) == 0 {
			for _, v := range spec.Variants {
				variants = append(variants, v.Name)
			}
		}
		for j, v := range variants {
			cfg := drivers.Config{Variant: v, Options: ds.Options}
			if err := d.Validate(cfg); err != nil {
				field := ".options"
				if !hasVariant(spec, v) {
					field = fmt.Sprintf(".variants[%d]", j)
				}
				e := where(field)
				e.Msg = err.Error()
				return nil, e
			}
			units = append(units, Unit{Driver: d, Config: cfg})
		}
	}
	return units, nil
}

func hasVariant(s drivers.Spec, v string) bool {
	for _, x := range s.Variants {
		if x.Name == v {
			return true
		}
	}
	return false
}

// Observer follows a run: the command line shows progress with it.
type Observer interface {
	// CellStart is called before a cell runs; index counts from 1.
	CellStart(index, total int, c *results.Cell, load Load)
	// Live is called about once a second while a cell runs.
	Live(Live)
	// CellDone is called with the finished cell.
	CellDone(c *results.Cell)
	// Note reports something worth a line (a skipped driver, a broker start).
	Note(msg string)
}

// Plan is everything a run needs.
type Plan struct {
	Scenario *scenarios.Scenario
	Units    []Unit
	Brokers  *broker.Manager
	// Target is the address of a responder started elsewhere (rpcbench
	// serve); no responder is started here.
	Target string
	// Dir is the run's directory; brokers keep their files below it.
	Dir string
	// RequireBrokers turns a broker that cannot be had into an error.
	RequireBrokers bool
	Observer       Observer
}

// ErrCellsFailed is returned when some cells could not run; the run's
// results still hold every cell, with the reason in Cell.Error.
var ErrCellsFailed = errors.New("some cells could not run")

// Run runs every cell of the plan into run. On interruption (ctx ended) it
// returns ctx's error; run then holds what was measured, marked incomplete.
func Run(ctx context.Context, p Plan, run *results.Run) error {
	sc := p.Scenario
	obs := p.Observer
	total := len(p.Units) * len(sc.ServiceTimes) * len(sc.Payloads) * loads(sc) * sc.Repeat
	index := 0
	failed := false
	for _, u := range p.Units {
		spec := u.Driver.Spec()
		n := len(sc.ServiceTimes) * len(sc.Payloads) * loads(sc) * sc.Repeat
		cfg := u.Config
		brokerName := ""
		if spec.Kind == drivers.Broker && p.Target == "" {
			b, err := getBroker(ctx, p, u)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				reason, unavailable := broker.IsUnavailable(err)
				if !unavailable {
					// the broker should have started and did not: a failure
					reason = "broker failed to start: " + err.Error()
					failed = true
				}
				if p.RequireBrokers {
					return fmt.Errorf("%s/%s: %s (--require-brokers)", spec.Name, cfg.Variant, reason)
				}
				run.Skipped = append(run.Skipped, results.Skip{Driver: spec.Name, Variant: cfg.Variant, Reason: reason})
				obs.Note(fmt.Sprintf("skipped %s/%s: %s", spec.Name, cfg.Variant, reason))
				index += n
				continue
			}
			cfg.Addr = b.URL
			brokerName = b.Kind + " (" + b.Source + ")"
			addBroker(run, b)
		}
		srvAddr := p.Target
		var srv drivers.Server
		if p.Target == "" {
			var err error
			srv, err = u.Driver.Serve(ctx, cfg, wire.Respond)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				failed = true
				for range n {
					index++
					c := cellFor(sc, u, brokerName, index)
					c.Error = fmt.Sprintf("start responder: %v", err)
					run.Cells = append(run.Cells, *c)
				}
				obs.Note(fmt.Sprintf("%s/%s: start responder: %v", spec.Name, cfg.Variant, err))
				continue
			}
			srvAddr = srv.Addr()
		}
		err := runUnit(ctx, p, u, cfg, srvAddr, brokerName, run, &index, total, &failed)
		if srv != nil {
			srv.Close()
		}
		if err != nil {
			return err
		}
	}
	if failed {
		return ErrCellsFailed
	}
	return nil
}

func getBroker(ctx context.Context, p Plan, u Unit) (broker.Broker, error) {
	spec := u.Driver.Spec()
	if p.Brokers == nil {
		return broker.Broker{}, &broker.Unavailable{Reason: "no broker manager"}
	}
	var params map[string]string
	if bp, ok := u.Driver.(drivers.BrokerParams); ok {
		params = bp.BrokerParams(u.Config)
	}
	key := spec.Broker
	for _, k := range slices.Sorted(maps.Keys(params)) {
		key += "/" + k + "=" + params[k]
	}
	p.Observer.Note(fmt.Sprintf("getting a %s broker for %s/%s", spec.Broker, spec.Name, u.Config.Variant))
	return p.Brokers.Get(ctx, spec.Broker, key, broker.StartOptions{Dir: p.Dir, Params: params})
}

func addBroker(run *results.Run, b broker.Broker) {
	rb := results.Broker{Kind: b.Kind, Source: b.Source, URL: b.URL, Image: b.Image, Version: b.Version, Details: b.Details}
	for _, have := range run.Environment.Brokers {
		if have.Kind == rb.Kind && have.URL == rb.URL {
			return
		}
	}
	run.Environment.Brokers = append(run.Environment.Brokers, rb)
}

func loads(sc *scenarios.Scenario) int {
	if sc.OpenLoop() {
		return len(sc.Rates)
	}
	return len(sc.Concurrency)
}

// runUnit runs every cell of one driver variant against the responder at addr.
func runUnit(ctx context.Context, p Plan, u Unit, cfg drivers.Config, addr, brokerName string, run *results.Run, index *int, total int, failed *bool) error {
	sc := p.Scenario
	for _, st := range sc.ServiceTimes {
		for _, payload := range sc.Payloads {
			for li := 0; li < loads(sc); li++ {
				for rep := 1; rep <= sc.Repeat; rep++ {
					*index++
					c := cellFor(sc, u, brokerName, *index)
					c.Payload, c.ServiceTime, c.Repetition = payload, st.String(), rep
					c.ResponseSize = payload
					if sc.ResponseSize > 0 {
						c.ResponseSize = sc.ResponseSize
					}
					load := Load{
						Payload:      payload,
						ResponseSize: sc.ResponseSize,
						ServiceTime:  st,
						Duration:     time.Duration(sc.Duration),
						Calls:        sc.Calls,
						Warmup:       time.Duration(sc.Warmup),
						Timeout:      time.Duration(sc.Timeout),
					}
					if sc.OpenLoop() {
						c.Mode, c.Rate, c.Concurrency = "open", sc.Rates[li], sc.MaxInFlight
						load.Rate, load.Concurrency = sc.Rates[li], sc.MaxInFlight
					} else {
						c.Mode, c.Concurrency = "closed", sc.Concurrency[li]
						load.Concurrency = sc.Concurrency[li]
					}
					c.Key = cellKey(c)
					load.Seed = seed(c.Key, rep)
					p.Observer.CellStart(*index, total, c, load)
					err := runCell(ctx, u, cfg, addr, load, c, p.Observer)
					if err != nil {
						c.Error = err.Error()
						*failed = true
					}
					run.Cells = append(run.Cells, *c)
					p.Observer.CellDone(c)
					if ctx.Err() != nil {
						return ctx.Err()
					}
				}
			}
		}
	}
	return nil
}

func runCell(ctx context.Context, u Unit, cfg drivers.Config, addr string, load Load, c *results.Cell, obs Observer) error {
	c.StartedAt = time.Now().UTC()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	client, err := u.Driver.Dial(dctx, cfg, addr)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			c.Incomplete = true
			return nil
		}
		return fmt.Errorf("connect caller: %w", err)
	}
	defer client.Close()
	m, err := RunCell(ctx, client, load, obs.Live)
	if err != nil {
		return err
	}
	c.Incomplete = m.Interrupted
	c.Seconds = m.Seconds
	c.Counts = m.Counts
	if m.Seconds > 0 {
		c.Throughput = float64(m.Counts.OK) / m.Seconds
	}
	c.Latency = results.Summarize(m.Corrected)
	c.Uncorrected = results.Summarize(m.Uncorrected)
	c.Responder = results.Summarize(m.Responder)
	c.Series = m.Series
	if c.Histograms.Corrected, err = results.EncodeHistogram(m.Corrected); err != nil {
		return err
	}
	if c.Histograms.Uncorrected, err = results.EncodeHistogram(m.Uncorrected); err != nil {
		return err
	}
	if c.Histograms.Responder, err = results.EncodeHistogram(m.Responder); err != nil {
		return err
	}
	return nil
}

func cellFor(sc *scenarios.Scenario, u Unit, brokerName string, index int) *results.Cell {
	spec := u.Driver.Spec()
	c := &results.Cell{
		Driver:  spec.Name,
		Kind:    string(spec.Kind),
		Variant: u.Config.Variant,
		Options: u.Config.Options,
		Broker:  brokerName,
		Series:  []results.Point{},
	}
	return c
}

// cellKey names a cell the same way in every run, repetition excluded.
func cellKey(c *results.Cell) string {
	var b strings.Builder
	b.WriteString(c.Driver + "/" + c.Variant)
	for _, k := range slices.Sorted(maps.Keys(c.Options)) {
		b.WriteString("," + k + "=" + c.Options[k])
	}
	b.WriteString(" payload=" + strconv.Itoa(c.Payload))
	if c.Mode == "open" {
		b.WriteString(" rate=" + strconv.FormatFloat(c.Rate, 'f', -1, 64))
	} else {
		b.WriteString(" concurrency=" + strconv.Itoa(c.Concurrency))
	}
	b.WriteString(" service=" + c.ServiceTime)
	return b.String()
}

func seed(key string, rep int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64() + uint64(rep)
}
