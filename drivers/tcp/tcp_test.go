package tcp_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/tcp"
	"github.com/rpcbench/rpcbench/internal/driverstest"
)

func TestConformance(t *testing.T) {
	for _, conns := range []string{"1", "3"} {
		t.Run("connections="+conns, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, tcp.New(), drivers.Config{Options: map[string]string{"connections": conns}}), drivers.Place{})
		})
	}
}

func TestResponderGone(t *testing.T) {
	driverstest.ResponderGone(t, driverstest.Configure(t, tcp.New(), drivers.Config{}), drivers.Place{})
}

func TestConfigure(t *testing.T) {
	d := tcp.New()
	for _, tc := range []struct {
		cfg  drivers.Config
		want string
	}{
		{drivers.Config{Options: map[string]string{"connections": "0"}}, `tcp: option connections="0": want a whole number from 1 to 256`},
		{drivers.Config{Options: map[string]string{"conns": "2"}}, `tcp: unknown option "conns" (want one of connections)`},
		{drivers.Config{Variant: "pipelined"}, `tcp: unknown variant "pipelined" (want one of mux)`},
	} {
		_, err := d.Configure(tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Configure(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	tr, err := d.Configure(drivers.Config{Options: map[string]string{"connections": "03"}})
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	// the effective configuration: default variant, canonical option values,
	// the default responder concurrency
	got := tr.Config()
	if got.Variant != "mux" || got.Options["connections"] != "3" || got.ResponderConcurrency != drivers.DefaultResponderConcurrency {
		t.Errorf("effective config = %+v", got)
	}
	if err := tr.CheckTarget("127.0.0.1"); err == nil {
		t.Errorf("CheckTarget without a port: no error")
	}
	if err := tr.CheckTarget("127.0.0.1:7000"); err != nil {
		t.Errorf("CheckTarget(127.0.0.1:7000): %v", err)
	}
}

func frame(id uint64, msg []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(msg)))
	b = binary.BigEndian.AppendUint64(b, id)
	return append(b, msg...)
}

func TestReadFrame(t *testing.T) {
	var in bytes.Buffer
	in.Write(frame(7, []byte("hello")))
	in.Write(frame(1<<40, nil))
	r := bufio.NewReader(&in)
	id, msg, buf, err := tcp.ReadFrame(r, nil)
	if err != nil || id != 7 || string(msg) != "hello" {
		t.Fatalf("first frame: %d %q %v", id, msg, err)
	}
	id, msg, _, err = tcp.ReadFrame(r, buf)
	if err != nil || id != 1<<40 || len(msg) != 0 {
		t.Fatalf("second frame: %d %q %v", id, msg, err)
	}
	if _, _, _, err := tcp.ReadFrame(r, nil); err == nil {
		t.Fatal("read past the end: want an error")
	}
	bad := binary.BigEndian.AppendUint32(nil, 3) // shorter than the id
	if _, _, _, err := tcp.ReadFrame(bufio.NewReader(bytes.NewReader(append(bad, make([]byte, 8)...))), nil); err == nil {
		t.Fatal("length 3: want an error")
	}
	huge := binary.BigEndian.AppendUint32(nil, tcp.MaxFrame+1)
	if _, _, _, err := tcp.ReadFrame(bufio.NewReader(bytes.NewReader(append(huge, make([]byte, 8)...))), nil); err == nil {
		t.Fatal("oversized length: want an error")
	}
	trunc := frame(9, []byte("truncated"))
	if _, _, _, err := tcp.ReadFrame(bufio.NewReader(bytes.NewReader(trunc[:len(trunc)-2])), nil); err == nil {
		t.Fatal("truncated frame: want an error")
	}
}

// FuzzReadFrame: any byte stream either decodes into frames that re-encode
// to the same bytes, or fails cleanly; never a panic or a huge allocation.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(1, []byte("x")))
	f.Add(append(frame(2, nil), frame(3, []byte("abc"))...))
	f.Add([]byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		var buf []byte
		var consumed []byte
		for {
			id, msg, b, err := tcp.ReadFrame(r, buf)
			buf = b
			if err != nil {
				break
			}
			if len(msg) > len(data) {
				t.Fatalf("message of %d bytes from %d input bytes", len(msg), len(data))
			}
			consumed = append(consumed, frame(id, msg)...)
		}
		if !bytes.HasPrefix(data, consumed) {
			t.Fatalf("decoded frames do not re-encode to the input prefix")
		}
	})
}

func TestStalled(t *testing.T) {
	driverstest.Stalled(t, driverstest.Configure(t, tcp.New(), drivers.Config{}), drivers.Place{})
}

func TestSilentPeer(t *testing.T) {
	driverstest.SilentPeer(t, driverstest.Configure(t, tcp.New(), drivers.Config{}), drivers.Place{})
}
