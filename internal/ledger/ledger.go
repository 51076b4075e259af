// Package ledger is the responder's record of every request it handled,
// kept so a fault run can account for every call: one fixed-size record
// per handling (call id, responder incarnation, handler start), written to
// a file with one write(2) before the handler returns, so before the reply
// is sent. A record that reached the kernel survives SIGKILL of the
// responder: the page cache holds it.
//
// The caller side's record of the same calls is the runner's journal; Join
// puts the two together.
package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/wire"
)

// RecordSize is the size of one record on disk.
const RecordSize = 24

// Record is one handling of a request by a responder.
type Record struct {
	// ID is the call id the request carried (0 if it carried none or
	// could not be parsed).
	ID uint64
	// Incarnation numbers the responder processes of one unit: 1 for the
	// first, one more for each restart.
	Incarnation uint32
	// Start is when the handler started (wall clock, Unix ns).
	Start int64
	// Redelivered is set, when the ledger is read, on every handling of an
	// id that an earlier record had handled already: rpcbench's callers
	// never send a call id twice, so such a handling is the broker's
	// redelivery (of a request a responder took and never acknowledged).
	Redelivered bool
}

func (r Record) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, r.ID)
	b = binary.LittleEndian.AppendUint32(b, r.Incarnation)
	b = binary.LittleEndian.AppendUint32(b, 0) // reserved (flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.Start))
	return b
}

func decode(b []byte) Record {
	return Record{
		ID:          binary.LittleEndian.Uint64(b),
		Incarnation: binary.LittleEndian.Uint32(b[8:]),
		Start:       int64(binary.LittleEndian.Uint64(b[16:])),
	}
}

// Writer appends records to a ledger file.
type Writer struct {
	f           *os.File
	incarnation uint32
	mu          sync.Mutex
	buf         [RecordSize]byte
	err         error
}

// Open opens (creating it if need be) the ledger file at path for
// appending, for the responder incarnation given.
func Open(path string, incarnation int) (*Writer, error) {
	if incarnation < 1 {
		return nil, fmt.Errorf("ledger: incarnation %d: want 1 or more", incarnation)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return &Writer{f: f, incarnation: uint32(incarnation)}, nil
}

// Write records one handling of the request req, now.
func (w *Writer) Write(req []byte) {
	var f wire.Fields
	_ = wire.Parse(req, &f) // an unparsable request is recorded with id 0
	r := Record{ID: f.ID, Incarnation: w.incarnation, Start: time.Now().UnixNano()}
	w.mu.Lock()
	defer w.mu.Unlock()
	// one write(2) of the whole record: with O_APPEND it lands whole, and
	// it is in the kernel before the handler returns
	if _, err := w.f.Write(r.append(w.buf[:0])); err != nil && w.err == nil {
		w.err = err
	}
}

// Err is the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// Wrap returns h recording every request in w before handling it.
func Wrap(h drivers.Handler, w *Writer) drivers.Handler {
	return func(req, buf []byte) []byte {
		w.Write(req)
		return h(req, buf)
	}
}

// Size is the ledger file's length in whole records' bytes (0 when it
// does not exist yet): where a reader that wants only later records
// starts.
func Size(path string) (int64, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Size() - st.Size()%RecordSize, nil
}

// Read returns the whole records from offset on, and the offset after
// them (a record still being written is left for the next read).
func Read(path string, offset int64) ([]Record, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, offset, nil
	}
	if err != nil {
		return nil, offset, fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, fmt.Errorf("ledger: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, offset, fmt.Errorf("ledger: %w", err)
	}
	n := len(data) / RecordSize
	out := make([]Record, n)
	for i := range out {
		out[i] = decode(data[i*RecordSize:])
	}
	return out, offset + int64(n*RecordSize), nil
}

// MarkRedelivered sets Redelivered on every record whose id an earlier one
// in recs (in ledger order) has already.
func MarkRedelivered(recs []Record) {
	seen := make(map[uint64]bool, len(recs))
	for i := range recs {
		id := recs[i].ID
		recs[i].Redelivered = seen[id]
		seen[id] = true
	}
}
