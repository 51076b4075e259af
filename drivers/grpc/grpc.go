// Package grpc is the gRPC driver: grpc-go carrying the Call message over
// the Bench service of internal/wire/rpcbench.proto, unary or as a
// bidirectional ping-pong stream.
//
// The driver moves the encoded Call bytes as they are (a pass-through codec
// registered under the name "proto", so the bytes on the wire are exactly
// what a generated client sends); the server has reflection on, so ghz or
// grpcurl can call it with the generated schema.
package grpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	grpclib "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// Driver is the grpc driver.
type Driver struct{}

// New returns the grpc driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "grpc",
	Description: "grpc-go over HTTP/2 with the generated Bench service",
	Kind:        drivers.Direct,
	Variants: []drivers.Variant{
		{Name: "unary", Description: "one unary RPC per call"},
		{Name: "stream", Description: "a bidirectional stream per caller, one request and one reply per call (ping-pong)"},
	},
	Options: []drivers.Option{
		{Name: "connections", Default: "1", Description: "client connections (HTTP/2 multiplexes calls on each) (1-256)"},
	},
	Libraries: []string{"google.golang.org/grpc", "google.golang.org/protobuf"},
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Transport is the grpc driver configured for one unit.
type Transport struct {
	drivers.DirectBase
	connections int
}

// Configure checks the variant and options.
func (*Driver) Configure(cfg drivers.Config) (drivers.Transport, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return nil, err
	}
	n, err := drivers.IntOption(spec, cfg, "connections", 1, 256)
	if err != nil {
		return nil, err
	}
	return &Transport{DirectBase: drivers.DirectBase{Cfg: drivers.Effective(spec, cfg)}, connections: n}, nil
}

// Method names of the Bench service.
const (
	unaryMethod  = "/rpcbench.v1.Bench/Unary"
	streamMethod = "/rpcbench.v1.Bench/Stream"
)

// frame is an encoded Call carried without decoding.
type frame struct{ b []byte }

// rawCodec passes frames through and encodes anything else (the reflection
// service's messages) as protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	if f, ok := v.(*frame); ok {
		return f.b, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("grpc: cannot marshal %T", v)
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
		return fmt.Errorf("grpc: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

// ---- responder ----

type server struct {
	gs *grpclib.Server
	ln net.Listener
	wg sync.WaitGroup
}

// Serve starts a gRPC server with the Bench service and reflection on
// at.Listen (default 127.0.0.1:0).
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	ln, err := drivers.Listen(ctx, at.Listen)
	if err != nil {
		return nil, fmt.Errorf("grpc: listen: %w", err)
	}
	gs := grpclib.NewServer(grpclib.ForceServerCodec(rawCodec{}), grpclib.MaxRecvMsgSize(MaxMessage))
	gs.RegisterService(serviceDesc(h), nil)
	reflection.Register(gs)
	s := &server{gs: gs, ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		gs.Serve(ln)
	}()
	return s, nil
}

func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) Close() error {
	s.gs.Stop()
	s.wg.Wait()
	return nil
}

// serviceDesc is the generated Bench service (same names, same schema)
// with handlers that hand the undecoded request to h.
func serviceDesc(h drivers.Handler) *grpclib.ServiceDesc {
	return &grpclib.ServiceDesc{
		ServiceName: wire.Bench_ServiceDesc.ServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpclib.MethodDesc{{
			MethodName: "Unary",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpclib.UnaryServerInterceptor) (any, error) {
				var in frame
				if err := dec(&in); err != nil {
					return nil, err
				}
				return &frame{b: h(in.b, nil)}, nil
			},
		}},
		Streams: []grpclib.StreamDesc{{
			StreamName:    "Stream",
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(_ any, stream grpclib.ServerStream) error {
				var in frame
				for {
					if err := stream.RecvMsg(&in); err != nil {
						if err == io.EOF {
							return nil
						}
						return err
					}
					// A sent message must not be modified: a new reply each time.
					if err := stream.SendMsg(&frame{b: h(in.b, nil)}); err != nil {
						return err
					}
				}
			},
		}},
		Metadata: wire.Bench_ServiceDesc.Metadata,
	}
}

// MaxMessage is the largest message either side accepts: grpc-go's default
// of 4 MiB is raised to the largest Call rpcbench sends (a 64 MiB payload
// and its fields).
const MaxMessage = wire.MaxResponseSize + 1<<20

// Limits are MaxMessage both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessage, MaxReply: MaxMessage}
}

// ---- caller ----

type client struct {
	variant string
	conns   []*grpclib.ClientConn
	next    atomic.Uint32
}

// Dial creates the client connections to addr and waits until they are
// ready (grpc.NewClient connects lazily).
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	n := t.connections
	cl := &client{variant: t.Cfg.Variant}
	for i := 0; i < n; i++ {
		cc, err := grpclib.NewClient(addr,
			grpclib.WithTransportCredentials(insecure.NewCredentials()),
			grpclib.WithDefaultCallOptions(grpclib.ForceCodec(rawCodec{}), grpclib.MaxCallRecvMsgSize(MaxMessage)))
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("grpc: dial %s: %w", addr, err)
		}
		cl.conns = append(cl.conns, cc)
		if err := waitReady(ctx, cc); err != nil {
			cl.Close()
			return nil, fmt.Errorf("grpc: connect %s: %w", addr, err)
		}
	}
	return cl, nil
}

func waitReady(ctx context.Context, cc *grpclib.ClientConn) error {
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
	cc := cl.conns[int(cl.next.Add(1)-1)%len(cl.conns)]
	if cl.variant == "stream" {
		return &streamCaller{cc: cc}, nil
	}
	return &unaryCaller{cc: cc}, nil
}

func (cl *client) Close() error {
	var errs []error
	for _, cc := range cl.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// classify maps a gRPC error to the driver contract.
func classify(err error) error {
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return fmt.Errorf("grpc: %w: %v", drivers.ErrTimeout, err)
	case codes.Unavailable:
		// fail-fast with no connection up: grpc-go's picker fails the
		// call before any byte of it is written
		if strings.Contains(err.Error(), "Error while dialing") {
			return fmt.Errorf("grpc: %w: %w", drivers.ErrNotSent, err)
		}
	}
	return fmt.Errorf("grpc: %w", err)
}

type unaryCaller struct {
	cc       *grpclib.ClientConn
	req, rep frame
}

func (c *unaryCaller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
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

// streamCaller keeps one bidirectional stream open and ping-pongs on it. A
// call that times out cancels the stream; the next call opens a new one.
type streamCaller struct {
	cc       *grpclib.ClientConn
	stream   grpclib.ClientStream
	timer    *time.Timer
	req, rep frame

	mu      sync.Mutex // guards cancel and expired against the timer
	cancel  context.CancelFunc
	expired bool
}

var streamDesc = &grpclib.StreamDesc{StreamName: "Stream", ServerStreams: true, ClientStreams: true}

func (c *streamCaller) open(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	st, err := c.cc.NewStream(sctx, streamDesc, streamMethod)
	if err != nil {
		cancel()
		return err
	}
	c.stream = st
	c.mu.Lock()
	c.cancel, c.expired = cancel, false
	c.mu.Unlock()
	if c.timer == nil {
		c.timer = time.AfterFunc(time.Hour, c.expire)
		c.timer.Stop()
	}
	return nil
}

func (c *streamCaller) expire() {
	c.mu.Lock()
	c.expired = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (c *streamCaller) drop() {
	c.mu.Lock()
	cancel := c.cancel
	c.cancel = nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.stream = nil
}

func (c *streamCaller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	if c.stream == nil {
		if err := c.open(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, classify(err)
		}
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		wait = 1
	}
	c.timer.Reset(wait)
	c.req.b, c.rep.b = req, buf
	err := c.stream.SendMsg(&c.req)
	if err == nil {
		err = c.stream.RecvMsg(&c.rep)
	}
	if !c.timer.Stop() {
		// The deadline passed and the timer cancelled the stream (perhaps
		// just after the reply came): the stream is gone either way.
		c.drop()
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("grpc: stream %w after %v", drivers.ErrTimeout, wait)
		}
	}
	if err != nil {
		c.drop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify(err)
	}
	return c.rep.b, nil
}
