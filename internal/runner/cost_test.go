package runner

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/proc"
)

// loopback is a caller whose calls cross a real loopback TCP connection
// to an echo goroutine: the sockets a cost probe reads.
func loopback(tb testing.TB) *funcClient {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	var hdr [4]byte
	return &funcClient{fn: func(_ int64, req, buf []byte) ([]byte, error) {
		binary.BigEndian.PutUint32(hdr[:], uint32(len(req)))
		if _, err := conn.Write(append(hdr[:], req...)); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return nil, err
		}
		buf = slices.Grow(buf[:0], int(binary.BigEndian.Uint32(hdr[:])))[:binary.BigEndian.Uint32(hdr[:])]
		_, err := io.ReadFull(conn, buf)
		return buf, err
	}}
}

// BenchmarkCostProbe: what the cost probe (CPU, machine and socket reads
// at the window's edges) adds to a cell's p50, in one run: 1 s cells of
// one caller over loopback TCP, with and without the probe, alternating,
// each side's best p50 of the rounds (the target is at most 2%).
func BenchmarkCostProbe(b *testing.B) {
	cl := loopback(b)
	ms := []meter{{role: "caller", cpu: func(context.Context) (time.Duration, error) { return proc.SelfCPU() }, pids: selfPID}}
	cell := func(probe bool) float64 {
		load := Load{Payload: 64, Concurrency: 1, Duration: time.Second, Warmup: 100 * time.Millisecond, Timeout: time.Second}
		var p *costProbe
		if probe {
			p = probeCost(context.Background(), ms, nil, &load)
		}
		m, err := RunCell(context.Background(), cl, load, nil)
		if err != nil {
			b.Fatal(err)
		}
		if probe && p.cost(m) == nil {
			b.Fatal("the probe measured nothing")
		}
		return float64(m.Corrected.ValueAtQuantile(50))
	}
	cell(false)
	with, without := 0.0, 0.0
	for i := range max(b.N, 3) {
		w, wo := cell(true), cell(false)
		if i == 0 || w < with {
			with = w
		}
		if i == 0 || wo < without {
			without = wo
		}
	}
	b.ReportMetric(without, "p50-ns")
	b.ReportMetric(with, "probed-p50-ns")
	b.ReportMetric(with/without, "p50-ratio")
}
