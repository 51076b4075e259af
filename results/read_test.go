package results_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// edited returns the sample run as JSON with edit applied to its decoded form.
func edited(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	good, err := json.Marshal(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	doc, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func cell0(m map[string]any) map[string]any { return m["cells"].([]any)[0].(map[string]any) }

func TestDecodeRejects(t *testing.T) {
	enc := sample(t).Cells[0].Histograms.Corrected
	for _, tc := range []struct {
		name  string
		doc   []byte
		kind  error
		wants []string
	}{
		{"not JSON", []byte(`{"schema_version": 1,`), results.ErrNotResult, []string{"not JSON"}},
		{"no version", []byte(`{"cells": []}`), results.ErrNotResult, []string{"no schema_version"}},
		{"version not a number", []byte(`{"schema_version": "one"}`), results.ErrNotResult, []string{"schema_version"}},
		{"other version", edited(t, func(m map[string]any) { m["schema_version"] = 99 }), results.ErrVersion, []string{"schema_version 99", "reads version 2"}},
		{"missing field", edited(t, func(m map[string]any) { delete(cell0(m), "counts") }), results.ErrSchema, []string{"cells[0]", "counts"}},
		{"negative count", edited(t, func(m map[string]any) { cell0(m)["counts"].(map[string]any)["ok"] = -1 }), results.ErrSchema, []string{"cells[0].counts.ok", "minimum"}},
		{"unknown field", edited(t, func(m map[string]any) { m["extra"] = 1 }), results.ErrSchema, []string{"extra"}},
		{"wrong type", edited(t, func(m map[string]any) { m["scenario"].(map[string]any)["repeat"] = "x" }), results.ErrSchema, []string{"scenario.repeat"}},
		{"truncated histogram", edited(t, func(m map[string]any) {
			cell0(m)["histograms"].(map[string]any)["corrected"] = enc[:len(enc)/2]
		}), results.ErrHistogram, []string{"cells[0].histograms.corrected", "tcp/mux", "repetition 1"}},
		{"corrupt histogram", edited(t, func(m map[string]any) {
			b := []byte(enc)
			for i := 12; i < len(b)-4; i += 3 {
				b[i] = 'A'
			}
			cell0(m)["histograms"].(map[string]any)["responder"] = string(b)
		}), results.ErrHistogram, []string{"cells[0].histograms.responder"}},
		{"histogram not base64", edited(t, func(m map[string]any) {
			cell0(m)["histograms"].(map[string]any)["uncorrected"] = "!!!!"
		}), results.ErrSchema, []string{"cells[0].histograms.uncorrected", "pattern"}},
		{"histogram of bad length", edited(t, func(m map[string]any) {
			cell0(m)["histograms"].(map[string]any)["all_calls"] = "AAA"
		}), results.ErrHistogram, []string{"cells[0].histograms.all_calls", "base64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := results.Decode("r.json", tc.doc)
			var re *results.ReadError
			if !errors.As(err, &re) || !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want a *ReadError of kind %v", err, tc.kind)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "r.json: ") || strings.Contains(msg, "\n") {
				t.Errorf("message %q: want one line starting with the file", msg)
			}
			for _, w := range tc.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestReadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none.json")
	_, err := results.Read(p)
	if !errors.Is(err, results.ErrUnreadable) || !strings.Contains(err.Error(), p) {
		t.Fatalf("got %v", err)
	}
}

// TestDecodeHistogramNeverPanics feeds damaged encodings of a real
// histogram to DecodeHistogram: every one is an error or a histogram.
func TestDecodeHistogramNeverPanics(t *testing.T) {
	enc := sample(t).Cells[0].Histograms.Corrected
	for n := 0; n < len(enc); n++ {
		results.DecodeHistogram(enc[:n])
		b := []byte(enc)
		b[n] ^= 0x01
		results.DecodeHistogram(string(b))
	}
}

func FuzzDecode(f *testing.F) {
	good, err := json.Marshal(sample(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"schema_version": 1}`))
	f.Add([]byte(`{"schema_version": 99}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		run, err := results.Decode("fuzz.json", data)
		if err != nil {
			var re *results.ReadError
			if !errors.As(err, &re) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// a run Decode accepts has histograms that decode
		for _, c := range run.Cells {
			for _, h := range []string{c.Histograms.Corrected, c.Histograms.Uncorrected, c.Histograms.AllCalls, c.Histograms.Responder, c.Histograms.Lateness} {
				if _, err := results.DecodeHistogram(h); err != nil {
					t.Fatalf("accepted a run with a bad histogram: %v", err)
				}
			}
		}
	})
}

func FuzzDecodeHistogram(f *testing.F) {
	f.Add(sample(f).Cells[0].Histograms.Corrected)
	f.Add("HISTFAA")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := results.DecodeHistogram(s)
		if err == nil && h == nil {
			t.Fatal("nil histogram without an error")
		}
	})
}
