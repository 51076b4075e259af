package runner

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/proc"
	"github.com/rpcbench/rpcbench/internal/sockstat"
	"github.com/rpcbench/rpcbench/results"
)

// meter reads the CPU time one process (or process tree) has used, and
// which processes it is (for their sockets; nil when not known).
type meter struct {
	role string
	cpu  func(context.Context) (time.Duration, error)
	pids func(context.Context) ([]int, error)
	// idle: a broker of the run that the cell does not use (another
	// driver's, started with the run or kept for a later run of a suite):
	// its CPU is not another process's load, nor the cell's cost
	idle bool
}

// CPUMeasured is implemented by servers whose CPU can be read apart from
// the run's own process (a responder in its own process).
type CPUMeasured interface {
	CPU() (time.Duration, error)
}

// ProcessTree is implemented by servers in processes of their own: the
// pids whose sockets are the responder's.
type ProcessTree interface {
	PIDs() ([]int, error)
}

// selfPID is the callers' process alone (its children, a responder or a
// broker, are roles of their own).
func selfPID(context.Context) ([]int, error) { return []int{os.Getpid()}, nil }

// unitMeters are the processes whose CPU a unit's cells are charged:
// this process (the callers), the responder when it runs apart, and the
// broker when its processes can be read.
func unitMeters(srv drivers.Server, b *broker.Broker, idle []broker.Broker) ([]meter, []string) {
	self := func(context.Context) (time.Duration, error) { return proc.SelfCPU() }
	var ms []meter
	var notes []string
	if c, ok := srv.(CPUMeasured); ok {
		resp := meter{role: "responder", cpu: func(context.Context) (time.Duration, error) { return c.CPU() }}
		if t, ok := srv.(ProcessTree); ok {
			resp.pids = func(context.Context) ([]int, error) { return t.PIDs() }
		}
		ms = append(ms, meter{role: "caller", cpu: self, pids: selfPID}, resp)
	} else if srv != nil {
		ms = append(ms, meter{role: "caller+responder", cpu: self, pids: selfPID})
		notes = append(notes, "the responder ran in rpcbench's own process: its CPU and sockets are in caller+responder")
	} else {
		ms = append(ms, meter{role: "caller", cpu: self, pids: selfPID})
		notes = append(notes, "the responder runs elsewhere (--target): not measured")
	}
	var brokerCPU func(context.Context) (time.Duration, error)
	brokerSource := ""
	if b != nil {
		brokerCPU, brokerSource = b.CPU, b.Source
	}
	switch {
	case brokerCPU != nil:
		ms = append(ms, meter{role: "broker", cpu: brokerCPU, pids: b.PIDs})
	case brokerSource == "embedded":
		notes = append(notes, "the broker is embedded in rpcbench's own process: its CPU is in the caller's")
	case brokerSource != "":
		notes = append(notes, "the "+brokerSource+" broker's processes cannot be read from here: not measured")
	}
	for _, o := range idle {
		if o.CPU != nil && (b == nil || o.URL != b.URL) {
			ms = append(ms, meter{role: "idle " + o.Kind + " broker", cpu: o.CPU, idle: true})
		}
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
	// socks are the sockets' counters at the window's edges, and owner
	// the roles' socket inodes there (by meter); sockErr why not.
	socks   [2]map[uint32]sockstat.Counters
	owner   [2][]map[uint32]bool
	sockErr error
	// skip tells the sockets of the cell's delay proxies (in the callers'
	// process, standing in for the network) by their ports.
	skip func(local, remote uint16) bool
	// machine is the whole machine's CPU at the edges (zero: not read).
	machine [2]proc.Machine
	// window is the measured window's intended length; sockAt when the
	// sockets were read at its edges.
	window time.Duration
	sockAt [2]time.Time
}

// probeGrace is how long a cell's end waits for its cost probe's last
// sample, due at the window's end.
const probeGrace = 100 * time.Millisecond

// BusyCores is how much CPU, in cores, processes other than a cell's own
// (or the hypervisor, as steal) may take on average before the machine
// counts as busy for that cell: a sweep trial then says nothing and is
// repeated, and a cell says so in a note.
const BusyCores = results.BusyCores

// machineLoad is what others took of the machine between two samples,
// in cores: the CPU of processes other than the metered ones (the
// machine's growth less theirs) and the hypervisor's steal.
type machineLoad struct{ other, steal float64 }

func (l machineLoad) busy() bool { return l.other > BusyCores || l.steal > BusyCores }

func loadBetween(m0, m1 proc.Machine, r0, r1 []time.Duration, d time.Duration) (machineLoad, bool) {
	if d <= 0 || m0.Busy == 0 || m1.Busy == 0 {
		return machineLoad{}, false
	}
	other := m1.Busy - m0.Busy
	for i := range r0 {
		other -= r1[i] - r0[i]
	}
	cores := func(v time.Duration) float64 { return max(0, math.Round(float64(v)/float64(d)*1000)/1000) }
	return machineLoad{other: cores(other), steal: cores(m1.Steal - m0.Steal)}, true
}

// cpuSample is the meters' and the machine's CPU at one moment.
type cpuSample struct {
	at      time.Time
	machine proc.Machine
	roles   []time.Duration
}

func sampleCPU(ctx context.Context, ms []meter) (cpuSample, error) {
	s := cpuSample{roles: make([]time.Duration, len(ms))}
	for j, m := range ms {
		v, err := m.cpu(ctx)
		if err != nil {
			return s, fmt.Errorf("%s CPU: %w", m.role, err)
		}
		s.roles[j] = v
	}
	var err error
	s.machine, err = proc.MachineCPU()
	s.at = time.Now()
	return s, err
}

// loadOf is what others took of the machine between two samples.
func loadOf(a, b cpuSample) (machineLoad, bool) {
	return loadBetween(a.machine, b.machine, a.roles, b.roles, b.at.Sub(a.at))
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
	p.window = load.Duration
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
			p.snapSockets(i)
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
			p.machine[i], _ = proc.MachineCPU()
			p.ownSockets(ctx, i)
			if i == 0 {
				p.start = vals
			} else {
				p.end = vals
			}
		}
	}()
	return p
}

// span is the share of the measured window between two samples: the
// samples are taken as close to the window's edges as a timer allows (a
// loaded machine wakes it late), so what they saw is charged to the calls
// of that share of the window (the rate is steady within a cell).
func (p *costProbe) span(at [2]time.Time) float64 {
	if p.window <= 0 {
		return 1
	}
	return at[1].Sub(at[0]).Seconds() / p.window.Seconds()
}

// snapSockets reads every TCP socket's counters at window edge i, first
// thing at the edge (the processes' socket inodes can be read after:
// sockets outlive the moment).
func (p *costProbe) snapSockets(i int) {
	if p.sockErr != nil || !slices.ContainsFunc(p.ms, func(m meter) bool { return m.pids != nil }) {
		return
	}
	snap, err := sockstat.Snapshot()
	if err != nil {
		p.sockErr = err
		return
	}
	p.socks[i], p.sockAt[i] = snap, time.Now()
}

// ownSockets reads which sockets each role's processes hold, at edge i.
func (p *costProbe) ownSockets(ctx context.Context, i int) {
	if p.sockErr != nil || p.socks[i] == nil {
		return
	}
	owner := make([]map[uint32]bool, len(p.ms))
	for j, m := range p.ms {
		if m.pids == nil {
			continue
		}
		pids, err := m.pids(ctx)
		if err != nil {
			p.sockErr = fmt.Errorf("%s processes: %w", m.role, err)
			return
		}
		owner[j] = proc.SocketInodes(pids)
	}
	p.owner[i] = owner
}

// traffic is each role's data segments and bytes over the window: the
// counters' growth on sockets open at both edges, and everything a socket
// opened within the window carried. Sockets closed within it are missed,
// and counted so in a note.
func (p *costProbe) traffic(c *results.Cost, calls float64) {
	if p.sockErr != nil {
		c.Notes = append(c.Notes, "segments and bytes not counted: "+p.sockErr.Error())
		return
	}
	if p.owner[0] == nil || p.owner[1] == nil {
		return
	}
	calls *= p.span(p.sockAt)
	per := func(v uint64) float64 { return math.Round(float64(v)/calls*100) / 100 }
	for j, m := range p.ms {
		if p.owner[1][j] == nil {
			continue
		}
		var sum sockstat.Counters
		conns, closed := 0, 0
		for ino := range p.owner[1][j] {
			end, ok := p.socks[1][ino]
			if !ok {
				continue // not TCP
			}
			if p.skip != nil && p.skip(end.LocalPort, end.RemotePort) {
				continue
			}
			conns++
			if start, ok := p.socks[0][ino]; ok {
				end = end.Sub(start)
			}
			sum = sum.Add(end)
		}
		for ino := range p.owner[0][j] {
			if _, ok := p.socks[0][ino]; ok && !p.owner[1][j][ino] {
				closed++
			}
		}
		if c.SegmentsPerCall == nil {
			c.SegmentsPerCall, c.BytesPerCall, c.Connections = map[string]results.Flow{}, map[string]results.Flow{}, map[string]int{}
		}
		c.SegmentsPerCall[m.role] = results.Flow{Sent: per(sum.DataSegsOut), Received: per(sum.DataSegsIn)}
		c.BytesPerCall[m.role] = results.Flow{Sent: per(sum.BytesSent), Received: per(sum.BytesReceived)}
		c.Connections[m.role] = conns
		if closed > 0 {
			c.Notes = append(c.Notes, fmt.Sprintf("%d of the %s's TCP connections closed during the window: what they carried in it is not counted", closed, m.role))
		}
	}
}

// cost is the probe's result for a cell whose measurement is m; nil when
// the window was not sampled at both ends.
func (p *costProbe) cost(m *Measurement) *results.Cost {
	if p == nil {
		return nil
	}
	if m != nil && !m.Interrupted {
		// the cell ran its window: the end sample's timer is due now or
		// a timer's oversleep from now (the last calls can end first)
		t := time.NewTimer(probeGrace)
		select {
		case <-p.done:
		case <-t.C:
		}
		t.Stop()
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
	var idle time.Duration
	for i, m := range p.ms {
		if m.idle {
			idle += p.end[i] - p.start[i]
			continue
		}
		us := float64(p.end[i]-p.start[i]) / 1e3 / (float64(calls) * p.span(p.at))
		c.CPUUsPerCall[m.role] = math.Round(us*100) / 100
	}
	if idle > 0 {
		c.Notes = append(c.Notes, fmt.Sprintf("the run's other brokers, idle (another driver's, or kept for a later run of the suite), used %.3f cores: not counted in other_cpu_cores", float64(idle)/float64(p.at[1].Sub(p.at[0]))))
	}
	if len(p.ms) > 1 {
		c.Notes = append(c.Notes, "the CPU of other processes is read from /proc at 10 ms resolution")
	}
	p.traffic(c, float64(calls))
	if l, ok := loadBetween(p.machine[0], p.machine[1], p.start, p.end, p.at[1].Sub(p.at[0])); ok {
		c.OtherCPUCores, c.StealCores = &l.other, &l.steal
		if l.busy() {
			c.Notes = append(c.Notes, fmt.Sprintf("the machine was busy during some windows: other processes' CPU or the hypervisor's steal over %.2f cores (other_cpu_cores, steal_cores in result.json)", BusyCores))
		}
	}
	return c
}
