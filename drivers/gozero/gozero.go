// Package gozero is the go-zero driver: a zrpc server and client (gRPC
// underneath) in direct mode (no etcd), carrying the Call message over the
// Bench service of internal/wire/rpcbench.proto as one unary RPC per call.
//
// Both sides are configured as users get them: the configuration structs
// are filled with go-zero's defaults (conf.FillDefault, what loading a YAML
// file gives), so the default variant runs zrpc's middleware: on the server
// tracing, panic recovery, per-call stat logging, Prometheus metrics, the
// adaptive breaker and CPU-based load shedding (CpuThreshold 900, option
// cpu-threshold); on the
// client tracing, slow-call logging, metrics, the breaker and the p2c_ewma
// balancer. The no-middleware variant turns every switch off. Four
// defaults are changed in both variants: zrpc's 2 s call timeout is off
// (0) on both sides, so a call's deadline is the scenario's (the core
// sets it on each call, gRPC carries it to the server); the dev server
// (an HTTP server on :6060) is off; logx writes to io.Discard (log lines
// are still formatted at the default info level, only not written:
// rpcbench's stdout is its own); and the Bench method's content is not
// logged (zrpc's documented switches: StatConf.IgnoreContentMethods on
// the server, DontLogClientContentForMethod on the client). With content
// logging on, the server formats every request into an info line and the
// client formats a failed call's whole request with %v: for a 1 MiB
// request that takes 100-200 ms, and a call that fails at its deadline
// returns that much later.
//
// The encoded Call bytes travel as they are, through a pass-through codec
// registered under the name "proto", as in the grpc driver.
//
// go-zero's core/proc installs a process-wide SIGINT/SIGTERM handler when
// it is imported, which re-sends the signal 5.5 s later (its forced quit):
// in rpcbench that is a second Ctrl-C, which exits before partial results
// and brokers are dealt with. This package's init resets those signals, so
// that rpcbench's own handler, installed later in main, is the only one.
package gozero

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/zrpc"
	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

func init() {
	// Undo go-zero's signal handling (see the package comment); rpcbench's
	// main installs its own after every package init.
	signal.Reset(syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	// The first logx.SetUp wins (later ones, e.g. in zrpc.NewServer, are
	// ignored): set it up with the defaults, then send it nowhere.
	var lc logx.LogConf
	if err := conf.FillDefault(&lc); err == nil {
		_ = logx.SetUp(lc)
	}
	logx.SetWriter(logx.NewWriter(io.Discard))
	zrpc.DontLogClientContentForMethod(unaryMethod)
}

// Driver is the gozero driver.
type Driver struct{}

// New returns the gozero driver.
func New() *Driver { return &Driver{} }

// Variant names.
const (
	VariantMiddleware   = "middleware"
	VariantNoMiddleware = "no-middleware"
)

var spec = drivers.Spec{
	Name:        "gozero",
	Description: "go-zero zrpc (gRPC) in direct mode, configured with go-zero's defaults",
	Kind:        drivers.Direct,
	Variants: []drivers.Variant{
		{Name: VariantMiddleware, Description: "zrpc's default middleware on: load shedding, breaker, stat logging, metrics, tracing, recovery; p2c_ewma balancer"},
		{Name: VariantNoMiddleware, Description: "every zrpc middleware switch off and no load shedding (CpuThreshold 0)"},
	},
	Options: []drivers.Option{
		{Name: "cpu-threshold", Default: "900", Description: "middleware variant: the server's CpuThreshold, in per mille of the CPU (go-zero's default 900; 0 turns load shedding off). go-zero reads the CPU of the whole cgroup, so other processes' load counts (0-999)"},
	},
	Libraries: []string{"github.com/zeromicro/go-zero", "google.golang.org/grpc", "google.golang.org/protobuf"},
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Transport is the gozero driver configured for one unit.
type Transport struct {
	drivers.DirectBase
	middleware   bool
	cpuThreshold int64
	// noClientBreaker turns the client's breaker off in the middleware
	// variant: only the race-detector tests set it (see export_test.go).
	noClientBreaker bool
}

// Configure checks the variant.
func (*Driver) Configure(cfg drivers.Config) (drivers.Transport, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return nil, err
	}
	cpu, err := drivers.IntOption(spec, cfg, "cpu-threshold", 0, 999)
	if err != nil {
		return nil, err
	}
	return &Transport{
		DirectBase:   drivers.DirectBase{Cfg: drivers.Effective(spec, cfg)},
		middleware:   cfg.Variant == VariantMiddleware,
		cpuThreshold: int64(cpu),
	}, nil
}

// MaxMessage is the largest message either side accepts: gRPC's 4 MiB
// default is raised to the largest Call rpcbench sends.
const MaxMessage = wire.MaxResponseSize + 1<<20

// Limits are MaxMessage both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessage, MaxReply: MaxMessage}
}

const unaryMethod = "/rpcbench.v1.Bench/Unary"

// frame is an encoded Call carried without decoding.
type frame struct{ b []byte }

// rawCodec passes frames through and encodes anything else (the health
// service's messages) as protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	if f, ok := v.(*frame); ok {
		return f.b, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("gozero: cannot marshal %T", v)
	}
	return proto.Marshal(m)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if f, ok := v.(*frame); ok {
		f.b = append(f.b[:0], data...)
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("gozero: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

// ServerConf is the zrpc server configuration the transport runs at
// listen: go-zero's defaults, with the changes the package comment names.
func (t *Transport) ServerConf(listen string) (zrpc.RpcServerConf, error) {
	var c zrpc.RpcServerConf
	if err := conf.FillDefault(&c); err != nil {
		return c, fmt.Errorf("gozero: server defaults: %w", err)
	}
	c.Name = "rpcbench"
	c.ListenOn = listen
	c.Timeout = 0
	c.DevServer.Enabled = false
	c.Middlewares.StatConf.IgnoreContentMethods = []string{unaryMethod}
	c.CpuThreshold = t.cpuThreshold
	if !t.middleware {
		c.Middlewares = zrpc.ServerMiddlewaresConf{}
		c.CpuThreshold = 0
	}
	return c, nil
}

// ClientConf is the zrpc client configuration the transport dials addr
// with, as ServerConf.
func (t *Transport) ClientConf(addr string) (zrpc.RpcClientConf, error) {
	var c zrpc.RpcClientConf
	if err := conf.FillDefault(&c); err != nil {
		return c, fmt.Errorf("gozero: client defaults: %w", err)
	}
	c.Endpoints = []string{addr}
	c.Timeout = 0
	if !t.middleware {
		c.Middlewares = zrpc.ClientMiddlewaresConf{}
	}
	if t.noClientBreaker {
		c.Middlewares.Breaker = false
	}
	return c, nil
}

// ---- responder ----

type server struct {
	addr string
	gs   *grpclib.Server
}

// Serve starts a zrpc server at at.Listen (default 127.0.0.1 on a random
// port). zrpc opens its own listener from an address, so a random port is
// found by listening on port 0 and closing; Serve retries if another
// process takes it first.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	listen := at.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("gozero: listen %q: %w", listen, err)
	}
	tries := 1
	if port == "0" {
		tries = 5
	}
	for i := 0; ; i++ {
		addr := listen
		if port == "0" {
			if addr, err = freePort(ctx, host); err != nil {
				return nil, err
			}
		}
		s, err := t.start(addr, h)
		if err == nil || i+1 >= tries {
			return s, err
		}
	}
}

func freePort(ctx context.Context, host string) (string, error) {
	ln, err := drivers.Listen(ctx, net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("gozero: listen: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// start runs zrpc's server at addr and returns once it listens (zrpc
// calls the register function right after its listener is open) or has
// failed.
func (t *Transport) start(addr string, h drivers.Handler) (*server, error) {
	c, err := t.ServerConf(addr)
	if err != nil {
		return nil, err
	}
	registered := make(chan *grpclib.Server, 1)
	rs, err := zrpc.NewServer(c, func(gs *grpclib.Server) {
		gs.RegisterService(serviceDesc(h), nil)
		registered <- gs
	})
	if err != nil {
		return nil, fmt.Errorf("gozero: server: %w", err)
	}
	rs.AddOptions(grpclib.ForceServerCodec(rawCodec{}), grpclib.MaxRecvMsgSize(MaxMessage), grpclib.MaxSendMsgSize(MaxMessage))
	failed := make(chan error, 1)
	go func() {
		// Start panics when it cannot listen; once serving it returns only
		// when go-zero's process-wide shutdown listeners run (at exit),
		// so this goroutine stays parked after Close.
		defer func() {
			if r := recover(); r != nil {
				failed <- fmt.Errorf("gozero: serve %s: %v", addr, r)
			}
		}()
		rs.Start()
		failed <- fmt.Errorf("gozero: serve %s: stopped", addr)
	}()
	select {
	case gs := <-registered:
		return &server{addr: addr, gs: gs}, nil
	case err := <-failed:
		return nil, err
	}
}

func (s *server) Addr() string { return s.addr }

// Close stops the gRPC server zrpc runs: it closes the listener and
// connections and waits for its serving goroutines.
func (s *server) Close() error {
	s.gs.Stop()
	return nil
}

// serviceDesc is the Bench service's Unary method with a handler that
// hands the undecoded request to h.
func serviceDesc(h drivers.Handler) *grpclib.ServiceDesc {
	return &grpclib.ServiceDesc{
		ServiceName: wire.Bench_ServiceDesc.ServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpclib.MethodDesc{{
			MethodName: "Unary",
			Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpclib.UnaryServerInterceptor) (any, error) {
				var in frame
				if err := dec(&in); err != nil {
					return nil, err
				}
				handle := func(_ context.Context, req any) (any, error) {
					return &frame{b: h(req.(*frame).b, nil)}, nil
				}
				if interceptor == nil {
					return handle(ctx, &in)
				}
				return interceptor(ctx, &in, &grpclib.UnaryServerInfo{Server: srv, FullMethod: unaryMethod}, handle)
			},
		}},
		Metadata: wire.Bench_ServiceDesc.Metadata,
	}
}

// ---- caller ----

type client struct {
	zc zrpc.Client
}

// Dial creates a zrpc client for addr and waits until its connection is
// ready.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	c, err := t.ClientConf(addr)
	if err != nil {
		return nil, err
	}
	zc, err := zrpc.NewClient(c, zrpc.WithDialOption(grpclib.WithDefaultCallOptions(
		grpclib.ForceCodec(rawCodec{}), grpclib.MaxCallRecvMsgSize(MaxMessage), grpclib.MaxCallSendMsgSize(MaxMessage))))
	if err != nil {
		return nil, fmt.Errorf("gozero: dial %s: %w", addr, err)
	}
	if err := WaitReady(ctx, zc.Conn()); err != nil {
		zc.Conn().Close()
		return nil, fmt.Errorf("gozero: connect %s: %w", addr, err)
	}
	return &client{zc: zc}, nil
}

// WaitReady waits until cc is connected (zrpc dials without blocking).
func WaitReady(ctx context.Context, cc *grpclib.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cc.Connect()
	for {
		st := cc.GetState()
		if st.String() == "READY" {
			return nil
		}
		if !cc.WaitForStateChange(ctx, st) {
			return fmt.Errorf("not ready (state %s): %w", st, ctx.Err())
		}
	}
}

func (cl *client) NewCaller() (drivers.Caller, error) {
	return &caller{cc: cl.zc.Conn()}, nil
}

func (cl *client) Close() error { return cl.zc.Conn().Close() }

type caller struct {
	cc       *grpclib.ClientConn
	req, rep frame
}

func (c *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	cctx, cancel := context.WithDeadline(ctx, deadline)
	c.req.b, c.rep.b = req, buf
	err := c.cc.Invoke(cctx, unaryMethod, &c.req, &c.rep)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify(err)
	}
	return c.rep.b, nil
}

// classify maps a gRPC error to the driver contract.
func classify(err error) error {
	if status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("gozero: %w: %v", drivers.ErrTimeout, err)
	}
	return fmt.Errorf("gozero: %w", err)
}
