// Package wire is the one message encoding every driver carries (the Call
// message of rpcbench.proto) and the one responder handler every driver runs.
//
// The generated types in rpcbench.pb.go define the schema; the hot path uses
// the allocation-free encoder and parser below, which produce and accept the
// same bytes (wire_test.go checks both directions against proto.Marshal).
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rpcbench/rpcbench/internal/clock"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC-32C of b, the checksum carried in Call.checksum.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Fields is a decoded Call. Payload and Error alias the parsed buffer.
type Fields struct {
	ID            uint64
	Payload       []byte
	Checksum      uint32
	ServiceTimeNs int64
	ResponseSize  uint32
	SentUnixNano  int64
	HandlerNs     int64
	Error         []byte
	QueuedNs      int64
	ChainDepth    uint32
	ChainAsync    bool
	ChainHops     uint32
	TimeoutNs     int64
}

// Append encodes f as a Call message (proto3, fields in number order, zero
// values omitted: the bytes proto.Marshal writes with Deterministic set).
func Append(b []byte, f *Fields) []byte {
	if f.ID != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, f.ID)
	}
	if len(f.Payload) != 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, f.Payload)
	}
	if f.Checksum != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.Checksum))
	}
	if f.ServiceTimeNs != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.ServiceTimeNs))
	}
	if f.ResponseSize != 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.ResponseSize))
	}
	if f.SentUnixNano != 0 {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.SentUnixNano))
	}
	if f.HandlerNs != 0 {
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.HandlerNs))
	}
	if len(f.Error) != 0 {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, f.Error)
	}
	if f.QueuedNs != 0 {
		b = protowire.AppendTag(b, 9, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.QueuedNs))
	}
	return appendChain(b, f)
}

// appendChain appends the chain fields (10-13).
func appendChain(b []byte, f *Fields) []byte {
	if f.ChainDepth != 0 {
		b = protowire.AppendTag(b, 10, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.ChainDepth))
	}
	if f.ChainAsync {
		b = protowire.AppendTag(b, 11, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if f.ChainHops != 0 {
		b = protowire.AppendTag(b, 12, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.ChainHops))
	}
	if f.TimeoutNs != 0 {
		b = protowire.AppendTag(b, 13, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(f.TimeoutNs))
	}
	return b
}

// ErrMalformed is returned by Parse for bytes that are not a Call.
var ErrMalformed = errors.New("wire: malformed Call message")

// Parse decodes a Call into f without allocating; unknown fields are skipped.
func Parse(b []byte, f *Fields) error {
	*f = Fields{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ErrMalformed
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && (num >= 1 && num <= 13 && num != 2 && num != 8):
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return ErrMalformed
			}
			b = b[n:]
			switch num {
			case 1:
				f.ID = v
			case 3:
				f.Checksum = uint32(v)
			case 4:
				f.ServiceTimeNs = int64(v)
			case 5:
				f.ResponseSize = uint32(v)
			case 6:
				f.SentUnixNano = int64(v)
			case 7:
				f.HandlerNs = int64(v)
			case 9:
				f.QueuedNs = int64(v)
			case 10:
				f.ChainDepth = uint32(v)
			case 11:
				f.ChainAsync = v != 0
			case 12:
				f.ChainHops = uint32(v)
			case 13:
				f.TimeoutNs = int64(v)
			}
		case typ == protowire.BytesType && (num == 2 || num == 8):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ErrMalformed
			}
			b = b[n:]
			if num == 2 {
				f.Payload = v
			} else {
				f.Error = v
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return ErrMalformed
			}
			b = b[n:]
		}
	}
	return nil
}

// MaxResponseSize bounds the reply size a request may ask for (64 MiB).
const MaxResponseSize = 64 << 20

// Respond is the responder's work, identical for every driver: decode the
// request, check its payload, spend the requested service time, and append
// the reply (same id, the payload echoed at the requested size, its
// checksum, the measured handler time, and how long the request took from
// its send to the handler's start by this host's wall clock) to buf. A request that cannot be
// served gets a reply with Error set, never a dropped call.
func Respond(req, buf []byte) []byte {
	start := time.Now()
	var in Fields
	if err := Parse(req, &in); err != nil {
		return Append(buf, &Fields{Error: []byte(err.Error()), HandlerNs: int64(time.Since(start))})
	}
	out := Fields{ID: in.ID}
	if in.SentUnixNano > 0 {
		// the caller's wall clock at its send against this process's at
		// the handler's start: one clock only when both run on one host
		// (the run records it only then)
		if q := start.UnixNano() - in.SentUnixNano; q > 0 {
			out.QueuedNs = q
		}
	}
	switch {
	case Checksum(in.Payload) != in.Checksum:
		out.Error = []byte(fmt.Sprintf("request %d: payload checksum mismatch", in.ID))
	case in.ResponseSize > MaxResponseSize:
		out.Error = []byte(fmt.Sprintf("request %d: response_size %d exceeds %d", in.ID, in.ResponseSize, MaxResponseSize))
	default:
		if in.ServiceTimeNs > 0 {
			// sleep, then spin: a sleep alone overshoots sub-millisecond
			// service times several times over
			clock.Sleep(time.Duration(in.ServiceTimeNs))
		}
		if in.ResponseSize == 0 || int(in.ResponseSize) == len(in.Payload) {
			out.Payload, out.Checksum = in.Payload, in.Checksum
		} else {
			out.Payload = ResizePayload(in.Payload, int(in.ResponseSize))
			out.Checksum = Checksum(out.Payload)
		}
	}
	out.HandlerNs = int64(time.Since(start))
	if out.HandlerNs == 0 {
		out.HandlerNs = 1
	}
	return Append(buf, &out)
}

// ResizePayload returns p repeated or cut to n bytes (zeros if p is empty).
// The caller uses it to know the reply payload to expect.
func ResizePayload(p []byte, n int) []byte {
	out := make([]byte, n)
	if len(p) == 0 {
		return out
	}
	for i := 0; i < n; i += len(p) {
		copy(out[i:], p)
	}
	return out
}

// PeekServiceTime returns the service time a request asks for, or 0. Drivers
// use it to serve zero-service-time requests inline and give slow ones their
// own goroutine. A hop of a synchronous chain waits for the rest of the
// chain, calls through the same driver that a request served inline would
// hold up: it returns at least 1 ns for those.
func PeekServiceTime(req []byte) time.Duration {
	var f Fields
	if Parse(req, &f) != nil {
		return 0
	}
	if f.ChainDepth > 1 && !f.ChainAsync {
		return max(time.Duration(f.ServiceTimeNs), 1)
	}
	return time.Duration(f.ServiceTimeNs)
}

// RequestTemplate encodes a caller's requests fast: the payload and its
// checksum (fields 2 and 3), the same for every call of a caller, are
// encoded once; each call adds its id, service time, response size and
// send time around them. The bytes equal Append's for the same fields.
type RequestTemplate struct {
	body         []byte
	responseSize uint32
	chain        []byte // fields 10-13, the same for every call
}

// NewRequestTemplate prepares the requests carrying payload.
func NewRequestTemplate(payload []byte, responseSize uint32) *RequestTemplate {
	body := Append(nil, &Fields{Payload: payload, Checksum: Checksum(payload)})
	return &RequestTemplate{body: body, responseSize: responseSize}
}

// WithChain makes every request ask for a call chain of depth hops (see
// Fields.ChainDepth), asynchronous after the first hop if async, each
// onward call bounded by timeout. Depth 0 or 1 asks for none.
func (t *RequestTemplate) WithChain(depth int, async bool, timeout time.Duration) *RequestTemplate {
	t.chain = nil
	if depth > 1 {
		t.chain = appendChain(nil, &Fields{ChainDepth: uint32(depth), ChainAsync: async, TimeoutNs: int64(timeout)})
	}
	return t
}

// Append appends one request to b.
func (t *RequestTemplate) Append(b []byte, id uint64, serviceTimeNs, sentUnixNano int64) []byte {
	if id != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, id)
	}
	b = append(b, t.body...)
	if serviceTimeNs != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(serviceTimeNs))
	}
	if t.responseSize != 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t.responseSize))
	}
	if sentUnixNano != 0 {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(sentUnixNano))
	}
	return append(b, t.chain...)
}

// Limit returns Respond admitting at most n requests at once (n < 1: no
// limit): the responder concurrency every driver's responder runs with.
// Requests beyond n wait for a free slot.
func Limit(n int) func(req, buf []byte) []byte {
	if n < 1 {
		return Respond
	}
	slots := make(chan struct{}, n)
	return func(req, buf []byte) []byte {
		slots <- struct{}{}
		defer func() { <-slots }()
		return Respond(req, buf)
	}
}

// MaxRequestLen is an upper bound on the encoded length of a request with
// a payload of n bytes (every scalar field at its widest).
func MaxRequestLen(n int) int {
	return 1 + protowire.SizeVarint(uint64(n)) + n + 11*(1+binary.MaxVarintLen64)
}

// MaxReplyLen is an upper bound on the encoded length of a reply with a
// payload of n bytes.
func MaxReplyLen(n int) int { return MaxRequestLen(n) }
