package wire

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
)

func sampleFields() []Fields {
	p := []byte("some payload bytes")
	return []Fields{
		{},
		{ID: 1},
		{ID: 1<<40 | 7, Payload: p, Checksum: Checksum(p), ServiceTimeNs: 250_000, ResponseSize: 4096, SentUnixNano: time.Now().UnixNano()},
		{ID: 9, HandlerNs: 12345, Error: []byte("boom"), QueuedNs: 678},
		{ID: ^uint64(0), Payload: make([]byte, 70000), Checksum: ^uint32(0)},
		{ID: 5, Payload: p, Checksum: Checksum(p), ChainDepth: 6, ChainAsync: true, TimeoutNs: int64(5 * time.Second)},
		{ID: 5, ChainDepth: ^uint32(0), ChainHops: ^uint32(0), TimeoutNs: 1<<63 - 1, HandlerNs: 1<<63 - 1},
	}
}

func toProto(f *Fields) *Call {
	return &Call{Id: f.ID, Payload: f.Payload, Checksum: f.Checksum, ServiceTimeNs: f.ServiceTimeNs,
		ResponseSize: f.ResponseSize, SentUnixNano: f.SentUnixNano, HandlerNs: f.HandlerNs, Error: string(f.Error), QueuedNs: f.QueuedNs,
		ChainDepth: f.ChainDepth, ChainAsync: f.ChainAsync, ChainHops: f.ChainHops, TimeoutNs: f.TimeoutNs}
}

// TestAppendMatchesProto: the hand-written encoder writes exactly the bytes
// of the generated code, and Parse reads what the generated code writes.
func TestAppendMatchesProto(t *testing.T) {
	for i, f := range sampleFields() {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(toProto(&f))
		if err != nil {
			t.Fatal(err)
		}
		got := Append(nil, &f)
		if !bytes.Equal(got, want) {
			t.Errorf("case %d: Append differs from proto.Marshal\n got %x\nwant %x", i, got, want)
		}
		var back Fields
		if err := Parse(want, &back); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !proto.Equal(toProto(&back), toProto(&f)) {
			t.Errorf("case %d: Parse(proto bytes) = %+v", i, back)
		}
	}
}

func TestRespond(t *testing.T) {
	p := []byte("0123456789")
	req := Append(nil, &Fields{ID: 42, Payload: p, Checksum: Checksum(p), ResponseSize: 25})
	var r Fields
	if err := Parse(Respond(req, nil), &r); err != nil {
		t.Fatal(err)
	}
	want := ResizePayload(p, 25)
	if r.ID != 42 || len(r.Error) != 0 || !bytes.Equal(r.Payload, want) || r.Checksum != Checksum(want) || r.HandlerNs <= 0 {
		t.Fatalf("reply %+v", r)
	}
	if string(want) != "0123456789012345678901234" {
		t.Fatalf("resized payload %q", want)
	}
	// a corrupted request gets an error reply, not silence
	bad := Append(nil, &Fields{ID: 43, Payload: p, Checksum: Checksum(p) + 1})
	if err := Parse(Respond(bad, nil), &r); err != nil || r.ID != 43 || len(r.Error) == 0 {
		t.Fatalf("reply to a bad checksum: %+v %v", r, err)
	}
	if err := Parse(Respond([]byte{0xff}, nil), &r); err != nil || len(r.Error) == 0 {
		t.Fatalf("reply to garbage: %+v %v", r, err)
	}
	// service time is spent
	req = Append(nil, &Fields{ID: 44, ServiceTimeNs: int64(2 * time.Millisecond)})
	if err := Parse(Respond(req, nil), &r); err != nil || time.Duration(r.HandlerNs) < 2*time.Millisecond {
		t.Fatalf("service time: %+v %v", r, err)
	}
	if PeekServiceTime(req) != 2*time.Millisecond {
		t.Fatal("PeekServiceTime")
	}
	// the time from the request's send to the handler: a request sent 5 ms
	// ago waited at least that; one with no send time says nothing
	req = Append(nil, &Fields{ID: 45, SentUnixNano: time.Now().Add(-5 * time.Millisecond).UnixNano()})
	if err := Parse(Respond(req, nil), &r); err != nil || time.Duration(r.QueuedNs) < 5*time.Millisecond || time.Duration(r.QueuedNs) > time.Second {
		t.Fatalf("queued: %+v %v", r, err)
	}
	req = Append(nil, &Fields{ID: 46})
	if err := Parse(Respond(req, nil), &r); err != nil || r.QueuedNs != 0 {
		t.Fatalf("queued without a send time: %+v %v", r, err)
	}
}

// FuzzParse: Parse never panics, and what it accepts re-encodes to a
// message the generated code decodes to the same fields.
func FuzzParse(f *testing.F) {
	for _, s := range sampleFields() {
		f.Add(Append(nil, &s))
	}
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fl Fields
		if Parse(data, &fl) != nil || !utf8.Valid(fl.Error) {
			return // proto3 strings must be UTF-8: the generated code refuses others
		}
		var c Call
		if err := proto.Unmarshal(Append(nil, &fl), &c); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if c.Id != fl.ID || !bytes.Equal(c.Payload, fl.Payload) || c.Error != string(fl.Error) {
			t.Fatalf("round trip: %+v vs %+v", &c, fl)
		}
		fl.ServiceTimeNs = 0 // do not sleep
		if fl.ResponseSize > 1<<16 {
			fl.ResponseSize = 1 << 16
		}
		var r Fields
		if err := Parse(Respond(Append(nil, &fl), nil), &r); err != nil || r.ID != fl.ID {
			t.Fatalf("reply %+v %v", r, err)
		}
	})
}

func BenchmarkRespond(b *testing.B) {
	p := make([]byte, 64)
	req := Append(nil, &Fields{ID: 1, Payload: p, Checksum: Checksum(p), SentUnixNano: 1})
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = Respond(req, buf[:0])
	}
}

func TestRequestTemplate(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("x"), make([]byte, 300)} {
		for _, rs := range []uint32{0, 4096} {
			for _, ch := range []struct {
				depth int
				async bool
			}{{0, false}, {1, true}, {2, false}, {6, true}} {
				tmpl := NewRequestTemplate(p, rs).WithChain(ch.depth, ch.async, 3*time.Second)
				for _, st := range []int64{0, 250_000} {
					f := Fields{ID: 1<<40 | 3, Payload: p, Checksum: Checksum(p), ServiceTimeNs: st, ResponseSize: rs, SentUnixNano: 1_700_000_000_000_000_000}
					if ch.depth > 1 {
						f.ChainDepth, f.ChainAsync, f.TimeoutNs = uint32(ch.depth), ch.async, int64(3*time.Second)
					}
					want := Append(nil, &f)
					got := tmpl.Append(nil, 1<<40|3, st, 1_700_000_000_000_000_000)
					if !bytes.Equal(got, want) {
						t.Fatalf("payload %d rs %d st %d chain %+v: template %x, Append %x", len(p), rs, st, ch, got, want)
					}
					if len(got) > MaxRequestLen(len(p)) {
						t.Fatalf("request of %d bytes exceeds MaxRequestLen %d", len(got), MaxRequestLen(len(p)))
					}
				}
			}
		}
	}
}
