package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/rpcbench/rpcbench/internal/runner"
	"github.com/rpcbench/rpcbench/results"
)

// progress shows a run on stderr: a progress bar per cell on a terminal,
// plain lines otherwise (CI logs, pipes).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	quiet bool
	start time.Time
	bar   *progressbar.ProgressBar
	label string
	total time.Duration
	// optioned: the driver variants the run has with several sets of
	// options (runner.Optioned), whose labels name them
	optioned map[string]bool
	lastOut  time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	tty := false
	under := w
	if rw, ok := w.(redactWriter); ok {
		under = rw.w
	}
	if f, ok := under.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: w, tty: tty, quiet: quiet, start: time.Now()}
}

func (p *progress) CellStart(index, total int, c *results.Cell, load runner.Load) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id := results.UnitID{Driver: c.Driver, Variant: c.Variant, Options: c.Options}
	p.label = fmt.Sprintf("[%d/%d] %s %dB %s", index, total, id.Label(p.optioned), c.Payload, loadLabel(*c))
	p.total = load.Warmup + load.Duration
	if !p.tty {
		what := fmt.Sprintf("%v + %v warm-up", load.Duration, load.Warmup)
		if load.Calls > 0 {
			what = fmt.Sprintf("%d calls + %v warm-up", load.Calls, load.Warmup)
		}
		fmt.Fprintf(p.w, "%s %s (run %s)\n", p.label, what, time.Since(p.start).Round(time.Second))
		p.lastOut = time.Now()
		return
	}
	max := int64(p.total / time.Millisecond)
	if load.Calls > 0 {
		max = -1 // a spinner: the end depends on the call count
	}
	p.bar = progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.label),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *progress) Live(l runner.Live) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	state := fmt.Sprintf("%8.0f calls/s  p99 %-8s  errors %d", l.CallsPerSec, fmtUS(float64(l.P99)/1e3), l.Errors)
	if l.Warmup {
		state = fmt.Sprintf("warm-up  %8.0f calls/s  errors %d", l.CallsPerSec, l.Errors)
	}
	if p.tty && p.bar != nil {
		p.bar.Describe(p.label + "  " + state)
		p.bar.Set64(int64(l.Elapsed / time.Millisecond))
		return
	}
	if time.Since(p.lastOut) >= 5*time.Second {
		fmt.Fprintf(p.w, "  %6s  %s  (run %s)\n", l.Elapsed.Round(100*time.Millisecond), state, time.Since(p.start).Round(time.Second))
		p.lastOut = time.Now()
	}
}

func (p *progress) CellDone(c *results.Cell) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
	if c.Error != "" {
		fmt.Fprintf(p.w, "%s failed: %s\n", p.label, c.Error)
		return
	}
	busy := ""
	if c.Cost.Busy() {
		busy = fmt.Sprintf("  (machine busy: other processes %.2f cores, steal %.2f)", *c.Cost.OtherCPUCores, *c.Cost.StealCores)
	}
	fmt.Fprintf(p.w, "%s  %.0f calls/s  p50 %s  p99 %s  errors %d%s\n", p.label, c.Throughput,
		fmtUS(c.Latency.P50), fmtUS(c.Latency.P99), c.Counts.Failed()+c.Counts.Overflow, busy)
}

func (p *progress) Note(msg string) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintln(p.w, msg)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
	if !p.quiet {
		fmt.Fprintf(p.w, "run finished in %s\n", time.Since(p.start).Round(100*time.Millisecond))
	}
}
