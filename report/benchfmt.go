package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/rpcbench/rpcbench/results"
)

// Benchfmt writes run in the Go benchmark format, one line per cell and
// repetition, so benchstat works on rpcbench results:
//
//	BenchmarkRPC/driver=tcp/variant=default/payload=64/load=c8/service=0-2  51234  41000 p50-ns  ...  10245 calls/s  0 errors
//
// The iteration count is the number of successful calls. Latency units are
// nanoseconds of corrected latency. Sub-benchmark names are key=value so
// benchstat can slice by them (e.g. -col /driver). Cells without a
// successful call are written as comments.
func Benchfmt(w io.Writer, run *results.Run) error {
	bw := bufio.NewWriter(w)
	e := run.Environment
	config := [][2]string{
		{"goos", e.OS}, {"goarch", e.Arch}, {"cpu", e.CPUModel}, {"pkg", "github.com/rpcbench/rpcbench"},
		{"rpcbench-version", e.RpcbenchVersion}, {"commit", e.Commit}, {"go-version", e.GoVersion},
		{"scenario", run.Scenario.Name}, {"run", run.ID},
	}
	for _, kv := range config {
		if v := oneLine(kv[1]); v != "" && v != "unknown" {
			fmt.Fprintf(bw, "%s: %s\n", kv[0], v)
		}
	}
	for _, u := range []string{"p50-ns", "p90-ns", "p99-ns", "p99.9-ns", "p99.99-ns", "errors"} {
		fmt.Fprintf(bw, "Unit %s better=lower\n", u)
	}
	fmt.Fprintf(bw, "Unit calls/s better=higher\n")

	cells := make([]*results.Cell, len(run.Cells))
	for i := range run.Cells {
		cells[i] = &run.Cells[i]
	}
	// keep the run's order of cells, repetitions of a cell together
	first := map[string]int{}
	for i, c := range cells {
		if _, ok := first[results.CellKey(c)]; !ok {
			first[results.CellKey(c)] = i
		}
	}
	sort.SliceStable(cells, func(i, j int) bool {
		if a, b := first[results.CellKey(cells[i])], first[results.CellKey(cells[j])]; a != b {
			return a < b
		}
		return cells[i].Repetition < cells[j].Repetition
	})
	procs := ""
	if e.GOMAXPROCS > 1 {
		procs = "-" + strconv.Itoa(e.GOMAXPROCS)
	}
	for _, c := range cells {
		name := benchName(c) + procs
		l := c.Latency
		if l.Count == 0 && c.Histograms.Corrected != "" {
			if h, err := results.DecodeHistogram(c.Histograms.Corrected); err == nil {
				l = results.Summarize(h)
			}
		}
		if c.Counts.OK == 0 || l.Count == 0 {
			why := c.Error
			if why == "" {
				why = "no successful call"
			}
			fmt.Fprintf(bw, "# %s: %s\n", name, oneLine(why))
			continue
		}
		ns := func(us float64) string { return strconv.FormatFloat(us*1e3, 'f', -1, 64) }
		fmt.Fprintf(bw, "%s\t%d\t%s p50-ns\t%s p90-ns\t%s p99-ns\t%s p99.9-ns\t%s p99.99-ns\t%s calls/s\t%d errors\n",
			name, c.Counts.OK, ns(l.P50), ns(l.P90), ns(l.P99), ns(l.P999), ns(l.P9999),
			strconv.FormatFloat(c.Throughput, 'f', -1, 64), c.Counts.Failed()+c.Counts.Overflow)
	}
	return bw.Flush()
}

func benchName(c *results.Cell) string {
	var b strings.Builder
	b.WriteString("BenchmarkRPC")
	part := func(k, v string) {
		b.WriteString("/")
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(nameValue(v))
	}
	part("driver", c.Driver)
	variant := c.Variant
	if variant == "" {
		variant = "default"
	}
	part("variant", variant)
	if o := results.OptionsString(c.Options); o != "" {
		part("options", o)
	}
	part("payload", strconv.Itoa(c.Payload))
	if c.Mode == "open" {
		part("load", "r"+strconv.FormatFloat(c.Rate, 'f', -1, 64))
	} else {
		part("load", "c"+strconv.Itoa(c.Concurrency))
	}
	svc := c.ServiceTime
	if svc == "" {
		svc = "0"
	}
	part("service", svc)
	return b.String()
}

// nameValue makes v safe inside a benchmark name: no spaces or slashes,
// and no trailing "-N" that would read as GOMAXPROCS.
func nameValue(v string) string {
	v = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '/' {
			return '_'
		}
		return r
	}, v)
	if i := strings.LastIndexByte(v, '-'); i >= 0 && i < len(v)-1 {
		if _, err := strconv.Atoi(v[i+1:]); err == nil {
			v = v[:i] + "_" + v[i+1:]
		}
	}
	return v
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
