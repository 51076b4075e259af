// Package drivers defines the small contract every transport implements.
//
// A driver carries one request's bytes to a responder and the reply's bytes
// back, and can start its responder side. Everything else (pacing,
// concurrency, timing, recording, verification) belongs to the core
// (internal/runner), written once. The core imports no driver package: the
// registry in cmd/rpcbench wires drivers in.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind tells whether a driver talks to its responder directly or through a
// broker.
type Kind string

const (
	// Direct drivers connect the caller to the responder.
	Direct Kind = "direct"
	// Broker drivers carry calls through a message broker.
	Broker Kind = "broker"
)

// Variant is one labelled way a driver can run (e.g. gRPC unary vs stream).
type Variant struct {
	Name        string
	Description string
}

// Option is one driver-specific setting, given as a string and validated by
// the driver.
type Option struct {
	Name        string
	Default     string
	Description string
}

// Spec describes a driver for listings, validation and results.
type Spec struct {
	Name        string
	Description string
	Kind        Kind
	// Broker is the broker kind a Broker driver needs ("rabbitmq", "nats"...).
	Broker   string
	Variants []Variant
	Options  []Option
	// Libraries are the Go modules whose versions the results record.
	Libraries []string
	// BrokerWarmup says the broker is slow until it has served load for a
	// while (a JVM compiling its hot paths): the run warms it up before
	// any cell is measured.
	BrokerWarmup bool
}

// Config is what one cell asks of a driver: a variant, options and the
// responder's concurrency. Driver.Configure parses it once.
type Config struct {
	// Variant is one of Spec.Variants ("" means the first).
	Variant string
	// Options holds driver options; missing ones take their defaults.
	Options map[string]string
	// ResponderConcurrency is how many requests the responder handles at
	// once (the scenario's responder_concurrency; 0 means
	// DefaultResponderConcurrency). The core's handler admits no more than
	// this many at a time; Serve sizes whatever it runs requests on (worker
	// goroutines, prefetch, consumer threads) so that it can reach it.
	ResponderConcurrency int
}

// Place says where a responder runs.
type Place struct {
	// Listen is where a direct driver's responder listens (host:port;
	// "" means 127.0.0.1 on a random port). Broker drivers ignore it.
	Listen string
	// Broker is the URL of the broker a broker driver's responder and
	// callers use. Direct drivers ignore it.
	Broker string
}

// DefaultResponderConcurrency is the responder concurrency of every driver
// when a scenario does not set one.
const DefaultResponderConcurrency = 64

// Concurrency is cfg.ResponderConcurrency with the default filled in.
func (cfg Config) Concurrency() int {
	if cfg.ResponderConcurrency > 0 {
		return cfg.ResponderConcurrency
	}
	return DefaultResponderConcurrency
}

// Limits are the largest messages a driver carries: the encoded request
// and reply (wire.Call bytes), 0 meaning no limit of its own. A cell whose
// messages would exceed them is refused before it runs.
type Limits struct {
	MaxRequest int
	MaxReply   int
}

// Handler is the responder's work: given a request's bytes it appends the
// reply's bytes to buf and returns them. It is safe for concurrent use. Every
// driver's responder calls the same Handler (wire.Respond) for every request.
type Handler func(req, buf []byte) []byte

// Server is a running responder.
type Server interface {
	// Addr is what a client dials: a host:port for direct drivers, the
	// broker endpoint for broker drivers.
	Addr() string
	// Close stops the responder and waits for its goroutines.
	Close() error
}

// Client is the caller side: connections (or broker sessions) shared by the
// callers made from it.
type Client interface {
	// NewCaller returns a caller for one worker goroutine.
	NewCaller() (Caller, error)
	// Close closes the connections; calls in flight fail.
	Close() error
}

// Caller makes calls for one worker goroutine; it is not safe for concurrent
// use, which lets it reuse its buffers, timers and channels across calls.
type Caller interface {
	// Call sends req and appends the reply's bytes to buf. ctx ends the whole
	// run; deadline bounds this call. A call that runs out of time returns an
	// error that wraps ErrTimeout; any other failure is a transport error.
	Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error)
}

// Driver is one transport.
type Driver interface {
	Spec() Spec
	// Configure checks cfg (naming a bad variant or option and what would
	// fix it) and parses it once into a Transport.
	Configure(cfg Config) (Transport, error)
}

// Transport is a driver configured for one unit of a scenario: it serves,
// dials, and says what it carries.
type Transport interface {
	// Config is the effective configuration: the variant, every option of
	// the driver with its value (defaults filled in), and the responder
	// concurrency.
	Config() Config
	// Limits are the largest messages it carries. Broker drivers whose
	// limit is the broker's ask the broker at broker ("" when it is not
	// known yet: the limit of the driver's own library).
	Limits(ctx context.Context, broker string) Limits
	// BrokerParams is how the broker must be configured for this variant
	// (e.g. RocketMQ's flush mode); nil when any broker of the kind does.
	// The run starts one broker per distinct set of params.
	BrokerParams() map[string]string
	// CheckTarget checks an address callers dial (Server.Addr, or
	// --target), saying what would fix it.
	CheckTarget(addr string) error
	// Serve starts the responder side at at, which answers every request
	// with h.
	Serve(ctx context.Context, at Place, h Handler) (Server, error)
	// Dial connects the caller side to a responder at addr (Server.Addr).
	Dial(ctx context.Context, addr string) (Client, error)
}

// ErrTimeout is wrapped by errors of calls that ran past their deadline.
var ErrTimeout = errors.New("call timed out")

// Redeliverer is a Transport whose broker hands a request that a
// responder took but never acknowledged to another responder only after a
// while (a JetStream consumer's AckWait): a fault run drains at least that
// long before it counts a request lost.
type Redeliverer interface {
	RedeliveryAfter() time.Duration
}

// OrphanCounter is a Client that counts the replies that arrived for calls
// no longer waiting (they had timed out): a fault run reports them.
type OrphanCounter interface {
	Orphans() int64
}

// ErrAcknowledged is wrapped by errors of calls that failed after the
// broker had acknowledged (stored) their request: a fault run counts those
// that no responder ever handled as lost_acknowledged.
var ErrAcknowledged = errors.New("the broker had acknowledged the request")

// AckReporter is a Transport that says whether its calls report the
// broker's acknowledgement (ErrAcknowledged): then a fault run's
// lost_acknowledged is known, else it is null.
type AckReporter interface {
	ReportsAcks() bool
}

// ErrNotSent is wrapped by errors of calls whose request the driver knows
// it never sent (its connection was down and could not be made again): a
// fault run counts them apart from calls that may have reached the
// responder.
var ErrNotSent = errors.New("request not sent")

// Registry maps driver names to drivers.
type Registry struct{ m map[string]Driver }

// NewRegistry builds a registry; driver names must be unique.
func NewRegistry(ds ...Driver) *Registry {
	r := &Registry{m: make(map[string]Driver, len(ds))}
	for _, d := range ds {
		name := d.Spec().Name
		if _, dup := r.m[name]; dup {
			panic("drivers: duplicate driver " + name)
		}
		r.m[name] = d
	}
	return r
}

// Get returns the driver called name.
func (r *Registry) Get(name string) (Driver, bool) {
	d, ok := r.m[name]
	return d, ok
}

// Names lists the registered drivers in order.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.m))
	for n := range r.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CheckConfig is the part of Configure every driver shares: the variant is
// known and every option is known. It fills in the default variant.
func CheckConfig(s Spec, cfg *Config) error {
	if cfg.Variant == "" && len(s.Variants) > 0 {
		cfg.Variant = s.Variants[0].Name
	}
	known := false
	names := make([]string, len(s.Variants))
	for i, v := range s.Variants {
		names[i] = v.Name
		known = known || v.Name == cfg.Variant
	}
	if !known {
		return fmt.Errorf("%s: unknown variant %q (want one of %s)", s.Name, cfg.Variant, strings.Join(names, ", "))
	}
	for k := range cfg.Options {
		if !hasOption(s, k) {
			opts := make([]string, len(s.Options))
			for i, o := range s.Options {
				opts[i] = o.Name
			}
			if len(opts) == 0 {
				return fmt.Errorf("%s: unknown option %q (this driver has no options)", s.Name, k)
			}
			return fmt.Errorf("%s: unknown option %q (want one of %s)", s.Name, k, strings.Join(opts, ", "))
		}
	}
	return nil
}

func hasOption(s Spec, name string) bool {
	for _, o := range s.Options {
		if o.Name == name {
			return true
		}
	}
	return false
}

// Option returns the value of option name in cfg, or its default from s.
func OptionValue(s Spec, cfg Config, name string) string {
	if v, ok := cfg.Options[name]; ok {
		return v
	}
	for _, o := range s.Options {
		if o.Name == name {
			return o.Default
		}
	}
	return ""
}

// IntOption parses option name as an integer in [min, max].
func IntOption(s Spec, cfg Config, name string, min, max int) (int, error) {
	raw := OptionValue(s, cfg, name)
	v, err := strconv.Atoi(raw)
	if err != nil || v < min || v > max {
		return 0, fmt.Errorf("%s: option %s=%q: want a whole number from %d to %d", s.Name, name, raw, min, max)
	}
	return v, nil
}

// BoolOption parses option name as true or false.
func BoolOption(s Spec, cfg Config, name string) (bool, error) {
	raw := OptionValue(s, cfg, name)
	v, err := strconv.ParseBool(raw)
	if err != nil {
		return false, fmt.Errorf("%s: option %s=%q: want true or false", s.Name, name, raw)
	}
	return v, nil
}

// Listen opens the TCP listener of a direct driver's responder on addr,
// 127.0.0.1 with a random port when addr is empty.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// Effective is cfg with the default variant, and every option of s with
// its value: the default when cfg does not set it, whole numbers and
// booleans written one way (02 -> 2, TRUE -> true). It is what a
// Transport's Config returns, so that results record the options a cell
// ran with and cells that ran the same workload have the same key however
// their options were written; the responder concurrency has its default
// filled in. Call it after CheckConfig.
func Effective(s Spec, cfg Config) Config {
	cfg.ResponderConcurrency = cfg.Concurrency()
	if cfg.Variant == "" && len(s.Variants) > 0 {
		cfg.Variant = s.Variants[0].Name
	}
	var opts map[string]string
	if len(s.Options) > 0 {
		opts = make(map[string]string, len(s.Options))
		for _, o := range s.Options {
			opts[o.Name] = canonicalOption(OptionValue(s, cfg, o.Name))
		}
	}
	cfg.Options = opts
	return cfg
}

// canonicalOption writes whole numbers and booleans one way; other values
// are kept as given, trimmed.
func canonicalOption(v string) string {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil {
		return strconv.Itoa(n)
	}
	if b, err := strconv.ParseBool(v); err == nil && !strings.ContainsAny(v, "0123456789") {
		return strconv.FormatBool(b)
	}
	return v
}

// CheckHostPort checks a host[:port] (host:port when needPort): a host
// name or IP address (IPv6 in brackets) and a port from 1 to 65535. It is
// the CheckTarget of direct drivers, whose responders are at HOST:PORT.
func CheckHostPort(hp string, needPort bool) error {
	if hp == "" {
		return fmt.Errorf("no host")
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		if needPort || strings.Contains(hp, ":") && !strings.HasPrefix(hp, "[") {
			if !strings.Contains(hp, ":") {
				return fmt.Errorf("no port")
			}
			return fmt.Errorf("not HOST:PORT (an IPv6 address goes in brackets: [::1]:PORT)")
		}
		host = strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]")
		if strings.HasPrefix(hp, "[") && net.ParseIP(host) == nil {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
	}
	if host == "" {
		return fmt.Errorf("no host before the port")
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return fmt.Errorf("%q is not a host name or an IP address", host)
	}
	if strings.ContainsAny(host, " /\\@?#") {
		return fmt.Errorf("%q is not a host name", host)
	}
	if err == nil {
		n, perr := strconv.Atoi(port)
		if perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want a number from 1 to 65535", port)
		}
	}
	return nil
}

// DirectTarget is the CheckTarget of a direct driver: addr is the
// HOST:PORT its responder listens on.
func DirectTarget(addr string) error {
	if err := CheckHostPort(addr, true); err != nil {
		return fmt.Errorf("%v: give the address `rpcbench serve` printed (HOST:PORT)", err)
	}
	return nil
}

// DirectBase holds what every direct driver's Transport does alike; embed
// it and set Cfg to Effective(spec, cfg).
type DirectBase struct{ Cfg Config }

// Config is the effective configuration.
func (b DirectBase) Config() Config { return b.Cfg }

// BrokerParams: a direct driver has no broker.
func (DirectBase) BrokerParams() map[string]string { return nil }

// CheckTarget: the responder is at HOST:PORT.
func (DirectBase) CheckTarget(addr string) error { return DirectTarget(addr) }
