package report

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"

	"github.com/rpcbench/rpcbench/results"
)

// TestBenchfmtReadsBack parses the export with x/perf's benchfmt reader,
// the one benchstat uses, and checks every cell and repetition came
// through with its values.
func TestBenchfmtReadsBack(t *testing.T) {
	run := synthRun(t, 1, append(cellSpecs(3, 1), spec{driver: "grpc", variant: "unary-2", payload: 64, conc: 4, medianUs: 80,
		options: map[string]string{"conn": "a b/c"}})...)
	run.Cells = append(run.Cells, results.Cell{Key: "broken", Driver: "rabbitmq", Kind: "broker", Mode: "closed", Concurrency: 4, Payload: 64, Error: "broker went away"})
	var buf bytes.Buffer
	if err := Benchfmt(&buf, run); err != nil {
		t.Fatal(err)
	}
	r := benchfmt.NewReader(&buf, "export.txt")
	type got struct {
		iters int
		vals  map[string]float64
		conf  map[string]string
	}
	var rs []got
	names := map[string]int{}
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Errorf("syntax error: %v", rec)
		case *benchfmt.Result:
			g := got{iters: rec.Iters, vals: map[string]float64{}, conf: map[string]string{}}
			for _, v := range rec.Values {
				g.vals[v.OrigUnit] = v.OrigValue
				if v.OrigUnit == "" {
					g.vals[v.Unit] = v.Value
				}
			}
			for _, c := range rec.Config {
				g.conf[c.Key] = string(c.Value)
			}
			base, parts := rec.Name.Parts()
			names[string(base)+strings.Join(func() []string {
				var s []string
				for _, p := range parts {
					s = append(s, string(p))
				}
				return s
			}(), "")]++
			rs = append(rs, g)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 7 {
		t.Fatalf("%d results, want 7 (2 cells × 3 repetitions + 1); names %v", len(rs), names)
	}
	for name, n := range names {
		if strings.HasPrefix(name, "RPC/driver=tcp") && n != 3 {
			t.Errorf("%s: %d lines, want 3 repetitions", name, n)
		}
		if strings.Contains(name, "unary-2") {
			t.Errorf("variant unary-2 left as is: benchfmt reads -2 as GOMAXPROCS: %s", name)
		}
	}
	first := run.Cells[0]
	g := rs[0]
	if g.iters != int(first.Counts.OK) {
		t.Errorf("iterations %d, want the %d successful calls", g.iters, first.Counts.OK)
	}
	if want := first.Latency.P99 * 1e3; g.vals["p99-ns"] != want {
		t.Errorf("p99-ns = %v, want %v", g.vals["p99-ns"], want)
	}
	if g.vals["calls/s"] != first.Throughput {
		t.Errorf("calls/s = %v, want %v", g.vals["calls/s"], first.Throughput)
	}
	if g.conf["goos"] != "linux" || g.conf["scenario"] != "synthetic" {
		t.Errorf("config %v lacks goos or scenario", g.conf)
	}
}

func TestBenchfmtFailedCellIsAComment(t *testing.T) {
	run := synthRun(t, 1)
	run.Cells = append(run.Cells, results.Cell{Key: "k", Driver: "rabbitmq", Mode: "closed", Concurrency: 4, Error: "broker went\naway"})
	var buf bytes.Buffer
	if err := Benchfmt(&buf, run); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "# BenchmarkRPC/driver=rabbitmq/variant=default/payload=0/load=c4/service=0-2: broker went away\n") {
		t.Errorf("failed cell not written as one comment line:\n%s", buf.String())
	}
}
