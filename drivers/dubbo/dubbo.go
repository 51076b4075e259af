// Package dubbo is the Dubbo-go driver: Dubbo-go v3's Triple protocol
// (dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol, a fork of
// connect-go) carrying the Call over the Bench service's Unary method, in
// direct mode: the client is given the responder's URL
// (http://HOST:PORT/rpcbench.v1.Bench/Unary), no registry, no metadata
// service.
//
// Both ends are built the way Dubbo-go builds them for a Triple service
// with an IDL (protocol/triple/client.go newClientManager and server.go
// Start in v3.3.0): the client is a triple_protocol.Client over an
// x/net/http2 Transport that dials plain TCP (h2c, prior knowledge, one
// connection multiplexing every call, keepalive pings after 10 s idle
// with a 20 s timeout), gRPC-compatible Triple framing (the default
// protocol of the Triple client), the protobuf codec, no client timeout
// of its own (the scenario's deadline rules; Triple sends it as
// grpc-timeout); the server registers a triple_protocol unary handler
// with the "proto" codec expected. Triple's defaults stay: the client
// advertises gzip and the handler then gzips every reply (a 64-byte call
// too), as a Dubbo-go server does. Message limits are raised from
// Dubbo-go's 4 MiB receive default to the largest Call rpcbench sends.
//
// What the driver does not use, and why: Dubbo-go's application layer
// (dubbo.NewInstance, server.NewServer, client.NewClient, the config
// package). Its Serve ends in select {} and only the process-wide
// protocol Destroy stops a server (a benchmark starts and stops several);
// it exports a MetadataService on every interface; its
// graceful_shutdown package installs a SIGINT/SIGTERM handler that calls
// os.Exit(0). This package imports none of those packages (a test checks
// that SIGINT is still the process's own). The layer it skips runs
// Dubbo-go's filter chain and cluster invoker on each call; the bytes on
// the wire are the same.
//
// Two changes from Dubbo-go's own server: it serves with net/http's
// built-in unencrypted HTTP/2 on a listener the driver opens (Dubbo-go
// wraps its mux in x/net's h2c handler and calls ListenAndServe), so that
// Close closes every connection (h2c hijacks them, out of the server's
// reach) and port 0 works; and its stream limit is the responder
// concurrency when that is above HTTP/2's default of 250.
//
// The encoded Call bytes travel as they are: the driver's codec, named
// "proto", passes them through (what a generated Dubbo-go client sends
// for the Call message).
//
// Dubbo-go's Triple package and connectrpc.com/connect (the connect
// driver) both register grpc.status.v1.Status with the protobuf runtime,
// which panics at start-up when one program links both; the
// internal/protoconflict package lets that one conflict pass during
// package initialisation.
//
// Dubbo-go logs through dubbogo/gost's logger, a zap logger writing
// coloured lines to stdout by default; this package's init replaces it
// with a no-op logger, since rpcbench's stdout is its own (serve prints
// its address there).
package dubbo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	tri "dubbo.apache.org/dubbo-go/v3/protocol/triple/triple_protocol"
	gostlogger "github.com/dubbogo/gost/log/logger"
	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/dubbo/internal/protoconflict"
	"github.com/rpcbench/rpcbench/internal/wire"
)

func init() {
	// Every protobuf file of the program is registered by now (see
	// protoconflict): conflicts panic again, as by default.
	protoconflict.Restore()
	gostlogger.SetLogger(zap.NewNop().Sugar())
}

// Driver is the dubbo driver.
type Driver struct{}

// New returns the dubbo driver.
func New() *Driver { return &Driver{} }

// VariantTriple is the only variant.
const VariantTriple = "triple"

var spec = drivers.Spec{
	Name:        "dubbo",
	Description: "Dubbo-go v3 Triple protocol in direct mode (no registry): h2c, one connection, the call's protobuf bytes",
	Kind:        drivers.Direct,
	Variants: []drivers.Variant{
		{Name: VariantTriple, Description: "Triple (gRPC-compatible framing over h2c, one multiplexed connection), protobuf codec, as Dubbo-go's client builds it for an IDL service"},
	},
	Libraries: []string{"dubbo.apache.org/dubbo-go/v3", "golang.org/x/net"},
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Transport is the dubbo driver configured for one unit.
type Transport struct {
	drivers.DirectBase
}

// Configure checks the variant.
func (*Driver) Configure(cfg drivers.Config) (drivers.Transport, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return nil, err
	}
	return &Transport{DirectBase: drivers.DirectBase{Cfg: drivers.Effective(spec, cfg)}}, nil
}

// Interface and Method name the service as Dubbo-go does (the procedure
// is /Interface/Method).
const (
	Interface = "rpcbench.v1.Bench"
	Method    = "Unary"
	Procedure = "/" + Interface + "/" + Method
)

// MaxMessage is the largest message either side accepts: Dubbo-go's 4 MiB
// receive default is raised to the largest Call rpcbench sends.
const MaxMessage = wire.MaxResponseSize + 1<<20

// Limits are MaxMessage both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessage, MaxReply: MaxMessage}
}

// frame is an encoded Call (protobuf bytes). owned says the bytes belong
// to no one else (a reply the responder's handler just made), so the codec
// may hand them to Triple instead of a copy.
type frame struct {
	b     []byte
	owned bool
}

// rawCodec passes frames through as protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

// Marshal copies the frame unless it is owned: Triple puts the slice
// Marshal returns into its buffer pool once written, so it must not be
// the caller's.
func (rawCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("dubbo: cannot marshal %T", v)
	}
	if f.owned {
		return f.b, nil
	}
	return append([]byte(nil), f.b...), nil
}

// Unmarshal appends the data (Triple's pooled buffer) to the frame.
func (rawCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("dubbo: cannot unmarshal into %T", v)
	}
	f.b = append(f.b, data...)
	return nil
}

// Options are the Triple options both ends use: the codec and the message
// limits.
func Options() []tri.Option {
	return []tri.Option{tri.WithCodec(rawCodec{}), tri.WithReadMaxBytes(MaxMessage), tri.WithSendMaxBytes(MaxMessage)}
}

// ---- responder ----

type server struct {
	hs      *http.Server
	ln      net.Listener
	serving sync.WaitGroup
}

// Serve listens on at.Listen (default 127.0.0.1:0) and serves the Bench
// service's Unary method over Triple.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	ln, err := drivers.Listen(ctx, at.Listen)
	if err != nil {
		return nil, fmt.Errorf("dubbo: listen: %w", err)
	}
	var hopts []tri.HandlerOption
	for _, o := range Options() {
		hopts = append(hopts, o)
	}
	hopts = append(hopts, tri.WithExpectedCodecName("proto"), tri.WithGroup(""), tri.WithVersion(""))
	mux := http.NewServeMux()
	mux.Handle(Procedure, tri.NewUnaryHandler(Procedure,
		func() any { return new(frame) },
		func(_ context.Context, req *tri.Request) (*tri.Response, error) {
			in, ok := req.Msg.(*frame)
			if !ok {
				return nil, tri.NewError(tri.CodeInternal, fmt.Errorf("dubbo: request %T", req.Msg))
			}
			return tri.NewResponse(&frame{b: h(in.b, nil), owned: true}), nil
		}, hopts...))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s := &server{ln: ln, hs: &http.Server{Handler: mux, Protocols: &p, ReadHeaderTimeout: time.Minute,
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: max(250, t.Cfg.Concurrency())}}}
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		s.hs.Serve(ln)
	}()
	return s, nil
}

func (s *server) Addr() string { return s.ln.Addr().String() }

// Close closes the listener and every connection and waits for the
// serving goroutine.
func (s *server) Close() error {
	err := s.hs.Close()
	s.serving.Wait()
	return err
}

// ---- caller ----

// NewHTTPClient is the HTTP client Dubbo-go's Triple client uses for a
// plain-text (non-TLS) URL: an HTTP/2 transport over TCP (h2c), with
// Dubbo-go's keepalive defaults. The dial honours its context.
func NewHTTPClient() (*http.Client, *http2.Transport) {
	var d net.Dialer
	tr := &http2.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		AllowHTTP:       true,
		ReadIdleTimeout: 10 * time.Second,
		PingTimeout:     20 * time.Second,
	}
	return &http.Client{Transport: tr}, tr
}

// NewClient is the Triple client of the Bench service's Unary method at
// addr over hc, with Dubbo-go's client options for a protobuf service
// (no timeout of its own, no group or version) and opts.
func NewClient(hc *http.Client, addr string, opts ...tri.ClientOption) *tri.Client {
	o := []tri.ClientOption{tri.WithTimeout(0), tri.WithGroup(""), tri.WithVersion("")}
	return tri.NewClient(hc, "http://"+addr+Procedure, append(o, opts...)...)
}

type client struct {
	tr *http2.Transport
	c  *tri.Client
}

// Dial makes the Triple client for addr and checks that an HTTP/2 server
// answers there (a GET, which the Triple handler refuses without calling
// the responder's handler), which also opens the connection.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	hc, tr := NewHTTPClient()
	var copts []tri.ClientOption
	for _, o := range Options() {
		copts = append(copts, o)
	}
	cl := &client{tr: tr, c: NewClient(hc, addr, copts...)}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+addr+Procedure, nil)
	resp, err := hc.Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("dubbo: connect %s: %w", addr, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return cl, nil
}

func (cl *client) NewCaller() (drivers.Caller, error) { return &caller{c: cl.c}, nil }

func (cl *client) Close() error {
	cl.tr.CloseIdleConnections()
	return nil
}

type caller struct {
	c        *tri.Client
	req, rep frame
}

func (c *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var err error
	if len(req) > AsyncAbove {
		buf, err = c.callAsync(cctx, req, buf)
	} else {
		c.req.b, c.rep.b = req, buf
		err = c.c.CallUnary(cctx, tri.NewRequest(&c.req), tri.NewResponse(&c.rep))
		buf = c.rep.b
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if tri.CodeOf(err) == tri.CodeDeadlineExceeded || errors.Is(err, context.DeadlineExceeded) || !time.Now().Before(deadline) {
			return nil, fmt.Errorf("dubbo: %w: %v", drivers.ErrTimeout, err)
		}
		return nil, fmt.Errorf("dubbo: %w", err)
	}
	return buf, nil
}

// AsyncAbove is the request size beyond which a call runs on a goroutine
// of its own and the caller waits for it or its deadline: copying and
// writing a large message can hold CallUnary past the deadline (the
// HTTP/2 flow-control window of a stalled peer), and the call must
// return by it.
const AsyncAbove = 64 << 10

type result struct {
	b   []byte
	err error
}

func (c *caller) callAsync(ctx context.Context, req, buf []byte) ([]byte, error) {
	in := &frame{b: append([]byte(nil), req...)} // the call may outlive this one
	ch := make(chan result, 1)
	go func() {
		var out frame
		err := c.c.CallUnary(ctx, tri.NewRequest(in), tri.NewResponse(&out))
		ch <- result{out.b, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return append(buf, r.b...), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
