package runner

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/broker"
	"github.com/rpcbench/rpcbench/internal/proc"
)

// TestIdleBrokerNotOther: the CPU of the run's brokers that a cell does
// not use (a spinning process stands in for one) is neither another
// process's load nor the cell's cost: with the process as an idle meter
// the cell's other_cpu_cores leaves it out and a note gives it; without
// it, it counts as other.
func TestIdleBrokerNotOther(t *testing.T) {
	spin := exec.Command("sh", "-c", "while :; do :; done")
	if err := spin.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { spin.Process.Kill(); spin.Wait() }()
	cl := loopback(t)
	caller := meter{role: "caller", cpu: func(context.Context) (time.Duration, error) { return proc.SelfCPU() }, pids: selfPID}
	idle := meter{role: "idle rocketmq broker", cpu: broker.PidCPU(spin.Process.Pid), idle: true}
	cell := func(ms []meter) (other float64, notes []string, roles map[string]float64) {
		load := Load{Payload: 64, Concurrency: 1, Duration: 700 * time.Millisecond, Warmup: 100 * time.Millisecond, Timeout: time.Second}
		p := probeCost(context.Background(), ms, nil, &load)
		m, err := RunCell(context.Background(), cl, load, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := p.cost(m)
		if c == nil || c.OtherCPUCores == nil {
			t.Fatal("the probe measured nothing")
		}
		return *c.OtherCPUCores, c.Notes, c.CPUUsPerCall
	}
	without, _, _ := cell([]meter{caller})
	with, notes, roles := cell([]meter{caller, idle})
	// the spinner takes about a core either way
	if without < 0.5 {
		t.Fatalf("without the idle meter other_cpu_cores %.2f: the spinner should count as another process", without)
	}
	if with > without-0.5 {
		t.Fatalf("with the idle meter other_cpu_cores %.2f (without %.2f): the idle broker's CPU still counts as other", with, without)
	}
	if _, ok := roles["idle rocketmq broker"]; ok || len(roles) != 1 {
		t.Fatalf("cpu_us_per_call %v: an idle broker is no role of the cell", roles)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "the run's other brokers, idle") {
		t.Fatalf("notes %q: no word of the idle brokers", notes)
	}
}
