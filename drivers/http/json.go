package http

import (
	"encoding/json"

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
}

// FromWire decodes Call bytes (protobuf) into c.
func (c *Call) FromWire(b []byte) error {
	var f wire.Fields
	if err := wire.Parse(b, &f); err != nil {
		return err
	}
	*c = Call{ID: f.ID, Payload: f.Payload, Checksum: f.Checksum, ServiceTimeNs: f.ServiceTimeNs,
		ResponseSize: f.ResponseSize, SentUnixNano: f.SentUnixNano, HandlerNs: f.HandlerNs, Error: string(f.Error)}
	return nil
}

// AppendWire appends c encoded as Call bytes (protobuf) to b.
func (c *Call) AppendWire(b []byte) []byte {
	return wire.Append(b, &wire.Fields{ID: c.ID, Payload: c.Payload, Checksum: c.Checksum, ServiceTimeNs: c.ServiceTimeNs,
		ResponseSize: c.ResponseSize, SentUnixNano: c.SentUnixNano, HandlerNs: c.HandlerNs, Error: []byte(c.Error)})
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
