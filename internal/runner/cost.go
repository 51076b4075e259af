package runner

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/proc"
	"github.com/rpcbench/rpcbench/results"
)

// meter reads the CPU time one process (or process tree) has used.
type meter struct {
	role string
	cpu  func(context.Context) (time.Duration, error)
}

// CPUMeasured is implemented by servers whose CPU can be read apart from
// the run's own process (a responder in its own process).
type CPUMeasured interface {
	CPU() (time.Duration, error)
}

// unitMeters are the processes whose CPU a unit's cells are charged:
// this process (the callers), the responder when it runs apart, and the
// broker when its processes can be read.
func unitMeters(srv drivers.Server, brokerCPU func(context.Context) (time.Duration, error), brokerSource string) ([]meter, []string) {
	self := func(context.Context) (time.Duration, error) { return proc.SelfCPU() }
	var ms []meter
	var notes []string
	if c, ok := srv.(CPUMeasured); ok {
		ms = append(ms, meter{"caller", self}, meter{"responder", func(context.Context) (time.Duration, error) { return c.CPU() }})
	} else if srv != nil {
		ms = append(ms, meter{"caller+responder", self})
		notes = append(notes, "the responder ran in rpcbench's own process: its CPU is in caller+responder")
	} else {
		ms = append(ms, meter{"caller", self})
		notes = append(notes, "the responder runs elsewhere (--target): not measured")
	}
	switch {
	case brokerCPU != nil:
		ms = append(ms, meter{"broker", brokerCPU})
	case brokerSource == "embedded":
		notes = append(notes, "the broker is embedded in rpcbench's own process: its CPU is in the caller's")
	case brokerSource != "":
		notes = append(notes, "the "+brokerSource+" broker's processes cannot be read from here: not measured")
	}
	return ms, notes
}

// costProbe samples the meters at the measured window's start and end.
type costProbe struct {
	ms    []meter
	notes []string
	start []time.Duration
	end   []time.Duration
	at    [2]time.Time
	err   error
	stop  chan struct{}
	done  chan struct{}
}

// probeCost samples ms when the measured window of a cell begins (after
// load.Warmup from the cell's start) and ends (after load.Duration). It
// sets load.OnStart to learn the start. Cells ended by a call count are
// not probed (their window's end is not known ahead).
func probeCost(ctx context.Context, ms []meter, notes []string, load *Load) *costProbe {
	if len(ms) == 0 || load.Calls > 0 || load.Duration <= 0 {
		return nil
	}
	p := &costProbe{ms: ms, notes: notes, stop: make(chan struct{}), done: make(chan struct{})}
	started := make(chan time.Time, 1)
	prev := load.OnStart
	load.OnStart = func(t time.Time) {
		if prev != nil {
			prev(t)
		}
		started <- t
	}
	window := *load
	go func() {
		defer close(p.done)
		var begin time.Time
		select {
		case begin = <-started:
		case <-p.stop:
			return
		case <-ctx.Done():
			p.err = ctx.Err()
			return
		}
		load := window
		for i, d := range []time.Duration{load.Warmup, load.Warmup + load.Duration} {
			t := time.NewTimer(time.Until(begin.Add(d)))
			select {
			case <-ctx.Done():
				t.Stop()
				p.err = ctx.Err()
				return
			case <-p.stop:
				t.Stop()
				return // the cell ended before the window did
			case <-t.C:
			}
			vals := make([]time.Duration, len(ms))
			for j, m := range ms {
				v, err := m.cpu(ctx)
				if err != nil {
					p.err = fmt.Errorf("%s CPU: %w", m.role, err)
					return
				}
				vals[j] = v
			}
			p.at[i] = time.Now()
			if i == 0 {
				p.start = vals
			} else {
				p.end = vals
			}
		}
	}()
	return p
}

// cost is the probe's result for a cell whose measurement is m; nil when
// the window was not sampled at both ends.
func (p *costProbe) cost(m *Measurement) *results.Cost {
	if p == nil {
		return nil
	}
	close(p.stop)
	<-p.done
	if m == nil || m.Interrupted {
		return nil
	}
	calls := m.Counts.OK + m.Counts.Failed()
	if p.err != nil || p.end == nil || calls == 0 {
		return nil
	}
	c := &results.Cost{
		WindowSeconds: math.Round(p.at[1].Sub(p.at[0]).Seconds()*1000) / 1000,
		Calls:         calls,
		CPUUsPerCall:  map[string]float64{},
		Notes:         slices.Clone(p.notes),
	}
	for i, m := range p.ms {
		us := float64(p.end[i]-p.start[i]) / 1e3 / float64(calls)
		c.CPUUsPerCall[m.role] = math.Round(us*100) / 100
	}
	if len(p.ms) > 1 {
		c.Notes = append(c.Notes, "the CPU of other processes is read from /proc at 10 ms resolution")
	}
	return c
}
