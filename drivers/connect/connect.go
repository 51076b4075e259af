// Package connect is the Connect driver: connectrpc.com/connect (v1)
// carrying the Call over the Bench service's Unary procedure, with the
// protocols one Connect handler serves (Connect, gRPC, gRPC-Web) and the
// Connect protocol's two codecs (protobuf, JSON).
//
// The protobuf codecs move the encoded Call bytes as they are (a
// pass-through codec named "proto": the bytes on the wire are what a
// generated client sends). The JSON codec is Connect's: protojson of the
// generated Call at both ends, so its serialization is measured.
package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	connectlib "connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// Driver is the connect driver.
type Driver struct{}

// New returns the connect driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "connect",
	Description: "connectrpc.com/connect: one handler serving the Connect, gRPC and gRPC-Web protocols",
	Kind:        drivers.Direct,
	Variants: []drivers.Variant{
		{Name: "connect", Description: "the Connect protocol, protobuf codec"},
		{Name: "connect-json", Description: "the Connect protocol, JSON codec (protojson at both ends)"},
		{Name: "grpc", Description: "the gRPC protocol (HTTP/2 only), protobuf codec"},
		{Name: "grpcweb", Description: "the gRPC-Web protocol, protobuf codec"},
	},
	Options: []drivers.Option{
		{Name: "http", Default: "h2c", Description: "h2c (unencrypted HTTP/2, calls multiplexed on one connection) or http1 (HTTP/1.1, a pooled connection per caller; not for grpc)"},
		{Name: "compress-min", Default: "1024", Description: "the responder's WithCompressMinBytes: replies under this many bytes are sent uncompressed, as Connect's documentation advises for small messages (0: Connect's default, every reply gzipped for a client that accepts gzip, as its clients do by default) (0-67108864)"},
	},
	Libraries: []string{"connectrpc.com/connect", "google.golang.org/protobuf"},
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Transport is the connect driver configured for one unit.
type Transport struct {
	drivers.DirectBase
	http1       bool
	compressMin int
}

// Configure checks the variant and options.
func (*Driver) Configure(cfg drivers.Config) (drivers.Transport, error) {
	if err := drivers.CheckConfig(spec, &cfg); err != nil {
		return nil, err
	}
	t := &Transport{DirectBase: drivers.DirectBase{Cfg: drivers.Effective(spec, cfg)}}
	switch v := drivers.OptionValue(spec, cfg, "http"); v {
	case "h2c":
	case "http1":
		if t.Cfg.Variant == "grpc" {
			return nil, fmt.Errorf("connect: option http=http1: the grpc protocol needs HTTP/2 (use http=h2c, or variant grpcweb)")
		}
		t.http1 = true
	default:
		return nil, fmt.Errorf("connect: option http=%q: want h2c or http1", v)
	}
	n, err := drivers.IntOption(spec, cfg, "compress-min", 0, 64<<20)
	if err != nil {
		return nil, err
	}
	t.compressMin = n
	return t, nil
}

// Procedure is the Bench service's unary procedure.
const Procedure = "/rpcbench.v1.Bench/Unary"

// MaxMessage is the largest message either side accepts (Connect has no
// default limit; this is the largest Call rpcbench sends).
const MaxMessage = wire.MaxResponseSize + 1<<20

// Limits are MaxMessage both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessage, MaxReply: MaxMessage}
}

// frame is an encoded Call (protobuf bytes).
type frame struct{ b []byte }

// rawCodec passes frames through as protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("connect: cannot marshal %T", v)
	}
	return f.b, nil
}

// MarshalAppend copies the frame into Connect's buffer (which Connect
// pools and reuses: Marshal's result must not be the caller's bytes).
func (rawCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("connect: cannot marshal %T", v)
	}
	return append(dst, f.b...), nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("connect: cannot unmarshal into %T", v)
	}
	f.b = append(f.b[:0], data...) // data is Connect's pooled buffer
	return nil
}

// jsonCodec is Connect's JSON codec (protojson of the generated Call,
// as connect.WithProtoJSON marshals it, unknown fields discarded as
// Connect does) for frames. The step between the frame's bytes and the
// generated Call is wire.Parse and wire.Append, which neither reflect nor
// copy the payload: what is measured is protojson, not a second protobuf
// encoding a generated client would not do.
type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }

func (c jsonCodec) Marshal(v any) ([]byte, error) { return c.MarshalAppend(nil, v) }

func (jsonCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("connect: cannot marshal %T", v)
	}
	var w wire.Fields
	if err := wire.Parse(f.b, &w); err != nil {
		return nil, err
	}
	m := wire.Call{Id: w.ID, Payload: w.Payload, Checksum: w.Checksum, ServiceTimeNs: w.ServiceTimeNs,
		ResponseSize: w.ResponseSize, SentUnixNano: w.SentUnixNano, HandlerNs: w.HandlerNs,
		Error: string(w.Error), QueuedNs: w.QueuedNs, ChainDepth: w.ChainDepth, ChainAsync: w.ChainAsync,
		ChainHops: w.ChainHops, TimeoutNs: w.TimeoutNs}
	return protojson.MarshalOptions{}.MarshalAppend(dst, &m)
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("connect: cannot unmarshal into %T", v)
	}
	if len(data) == 0 {
		return errors.New("connect: zero-length payload is not a valid JSON object")
	}
	var m wire.Call
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &m); err != nil {
		return err
	}
	f.b = wire.Append(f.b[:0], &wire.Fields{ID: m.Id, Payload: m.Payload, Checksum: m.Checksum,
		ServiceTimeNs: m.ServiceTimeNs, ResponseSize: m.ResponseSize, SentUnixNano: m.SentUnixNano,
		HandlerNs: m.HandlerNs, Error: []byte(m.Error), QueuedNs: m.QueuedNs, ChainDepth: m.ChainDepth,
		ChainAsync: m.ChainAsync, ChainHops: m.ChainHops, TimeoutNs: m.TimeoutNs})
	return nil
}

// ---- responder ----

type server struct {
	hs      *http.Server
	ln      net.Listener
	serving sync.WaitGroup
}

// Serve listens on at.Listen (default 127.0.0.1:0) and serves the Bench
// procedure over HTTP/1.1 and unencrypted HTTP/2, every protocol and codec.
// Replies under compress-min bytes go uncompressed: gzip of a 64-byte
// reply resets a compressor whose tables are 640 KiB (a fifth of the CPU
// of a call at 64 callers) to send a longer message, and Connect's
// documentation advises a threshold for small messages.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	ln, err := drivers.Listen(ctx, at.Listen)
	if err != nil {
		return nil, fmt.Errorf("connect: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Procedure, connectlib.NewUnaryHandler(Procedure,
		func(_ context.Context, req *connectlib.Request[frame]) (*connectlib.Response[frame], error) {
			return connectlib.NewResponse(&frame{b: h(req.Msg.b, nil)}), nil
		},
		connectlib.WithCodec(rawCodec{}), connectlib.WithCodec(jsonCodec{}),
		connectlib.WithCompressMinBytes(t.compressMin),
		connectlib.WithReadMaxBytes(MaxMessage/3*4), connectlib.WithSendMaxBytes(MaxMessage/3*4)))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s := &server{ln: ln, hs: &http.Server{Handler: mux, Protocols: &p, ReadHeaderTimeout: time.Minute,
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 4096}}}
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		s.hs.Serve(ln)
	}()
	return s, nil
}

func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) Close() error {
	err := s.hs.Close()
	s.serving.Wait()
	return err
}

// ---- caller ----

type client struct {
	tr *http.Transport
	c  *connectlib.Client[frame, frame]
}

// NewHTTPClient is the HTTP client the driver's callers share: h2c (one
// connection multiplexing every call) or HTTP/1.1 with an idle pool
// sized for every caller.
func NewHTTPClient(http1 bool) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{}).DialContext,
	}
	if !http1 {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return &http.Client{Transport: tr}, tr
}

// Dial makes the Connect client for addr and checks it answers a call.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	hc, tr := NewHTTPClient(t.http1)
	// No read limit: the responder's send limit bounds every reply, and
	// Connect's read limit costs a LimitedReader on every call.
	opts := []connectlib.ClientOption{connectlib.WithSendMaxBytes(MaxMessage / 3 * 4)}
	switch t.Cfg.Variant {
	case "connect-json":
		opts = append(opts, connectlib.WithCodec(jsonCodec{}))
	case "grpc":
		opts = append(opts, connectlib.WithCodec(rawCodec{}), connectlib.WithGRPC())
	case "grpcweb":
		opts = append(opts, connectlib.WithCodec(rawCodec{}), connectlib.WithGRPCWeb())
	default:
		opts = append(opts, connectlib.WithCodec(rawCodec{}))
	}
	cl := &client{tr: tr, c: connectlib.NewClient[frame, frame](hc, "http://"+addr+Procedure, opts...)}
	// A GET that Connect refuses without calling the handler proves an
	// HTTP server is there.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+addr+Procedure, nil)
	resp, err := hc.Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("connect: connect %s: %w", addr, err)
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
	c   *connectlib.Client[frame, frame]
	req frame
}

func (c *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var res *connectlib.Response[frame]
	var err error
	if len(req) > AsyncAbove {
		res, err = c.callAsync(cctx, req)
	} else {
		c.req.b = req
		res, err = c.c.CallUnary(cctx, connectlib.NewRequest(&c.req))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if connectlib.CodeOf(err) == connectlib.CodeDeadlineExceeded || errors.Is(err, context.DeadlineExceeded) || !time.Now().Before(deadline) {
			return nil, fmt.Errorf("connect: %w: %v", drivers.ErrTimeout, err)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	// The reply's bytes are the codec's own copy (rawCodec.Unmarshal and
	// jsonCodec.Unmarshal fill a new frame per call): returned as they
	// are, not copied again into buf.
	return res.Msg.b, nil
}

// AsyncAbove is the request size beyond which a call runs on a goroutine
// of its own and the caller waits for it or its deadline: encoding and
// copying a large message (a 1 MiB payload as protojson takes hundreds of
// milliseconds under the race detector) can hold Connect's CallUnary past
// the deadline, and the call must return by it.
const AsyncAbove = 64 << 10

type result struct {
	res *connectlib.Response[frame]
	err error
}

func (c *caller) callAsync(ctx context.Context, req []byte) (*connectlib.Response[frame], error) {
	f := &frame{b: append([]byte(nil), req...)} // the call may outlive this one
	ch := make(chan result, 1)
	go func() {
		res, err := c.c.CallUnary(ctx, connectlib.NewRequest(f))
		ch <- result{res, err}
	}()
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
