package connect

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rpcbench/rpcbench/internal/wire"
)

// fullCall is a Call with every field of the message set (found by
// reflection, so a field added to rpcbench.proto is covered too).
func fullCall(t *testing.T) *wire.Call {
	t.Helper()
	var m wire.Call
	r := m.ProtoReflect()
	fs := r.Descriptor().Fields()
	for i := 0; i < fs.Len(); i++ {
		fd := fs.Get(i)
		n := int64(fd.Number())
		switch fd.Kind() {
		case protoreflect.Uint64Kind:
			r.Set(fd, protoreflect.ValueOfUint64(1<<60+uint64(n)))
		case protoreflect.Uint32Kind:
			r.Set(fd, protoreflect.ValueOfUint32(1<<30+uint32(n)))
		case protoreflect.Int64Kind:
			r.Set(fd, protoreflect.ValueOfInt64(-(1<<50)-n))
		case protoreflect.BoolKind:
			r.Set(fd, protoreflect.ValueOfBool(true))
		case protoreflect.BytesKind:
			r.Set(fd, protoreflect.ValueOfBytes([]byte{0, 1, 2, byte(n)}))
		case protoreflect.StringKind:
			r.Set(fd, protoreflect.ValueOfString("a \"quoted\" <field>"))
		default:
			t.Fatalf("field %s: kind %v not covered by this test", fd.Name(), fd.Kind())
		}
	}
	return &m
}

// TestJSONCodec: the JSON codec sends what Connect's own JSON codec sends
// for the generated Call, and turns it back into the exact bytes a
// generated client's protobuf encoding gives, every field included.
func TestJSONCodec(t *testing.T) {
	m := fullCall(t)
	pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jsonCodec{}.Marshal(&frame{b: pb})
	if err != nil {
		t.Fatal(err)
	}
	want, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("JSON\n%s\nwant (protojson of the generated Call)\n%s", got, want)
	}
	var f frame
	if err := (jsonCodec{}).Unmarshal(got, &f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.b, pb) {
		t.Fatalf("decoded to %x, want %x", f.b, pb)
	}
	if err := (jsonCodec{}).Unmarshal([]byte(`{"id":"1","unknownField":3}`), &f); err != nil {
		t.Fatalf("unknown field: %v (Connect's JSON codec discards them)", err)
	}
	if err := (jsonCodec{}).Unmarshal(nil, &f); err == nil {
		t.Fatal("an empty body decoded")
	}
}
