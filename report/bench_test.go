package report

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/rpcbench/rpcbench/results"
)

// BenchmarkReport100Cells renders the HTML report of a 100-cell result
// file, reading the file included, as `rpcbench run` and `rpcbench report`
// do. The size of the page is reported as html-bytes.
//
//	go test ./report/ -run '^$' -bench Report100 -benchtime 5x
func BenchmarkReport100Cells(b *testing.B) {
	path := filepath.Join(b.TempDir(), "result.json")
	if err := results.Write(path, hundredRun(b)); err != nil {
		b.Fatal(err)
	}
	var size int
	b.ResetTimer()
	for b.Loop() {
		run, err := results.Read(path)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := HTML(&buf, []*results.Run{run}); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "html-bytes")
}

// BenchmarkMarkdown100Cells renders the Markdown summary of 100 cells.
func BenchmarkMarkdown100Cells(b *testing.B) {
	run := hundredRun(b)
	b.ResetTimer()
	for b.Loop() {
		if err := Markdown(io.Discard, []*results.Run{run}); err != nil {
			b.Fatal(err)
		}
	}
}
