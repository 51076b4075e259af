// Package broker gives broker drivers a running broker of a kind and how to
// reach it, from one of several sources: an external broker named by URL
// (--broker kind=URL), a container started and removed by rpcbench, or a
// server embedded in the process. The run command asks the Manager; drivers
// only ever see the endpoint URL.
package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rpcbench/rpcbench/internal/proc"
)

// Broker is a running broker and what the results record about it.
type Broker struct {
	Kind string `json:"kind"`
	// URL is what the driver dials (amqp://..., nats://..., host:port).
	URL string `json:"url"`
	// Source is "external", "container" or "embedded".
	Source  string `json:"source"`
	Image   string `json:"image,omitempty"`
	Version string `json:"version,omitempty"`
	// Details holds source-specific facts (flush mode, JVM, networking...).
	Details map[string]string `json:"details,omitempty"`
	// CPU is the CPU time the broker's processes have used so far; nil
	// when it cannot be known (an external broker, or one embedded in
	// rpcbench's own process).
	CPU func(context.Context) (time.Duration, error) `json:"-"`
	// PIDs are the broker's processes now (its process tree), whose
	// sockets a cell's segment counts charge to the broker; nil with CPU.
	PIDs func(context.Context) ([]int, error) `json:"-"`
	// Control does faults to the broker (nil: rpcbench cannot, e.g. an
	// external broker).
	Control Control `json:"-"`
}

// Control does a fault run's faults to a broker rpcbench manages. Start
// brings a killed or stopped broker back on the same ports and storage and
// returns once it accepts connections again.
type Control interface {
	Kill(ctx context.Context) error
	Stop(ctx context.Context) error
	Start(ctx context.Context) error
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

// PidCPU is a Broker.CPU for a broker run as a local process tree.
func PidCPU(pid int) func(context.Context) (time.Duration, error) {
	return func(context.Context) (time.Duration, error) { return proc.TreeCPU(pid) }
}

// PidTree is a Broker.PIDs for a broker run as a local process tree.
func PidTree(pid int) func(context.Context) ([]int, error) {
	return func(context.Context) ([]int, error) { return proc.TreePIDs(pid) }
}

// Unavailable is returned when no source can provide a broker of a kind on
// this machine; the run skips the broker's drivers with Reason.
type Unavailable struct{ Reason string }

func (u *Unavailable) Error() string { return u.Reason }

// IsUnavailable reports whether err means "skip, with this reason".
func IsUnavailable(err error) (string, bool) {
	var u *Unavailable
	if errors.As(err, &u) {
		return u.Reason, true
	}
	return "", false
}

// StartOptions are passed to a Starter.
type StartOptions struct {
	// Dir is a directory the broker may keep its files in (the run's).
	Dir string
	// Params are per-kind settings (e.g. RocketMQ flush mode).
	Params map[string]string
}

// Starter starts one broker of its kind and returns it with a stop function
// that removes everything it started.
type Starter func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error)

// Manager hands out brokers and stops the ones it started.
type Manager struct {
	mu       sync.Mutex
	external map[string]string
	starters map[string]Starter
	running  map[string]*running
	order    []string
	// keep makes Release a no-op: the brokers serve later runs of the
	// same process (Keep), until Close.
	keep bool
	// warm are the keys of brokers warmed up since they started.
	warm map[string]bool
}

// Keep makes the manager keep its brokers for later runs of the same
// process: Release stops nothing and Close stops them all. A suite of runs
// (rpcbench claims) shares one broker of each key instead of starting and
// warming one per run.
func (m *Manager) Keep() {
	m.mu.Lock()
	m.keep = true
	m.mu.Unlock()
}

// Running are the brokers the manager started and has not stopped.
func (m *Manager) Running() []Broker {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Broker
	for _, k := range m.order {
		if r, ok := m.running[k]; ok && r.err == nil {
			out = append(out, r.b)
		}
	}
	return out
}

// MarkWarm records that the broker under key has been warmed up.
func (m *Manager) MarkWarm(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.running[key]; !ok {
		return
	}
	if m.warm == nil {
		m.warm = map[string]bool{}
	}
	m.warm[key] = true
}

// Warm reports whether the broker under key was warmed up since it
// started (by an earlier run, for a manager that keeps its brokers).
func (m *Manager) Warm(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.warm[key]
}

// Cool forgets that any broker was warmed up: a run stopped and started
// them (broker faults), and a restarted JVM broker is cold again.
func (m *Manager) Cool() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.warm = nil
}

type running struct {
	b    Broker
	stop func(context.Context) error
	// done closes when the start has finished, with err set if it failed
	done chan struct{}
	err  error
}

// NewManager makes a manager. external maps a broker kind to the URL of a
// broker that already runs; starters start brokers of the other kinds.
func NewManager(external map[string]string, starters map[string]Starter) *Manager {
	return &Manager{external: external, starters: starters, running: map[string]*running{}}
}

// ParseExternal parses --broker values of the form kind=URL.
func ParseExternal(values []string, known []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		kind, url, ok := strings.Cut(v, "=")
		if !ok || kind == "" || url == "" {
			return nil, fmt.Errorf("--broker %q: want KIND=URL, e.g. rabbitmq=amqp://guest:guest@127.0.0.1:5672/", Redact(v))
		}
		if !contains(known, kind) {
			return nil, fmt.Errorf("--broker %q: unknown broker kind %q (want one of %s)", Redact(v), kind, strings.Join(known, ", "))
		}
		if err := CheckURL(kind, url); err != nil {
			return nil, fmt.Errorf("--broker %s: %v", Redact(v), err)
		}
		if _, dup := out[kind]; dup {
			return nil, fmt.Errorf("--broker %s: a second %s broker: give one --broker per kind", Redact(v), kind)
		}
		out[kind] = url
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Get returns a running broker of kind: the external one if given, else one
// started (once per key) by the kind's starter. key distinguishes brokers of
// one kind started with different params (e.g. "rocketmq/sync-flush").
func (m *Manager) Get(ctx context.Context, kind, key string, opts StartOptions) (Broker, error) {
	m.mu.Lock()
	if url, ok := m.external[kind]; ok {
		m.mu.Unlock()
		return Broker{Kind: kind, URL: url, Source: "external"}, nil
	}
	if key == "" {
		key = kind
	}
	if r, ok := m.running[key]; ok {
		m.mu.Unlock()
		// started, or being started by another caller: brokers of
		// different keys start in parallel, one key only once
		select {
		case <-r.done:
		case <-ctx.Done():
			return Broker{}, ctx.Err()
		}
		return r.b, r.err
	}
	start, ok := m.starters[kind]
	if !ok {
		m.mu.Unlock()
		return Broker{}, &Unavailable{Reason: fmt.Sprintf("no way to start a %s broker here; use --broker %s=URL", kind, kind)}
	}
	r := &running{done: make(chan struct{})}
	m.running[key] = r
	m.mu.Unlock()
	started := time.Now()
	b, stop, err := start(ctx, opts)
	m.mu.Lock()
	if err != nil {
		r.err = err
		delete(m.running, key)
	} else {
		if b.Details == nil {
			b.Details = map[string]string{}
		}
		b.Details["startup"] = time.Since(started).Round(time.Millisecond).String()
		r.b, r.stop = b, stop
		m.order = append(m.order, key)
	}
	m.mu.Unlock()
	close(r.done)
	return b, err
}

// Release stops the broker started under key, if any (external brokers are
// never stopped).
func (m *Manager) Release(ctx context.Context, key string) error {
	m.mu.Lock()
	if m.keep {
		m.mu.Unlock()
		return nil
	}
	return m.release(ctx, key)
}

// release stops the broker under key; m.mu is held and released.
func (m *Manager) release(ctx context.Context, key string) error {
	r, ok := m.running[key]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	<-r.done // a start under way finishes first
	m.mu.Lock()
	if m.running[key] != r {
		m.mu.Unlock()
		return nil
	}
	delete(m.running, key)
	delete(m.warm, key)
	m.mu.Unlock()
	if r.err != nil || r.stop == nil {
		return nil
	}
	return r.stop(ctx)
}

// Close stops every broker the manager started, newest first.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	keys := append([]string(nil), m.order...)
	m.order = nil
	m.mu.Unlock()
	slices.Reverse(keys)
	var errs []error
	for _, k := range keys {
		m.mu.Lock()
		if err := m.release(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}
