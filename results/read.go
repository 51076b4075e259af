package results

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Errors of Read and Decode: every one is bad input (the commands exit 2).
// A *ReadError wraps exactly one of them.
var (
	// ErrUnreadable: the file cannot be read (missing, permissions).
	ErrUnreadable = errors.New("cannot read result")
	// ErrNotResult: not JSON, or no schema_version.
	ErrNotResult = errors.New("not an rpcbench result")
	// ErrVersion: a result of another schema version.
	ErrVersion = errors.New("unsupported schema version")
	// ErrSchema: the document does not validate against Schema.
	ErrSchema = errors.New("result does not match the schema")
	// ErrHistogram: a histogram is truncated or corrupt.
	ErrHistogram = errors.New("corrupt histogram")
)

// ReadError is an error of Read or Decode: the file, where in it (a field
// such as cells[3].histograms.corrected, when known) and what is wrong and
// what would fix it.
type ReadError struct {
	File  string
	Field string
	Msg   string
	Kind  error // one of ErrUnreadable, ErrNotResult, ErrVersion, ErrSchema, ErrHistogram
}

func (e *ReadError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func (e *ReadError) Unwrap() error { return e.Kind }

// Read reads and checks a result file: see Decode.
func Read(path string) (*Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := ""
		switch {
		case errors.Is(err, fs.ErrNotExist):
			msg = "no such file: give the path of a result.json written by rpcbench run"
		case errors.Is(err, fs.ErrPermission):
			msg = "permission denied: make the file readable"
		default:
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			msg = "cannot read: " + err.Error()
		}
		return nil, &ReadError{File: path, Msg: msg, Kind: ErrUnreadable}
	}
	return Decode(path, data)
}

// Decode decodes a result document; file names it in errors. It refuses
// other schema versions, documents that do not validate against Schema
// (naming the first bad field) and truncated or corrupt histograms (naming
// the cell and the histogram): a Run it returns can be reported on without
// surprises. Every error is a *ReadError.
func Decode(file string, data []byte) (*Run, error) {
	bad := func(kind error, field, format string, args ...any) error {
		return &ReadError{File: file, Field: field, Msg: fmt.Sprintf(format, args...), Kind: kind}
	}
	var head struct {
		SchemaVersion *json.RawMessage `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, bad(ErrNotResult, "", "not JSON (%s): give a result.json written by rpcbench run", oneLine(err.Error()))
	}
	if head.SchemaVersion == nil {
		return nil, bad(ErrNotResult, "", "no schema_version: not an rpcbench result; give a result.json written by rpcbench run")
	}
	var version int
	if err := json.Unmarshal(*head.SchemaVersion, &version); err != nil {
		return nil, bad(ErrNotResult, "schema_version", "%s is not a version number: not an rpcbench result", oneLine(string(*head.SchemaVersion)))
	}
	if version != SchemaVersion {
		return nil, bad(ErrVersion, "", "schema_version %d, but this rpcbench reads version %d: use the rpcbench release that wrote it, or re-run the benchmark", version, SchemaVersion)
	}
	if err := Validate(data); err != nil {
		field, msg := schemaProblem(err)
		return nil, bad(ErrSchema, field, "%s (the file does not match results/schema.json: was it edited by hand or cut short?)", msg)
	}
	var run Run
	if err := json.Unmarshal(data, &run); err != nil {
		return nil, bad(ErrSchema, "", "%s", oneLine(err.Error()))
	}
	for i := range run.Cells {
		c := &run.Cells[i]
		h := c.Histograms
		for _, x := range []struct{ name, enc string }{
			{"corrected", h.Corrected}, {"uncorrected", h.Uncorrected}, {"all_calls", h.AllCalls},
			{"responder", h.Responder}, {"lateness", h.Lateness},
		} {
			if _, err := DecodeHistogram(x.enc); err != nil {
				return nil, bad(ErrHistogram, fmt.Sprintf("cells[%d].histograms.%s", i, x.name),
					"cell %s repetition %d: %s: the file is damaged; re-run the benchmark or restore the file", CellKey(c), c.Repetition, oneLine(err.Error()))
			}
		}
	}
	return &run, nil
}

// schemaProblem names the first failing field of a schema validation
// error and says what is wrong with it.
func schemaProblem(err error) (field, msg string) {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "", oneLine(err.Error())
	}
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0] // the first leaf says what is wrong, and where
	}
	msg = oneLine(ve.Error())
	if out := ve.BasicOutput(); out.Error != nil {
		msg = oneLine(out.Error.String())
	}
	return pointerField(ve.InstanceLocation), msg
}

// pointerField turns a location in the document ([cells 0 counts ok])
// into a field name (cells[0].counts.ok); the root is "(document)".
func pointerField(loc []string) string {
	if len(loc) == 0 {
		return "(document)"
	}
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Limits on a stored histogram, checked before it is decoded: the decoder
// allocates what the header asks for and decompresses without bound.
const (
	maxHistEncoded  = 16 << 20
	maxHistInflated = 16 << 20
	maxHistHighest  = int64(24 * time.Hour)
	histHeaderSize  = 40
	v2Compressed    = 0x1c849304
	v2Plain         = 0x1c849303
)

// checkHistogram checks the framing and header of an encoded histogram
// (base64 of V2 compressed) so that decoding it can neither panic on a
// short buffer nor allocate without bound.
func checkHistogram(s string) error {
	if len(s) > maxHistEncoded {
		return fmt.Errorf("%d bytes encoded, more than %d", len(s), maxHistEncoded)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not base64: %v", err)
	}
	if len(raw) < 8 {
		return fmt.Errorf("truncated: %d bytes, want at least 8", len(raw))
	}
	cookie := int32(binary.BigEndian.Uint32(raw[0:4])) &^ 0xf0
	n := int32(binary.BigEndian.Uint32(raw[4:8]))
	if cookie != v2Compressed {
		return fmt.Errorf("not an HdrHistogram V2 compressed encoding (cookie %#x)", cookie)
	}
	if n < 0 || int(n) > len(raw)-8 {
		return fmt.Errorf("truncated: %d compressed bytes announced, %d present", n, len(raw)-8)
	}
	z, err := zlib.NewReader(bytes.NewReader(raw[8 : 8+n]))
	if err != nil {
		return fmt.Errorf("compressed contents: %v", err)
	}
	defer z.Close()
	inflated, err := io.ReadAll(io.LimitReader(z, maxHistInflated+1))
	if err != nil {
		return fmt.Errorf("compressed contents: %v", err)
	}
	if len(inflated) > maxHistInflated {
		return fmt.Errorf("more than %d bytes uncompressed", maxHistInflated)
	}
	if len(inflated) < histHeaderSize {
		return fmt.Errorf("truncated: %d bytes uncompressed, want a %d-byte header", len(inflated), histHeaderSize)
	}
	hc := int32(binary.BigEndian.Uint32(inflated[0:4])) &^ 0xf0
	digits := int32(binary.BigEndian.Uint32(inflated[12:16]))
	lowest := int64(binary.BigEndian.Uint64(inflated[16:24]))
	highest := int64(binary.BigEndian.Uint64(inflated[24:32]))
	switch {
	case hc != v2Plain:
		return fmt.Errorf("not an HdrHistogram V2 encoding (cookie %#x)", hc)
	case digits < 1 || digits > 5:
		return fmt.Errorf("%d significant digits, want 1 to 5", digits)
	case lowest < 1 || highest < 2*lowest || highest > maxHistHighest:
		return fmt.Errorf("range %d to %d ns, want at least 1 ns to at most %d ns", lowest, highest, maxHistHighest)
	}
	return nil
}
