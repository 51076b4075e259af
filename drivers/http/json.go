package http

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"

	"github.com/rpcbench/rpcbench/internal/wire"
)

// Call is the Call message as JSON: the body of the json variants, the
// way an HTTP+JSON service would carry it (the payload base64, as
// encoding/json writes []byte).
type Call struct {
	ID            uint64 `json:"id,omitempty"`
	Payload       []byte `json:"payload,omitempty"`
	Checksum      uint32 `json:"checksum,omitempty"`
	ServiceTimeNs int64  `json:"service_time_ns,omitempty"`
	ResponseSize  uint32 `json:"response_size,omitempty"`
	SentUnixNano  int64  `json:"sent_unix_nano,omitempty"`
	HandlerNs     int64  `json:"handler_ns,omitempty"`
	Error         string `json:"error,omitempty"`
	QueuedNs      int64  `json:"queued_ns,omitempty"`
}

// FromWire decodes Call bytes (protobuf) into c.
func (c *Call) FromWire(b []byte) error {
	var f wire.Fields
	if err := wire.Parse(b, &f); err != nil {
		return err
	}
	*c = Call{ID: f.ID, Payload: f.Payload, Checksum: f.Checksum, ServiceTimeNs: f.ServiceTimeNs,
		ResponseSize: f.ResponseSize, SentUnixNano: f.SentUnixNano, HandlerNs: f.HandlerNs, Error: string(f.Error), QueuedNs: f.QueuedNs}
	return nil
}

// AppendWire appends c encoded as Call bytes (protobuf) to b.
func (c *Call) AppendWire(b []byte) []byte {
	return wire.Append(b, &wire.Fields{ID: c.ID, Payload: c.Payload, Checksum: c.Checksum, ServiceTimeNs: c.ServiceTimeNs,
		ResponseSize: c.ResponseSize, SentUnixNano: c.SentUnixNano, HandlerNs: c.HandlerNs, Error: []byte(c.Error), QueuedNs: c.QueuedNs})
}

// wireToJSON turns Call bytes into the JSON body.
func wireToJSON(b []byte) ([]byte, error) {
	var c Call
	if err := c.FromWire(b); err != nil {
		return nil, err
	}
	return json.Marshal(&c)
}

// jsonToWire turns a JSON body into Call bytes appended to buf.
func jsonToWire(body, buf []byte) ([]byte, error) {
	var c Call
	if err := json.Unmarshal(body, &c); err != nil {
		return buf, err
	}
	return c.AppendWire(buf), nil
}

// WriteJSON writes c as JSON to w as it encodes it, the payload in
// base64 chunk by chunk: the same JSON as encoding/json's (same fields,
// same order, zero values omitted), but a writer that blocks (a peer not
// reading) stops the encoding instead of waiting for all of it.
func WriteJSON(w io.Writer, c *Call) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	b := make([]byte, 0, 256)
	first := true
	key := func(name string) {
		if first {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	uint := func(name string, v uint64) {
		if v != 0 {
			key(name)
			b = strconv.AppendUint(b, v, 10)
		}
	}
	int := func(name string, v int64) {
		if v != 0 {
			key(name)
			b = strconv.AppendInt(b, v, 10)
		}
	}
	uint("id", c.ID)
	if len(c.Payload) > 0 {
		key("payload")
		b = append(b, '"')
		if _, err := bw.Write(b); err != nil {
			return err
		}
		b = b[:0]
		enc := base64.NewEncoder(base64.StdEncoding, bw)
		for p := c.Payload; len(p) > 0; {
			n := min(len(p), 24<<10)
			if _, err := enc.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		if err := enc.Close(); err != nil {
			return err
		}
		b = append(b, '"')
	}
	uint("checksum", uint64(c.Checksum))
	int("service_time_ns", c.ServiceTimeNs)
	uint("response_size", uint64(c.ResponseSize))
	int("sent_unix_nano", c.SentUnixNano)
	int("handler_ns", c.HandlerNs)
	if c.Error != "" {
		key("error")
		e, err := json.Marshal(c.Error)
		if err != nil {
			return err
		}
		b = append(b, e...)
	}
	int("queued_ns", c.QueuedNs)
	if first {
		b = append(b, '{')
	}
	b = append(b, '}')
	if _, err := bw.Write(b); err != nil {
		return err
	}
	return bw.Flush()
}
