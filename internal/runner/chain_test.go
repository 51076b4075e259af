package runner

import (
	"context"
	"testing"

	"github.com/rpcbench/rpcbench/internal/wire"
)

// TestChainHopsChecked: a chain cell's calls ask for the chain, and a
// reply counts only when it says that every hop ran (a synchronous
// chain) or that the first did (an asynchronous one).
func TestChainHopsChecked(t *testing.T) {
	for _, tc := range []struct {
		name      string
		async     bool
		hops      uint32 // what the fake responder's reply says
		wantOK    bool
		wantDepth uint32
	}{
		{"sync all hops", false, 4, true, 4},
		{"sync short", false, 3, false, 4},
		{"sync no chain", false, 0, false, 4},
		{"async first hop", true, 1, true, 4},
		{"async says all", true, 4, false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := func(_ int64, req, buf []byte) ([]byte, error) {
				var f wire.Fields
				if err := wire.Parse(req, &f); err != nil {
					return nil, err
				}
				if f.ChainDepth != tc.wantDepth || f.ChainAsync != tc.async || f.TimeoutNs <= 0 {
					t.Errorf("request asks for chain depth %d async %v timeout %d, want %d %v and the cell's timeout", f.ChainDepth, f.ChainAsync, f.TimeoutNs, tc.wantDepth, tc.async)
				}
				out := wire.Fields{ID: f.ID, Payload: f.Payload, Checksum: f.Checksum, ChainHops: tc.hops}
				return wire.Append(buf, &out), nil
			}
			m, err := RunCell(context.Background(), &funcClient{fn: fn}, Load{Payload: 16, Concurrency: 2, Calls: 40, ChainDepth: 4, ChainAsync: tc.async, Timeout: 1e9}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantOK && (m.Counts.OK != 40 || m.Counts.Mismatch != 0) {
				t.Fatalf("counts %+v, want 40 ok", m.Counts)
			}
			if !tc.wantOK && (m.Counts.Mismatch != 40 || m.Counts.OK != 0) {
				t.Fatalf("counts %+v, want 40 mismatches", m.Counts)
			}
		})
	}
}
