package netrpc

import (
	"github.com/rpcbench/rpcbench/internal/wire"
)

// Call is the argument and reply type of the Bench.Call method: the Call
// message as a Go struct, which gob or JSON (the payload base64, as
// encoding/json writes []byte) encodes on the connection.
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
