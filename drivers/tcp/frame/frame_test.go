package frame_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/rpcbench/rpcbench/drivers/tcp/frame"
)

func encode(id uint64, msg []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(msg)))
	b = binary.BigEndian.AppendUint64(b, id)
	return append(b, msg...)
}

func TestReadFrame(t *testing.T) {
	var in bytes.Buffer
	in.Write(encode(7, []byte("hello")))
	in.Write(encode(1<<40, nil))
	r := bufio.NewReader(&in)
	id, msg, buf, err := frame.Read(r, nil)
	if err != nil || id != 7 || string(msg) != "hello" {
		t.Fatalf("first frame: %d %q %v", id, msg, err)
	}
	id, msg, _, err = frame.Read(r, buf)
	if err != nil || id != 1<<40 || len(msg) != 0 {
		t.Fatalf("second frame: %d %q %v", id, msg, err)
	}
	if _, _, _, err := frame.Read(r, nil); err == nil {
		t.Fatal("read past the end: want an error")
	}
	bad := binary.BigEndian.AppendUint32(nil, 3) // shorter than the id
	if _, _, _, err := frame.Read(bufio.NewReader(bytes.NewReader(append(bad, make([]byte, 8)...))), nil); err == nil {
		t.Fatal("length 3: want an error")
	}
	huge := binary.BigEndian.AppendUint32(nil, frame.Max+1)
	if _, _, _, err := frame.Read(bufio.NewReader(bytes.NewReader(append(huge, make([]byte, 8)...))), nil); err == nil {
		t.Fatal("oversized length: want an error")
	}
	trunc := encode(9, []byte("truncated"))
	if _, _, _, err := frame.Read(bufio.NewReader(bytes.NewReader(trunc[:len(trunc)-2])), nil); err == nil {
		t.Fatal("truncated frame: want an error")
	}
}

// FuzzReadFrame: any byte stream either decodes into frames that re-encode
// to the same bytes, or fails cleanly; never a panic or a huge allocation.
func FuzzReadFrame(f *testing.F) {
	f.Add(encode(1, []byte("x")))
	f.Add(append(encode(2, nil), encode(3, []byte("abc"))...))
	f.Add([]byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		var buf []byte
		var consumed []byte
		for {
			id, msg, b, err := frame.Read(r, buf)
			buf = b
			if err != nil {
				break
			}
			if len(msg) > len(data) {
				t.Fatalf("message of %d bytes from %d input bytes", len(msg), len(data))
			}
			consumed = append(consumed, encode(id, msg)...)
		}
		if !bytes.HasPrefix(data, consumed) {
			t.Fatalf("decoded frames do not re-encode to the input prefix")
		}
	})
}
