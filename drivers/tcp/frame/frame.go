// Package frame is the tcp driver's framing: a 4-byte big-endian length of
// what follows, an 8-byte big-endian request id, then the message bytes.
// It is a package of its own so that its fuzz target builds (with coverage
// instrumentation) against a small graph, not the tcp driver's test graph.
package frame

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/rpcbench/rpcbench/internal/wire"
)

// Max bounds a frame's body (id + message): a larger length prefix is a
// protocol error, not an allocation.
const Max = wire.MaxResponseSize + 1<<20

// HeaderLen is the length prefix and the request id.
const HeaderLen = 12

// Read reads one frame from r into buf (grown as needed) and returns the
// request id and the message bytes, which alias buf.
func Read(r *bufio.Reader, buf []byte) (id uint64, msg []byte, out []byte, err error) {
	id, size, err := ReadHeader(r)
	if err != nil {
		return 0, nil, buf, err
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, err
	}
	return id, buf, buf, nil
}

// ReadHeader reads a frame header (peeked from the buffer: no copy, no
// allocation) and returns the request id and the message size.
func ReadHeader(r *bufio.Reader) (id uint64, size int, err error) {
	hdr, err := r.Peek(HeaderLen)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 8 || n > Max {
		return 0, 0, fmt.Errorf("tcp: bad frame length %d", n)
	}
	id = binary.BigEndian.Uint64(hdr[4:])
	r.Discard(HeaderLen)
	return id, int(n) - 8, nil
}
