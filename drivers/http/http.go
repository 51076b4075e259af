// Package http is the "RPC vs HTTP" driver: the standard library's
// net/http carrying one POST per call, the Call as JSON (decoded and
// encoded at both ends, so serialization is part of the measurement) or as
// its protobuf bytes.
//
// The keep-alive variants size the idle-connection pool to the callers
// (http.Transport's default of 2 per host makes every call beyond two
// callers redial) and always read bodies to EOF, so connections are
// reused; json-new-conn is the naive client, a new connection per call.
package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// Driver is the http driver.
type Driver struct{}

// New returns the http driver.
func New() *Driver { return &Driver{} }

var spec = drivers.Spec{
	Name:        "http",
	Description: "HTTP/1.1 from the standard library (net/http), one POST per call",
	Kind:        drivers.Direct,
	Variants: []drivers.Variant{
		{Name: "json", Description: "the call as JSON at both ends (encoding/json, payload base64), keep-alive connections pooled per caller"},
		{Name: "binary", Description: "the call's protobuf bytes as the body, keep-alive connections pooled per caller"},
		{Name: "json-new-conn", Description: "naive client: JSON, a new connection per call (DisableKeepAlives)"},
		{Name: "h2c", Description: "JSON over unencrypted HTTP/2 (http.Protocols), calls multiplexed on one connection"},
	},
	// The standard library's version is the run's go_version.
}

// Spec describes the driver.
func (*Driver) Spec() drivers.Spec { return spec }

// Transport is the http driver configured for one unit.
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

// MaxMessage is the largest Call either side carries: the largest reply
// rpcbench asks for and its fields.
const MaxMessage = wire.MaxResponseSize + 1<<20

// maxBody bounds a body read: MaxMessage as base64 inside JSON.
const maxBody = MaxMessage/3*4 + 64<<10

// Limits are MaxMessage both ways.
func (*Transport) Limits(context.Context, string) drivers.Limits {
	return drivers.Limits{MaxRequest: MaxMessage, MaxReply: MaxMessage}
}

// Path is where the responder takes calls.
const Path = "/rpcbench.v1.Bench/Unary"

const (
	ctJSON  = "application/json"
	ctProto = "application/x-protobuf"
)

var (
	hdrJSON  = []string{ctJSON}
	hdrProto = []string{ctProto}
)

func isJSON(variant string) bool { return variant != "binary" }

// ---- responder ----

type server struct {
	hs *nethttp.Server
	ln net.Listener
	h  drivers.Handler

	mu       sync.Mutex
	closed   bool
	inFlight sync.WaitGroup
	serving  sync.WaitGroup
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// Serve listens on at.Listen (default 127.0.0.1:0) and answers every POST
// to Path with h; it speaks HTTP/1.1 and unencrypted HTTP/2, the body
// JSON or protobuf as its Content-Type says.
func (t *Transport) Serve(ctx context.Context, at drivers.Place, h drivers.Handler) (drivers.Server, error) {
	ln, err := drivers.Listen(ctx, at.Listen)
	if err != nil {
		return nil, fmt.Errorf("http: listen: %w", err)
	}
	s := &server{ln: ln, h: h}
	mux := nethttp.NewServeMux()
	mux.Handle(Path, s)
	var p nethttp.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.hs = &nethttp.Server{Handler: mux, Protocols: &p, ReadHeaderTimeout: time.Minute, IdleTimeout: 5 * time.Minute,
		HTTP2: &nethttp.HTTP2Config{MaxConcurrentStreams: 4096}}
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		s.hs.Serve(ln)
	}()
	return s, nil
}

func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.hs.Close()
	s.serving.Wait()
	s.inFlight.Wait()
	return err
}

// readBody reads r's body into buf (grown as needed) up to limit bytes.
func readBody(r io.Reader, length int64, buf []byte, limit int) ([]byte, error) {
	if length > int64(limit) {
		return buf[:0], fmt.Errorf("body of %d bytes exceeds %d", length, limit)
	}
	if length >= 0 {
		n := int(length)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, fmt.Errorf("body exceeds %d bytes", limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (s *server) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nethttp.Error(w, "closing", nethttp.StatusServiceUnavailable)
		return
	}
	s.inFlight.Add(1)
	s.mu.Unlock()
	defer s.inFlight.Done()
	if r.Method != nethttp.MethodPost {
		nethttp.Error(w, "POST a Call", nethttp.StatusMethodNotAllowed)
		return
	}
	in := bufPool.Get().(*[]byte)
	out := bufPool.Get().(*[]byte)
	defer bufPool.Put(in)
	defer bufPool.Put(out)
	body, err := readBody(r.Body, r.ContentLength, *in, maxBody)
	*in = body[:0]
	if err != nil {
		nethttp.Error(w, "reading the body: "+err.Error(), nethttp.StatusBadRequest)
		return
	}
	hdr := w.Header()
	var reply []byte
	if r.Header.Get("Content-Type") == ctJSON {
		req, err := jsonToWire(body, nil)
		if err != nil {
			nethttp.Error(w, "decoding the JSON Call: "+err.Error(), nethttp.StatusBadRequest)
			return
		}
		*out = s.h(req, (*out)[:0])
		reply, err = wireToJSON(*out)
		if err != nil {
			nethttp.Error(w, "encoding the reply: "+err.Error(), nethttp.StatusInternalServerError)
			return
		}
		hdr["Content-Type"] = hdrJSON
	} else {
		*out = s.h(body, (*out)[:0])
		reply = *out
		hdr["Content-Type"] = hdrProto
	}
	hdr["Content-Length"] = []string{strconv.Itoa(len(reply))}
	w.Write(reply)
}

// ---- caller ----

type client struct {
	hc   *nethttp.Client
	tr   *nethttp.Transport
	url  string
	json bool
}

// Dial makes the HTTP client for addr and checks the responder answers.
func (t *Transport) Dial(ctx context.Context, addr string) (drivers.Client, error) {
	tr := &nethttp.Transport{
		// One idle connection kept per caller: HTTP/1.1 carries one call
		// at a time per connection, and the default of 2 per host redials
		// for every caller beyond two. Connections open as callers need
		// them, so the bound is the largest caller count rpcbench runs.
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{}).DialContext,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}
	switch t.Cfg.Variant {
	case "json-new-conn":
		tr.DisableKeepAlives = true
	case "h2c":
		var p nethttp.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	cl := &client{hc: &nethttp.Client{Transport: tr}, tr: tr, url: "http://" + addr + Path, json: isJSON(t.Cfg.Variant)}
	// One request that the server cannot mistake for a call: a GET is
	// refused with 405, which proves an HTTP responder of ours is there.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := nethttp.NewRequestWithContext(pctx, nethttp.MethodGet, cl.url, nil)
	resp, err := cl.hc.Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("http: connect %s: %w", addr, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != nethttp.StatusMethodNotAllowed {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("http: %s answered GET %s with %s: not an rpcbench http responder", addr, Path, resp.Status)
	}
	return cl, nil
}

func (cl *client) NewCaller() (drivers.Caller, error) {
	return &caller{cl: cl}, nil
}

func (cl *client) Close() error {
	cl.tr.CloseIdleConnections()
	return nil
}

type caller struct {
	cl   *client
	body bytes.Reader
	in   []byte
	// The calls' context, derived from the one Call is given (parent):
	// the watchdog cancels it when a call passes its deadline, and the
	// next call gets a new one. No context.WithDeadline per call: HTTP
	// does not send the deadline, and one costs a call about 1 µs.
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
	wd     *drivers.Watchdog
}

// streamAbove is the request size beyond which a JSON body is encoded
// (WriteJSON) as it is sent, by a goroutine of its own: encoding a large
// payload with encoding/json takes long enough (1 MiB: about 114 ms
// under the race detector) that a call encoding first could not return
// by its deadline, and a peer that stops reading stops a streamed
// encoding, where net/http gives up at the deadline.
const streamAbove = 64 << 10

func (c *caller) Call(ctx context.Context, deadline time.Time, req, buf []byte) ([]byte, error) {
	if c.wd == nil {
		c.wd = drivers.NewWatchdog(func(uint64) { c.cancel() })
	}
	if ctx != c.parent || c.ctx.Err() != nil {
		if c.cancel != nil {
			c.cancel()
		}
		c.parent = ctx
		c.ctx, c.cancel = context.WithCancel(ctx)
	}
	cctx := c.ctx
	c.wd.Begin(deadline)
	defer c.wd.End()
	var reqBody io.Reader
	length, ct := int64(len(req)), ctProto
	switch {
	case c.cl.json && len(req) > streamAbove:
		var jc Call
		if err := jc.FromWire(req); err != nil {
			return nil, fmt.Errorf("http: encoding the request: %w", err)
		}
		// the encoder may outlive this call: it gets its own payload
		jc.Payload = bytes.Clone(jc.Payload)
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(WriteJSON(pw, &jc)) }()
		defer pr.Close() // stops an encoder still writing
		reqBody, length, ct = pr, -1, ctJSON
	case c.cl.json:
		out, err := wireToJSON(req)
		if err != nil {
			return nil, fmt.Errorf("http: encoding the request: %w", err)
		}
		c.body.Reset(out)
		reqBody, length, ct = &c.body, int64(len(out)), ctJSON
	default:
		c.body.Reset(req)
		reqBody = &c.body
	}
	hreq, err := nethttp.NewRequestWithContext(cctx, nethttp.MethodPost, c.cl.url, reqBody)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	hreq.ContentLength = length
	hreq.Header["Content-Type"] = []string{ct}
	resp, err := c.cl.hc.Do(hreq)
	if err != nil {
		return nil, c.fail(ctx, deadline, err)
	}
	body, err := readBody(resp.Body, resp.ContentLength, c.in, maxBody)
	c.in = body[:0]
	io.Copy(io.Discard, resp.Body) // to EOF, so the connection is reused
	resp.Body.Close()
	if err != nil {
		return nil, c.fail(ctx, deadline, err)
	}
	if resp.StatusCode != nethttp.StatusOK {
		return nil, fmt.Errorf("http: responder answered %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if !c.cl.json {
		return append(buf, body...), nil
	}
	buf, err = jsonToWire(body, buf)
	if err != nil {
		return nil, fmt.Errorf("http: decoding the JSON reply: %w", err)
	}
	return buf, nil
}

func (c *caller) fail(ctx context.Context, deadline time.Time, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) || !time.Now().Before(deadline) {
		return fmt.Errorf("http: %w: %v", drivers.ErrTimeout, err)
	}
	return fmt.Errorf("http: %w", err)
}
