package http_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/http"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
)

func variants() []string {
	var out []string
	for _, v := range http.New().Spec().Variants {
		out = append(out, v.Name)
	}
	return out
}

func TestConformance(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			driverstest.Conformance(t, driverstest.Configure(t, http.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestResponderGone(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			driverstest.ResponderGone(t, driverstest.Configure(t, http.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestStalled(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			driverstest.Stalled(t, driverstest.Configure(t, http.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestSilentPeer(t *testing.T) {
	for _, v := range variants() {
		t.Run(v, func(t *testing.T) {
			driverstest.SilentPeer(t, driverstest.Configure(t, http.New(), drivers.Config{Variant: v}), drivers.Place{})
		})
	}
}

func TestConfigure(t *testing.T) {
	_, err := http.New().Configure(drivers.Config{Variant: "xml"})
	if err == nil || err.Error() != `http: unknown variant "xml" (want one of json, binary, json-new-conn, h2c)` {
		t.Fatalf("got %v", err)
	}
	_, err = http.New().Configure(drivers.Config{Options: map[string]string{"connections": "2"}})
	if err == nil || err.Error() != `http: unknown option "connections" (this driver has no options)` {
		t.Fatalf("got %v", err)
	}
}

// TestJSONRoundTrip: the JSON form carries every field of the Call.
func TestJSONRoundTrip(t *testing.T) {
	in := http.Call{ID: 7, Payload: []byte("abc"), Checksum: 9, ServiceTimeNs: 5, ResponseSize: 3, SentUnixNano: 11, HandlerNs: 13, Error: "e", QueuedNs: 17}
	var out http.Call
	if err := out.FromWire(in.AppendWire(nil)); err != nil {
		t.Fatal(err)
	}
	if string(out.Payload) != "abc" || out.ID != 7 || out.Checksum != 9 || out.ServiceTimeNs != 5 || out.ResponseSize != 3 || out.SentUnixNano != 11 || out.HandlerNs != 13 || out.Error != "e" || out.QueuedNs != 17 {
		t.Fatalf("got %+v", out)
	}
}

// TestOneResponderEveryVariant: the responder of the default variant
// answers callers of every variant (rpcbench serve runs one responder;
// run --target calls it with each variant).
func TestOneResponderEveryVariant(t *testing.T) {
	srv := driverstest.Serve(t, driverstest.Configure(t, http.New(), drivers.Config{}), drivers.Place{})
	for _, v := range http.New().Spec().Variants {
		t.Run(v.Name, func(t *testing.T) {
			client := driverstest.Dial(t, driverstest.Configure(t, http.New(), drivers.Config{Variant: v.Name}), srv.Addr())
			driverstest.AllOK(t, driverstest.Calls(t, client, runner.Load{Payload: 64, Concurrency: 2, Calls: 100}), 100)
		})
	}
}

// TestWriteJSON: the streaming encoder writes what encoding/json does.
func TestWriteJSON(t *testing.T) {
	for _, c := range []http.Call{
		{},
		{ID: 1},
		{Payload: []byte{1, 2, 3, 4, 5}},
		{ID: 1 << 63, Payload: bytes.Repeat([]byte("xyz"), 40000), Checksum: 1<<32 - 1, ServiceTimeNs: 5, ResponseSize: 7, SentUnixNano: -3, HandlerNs: 9, Error: "a \"quoted\" <error>\n"},
		{Checksum: 3, Error: "e"},
	} {
		want, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := http.WriteJSON(&got, &c); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("WriteJSON wrote\n%.200s\nencoding/json\n%.200s", got.Bytes(), want)
		}
	}
}

func TestResponderBack(t *testing.T) {
	driverstest.ResponderBack(t, driverstest.Configure(t, http.New(), drivers.Config{}))
}
