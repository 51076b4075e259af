package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/report"
	"github.com/rpcbench/rpcbench/results"
)

// realResult is a result written by a real `rpcbench run` (tcp, grpc/unary
// and nats/core), kept with the report package's golden files.
var realResult = filepath.Join("..", "..", "report", "testdata", "result-tcp-grpc-nats.json")

// writeResult writes a copy of realResult, changed by edit, into dir.
func writeResult(t *testing.T, dir, name string, edit func(*results.Run)) string {
	t.Helper()
	run, err := results.Read(realResult)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(run)
	}
	p := filepath.Join(dir, name)
	if err := results.Write(p, run); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantUsage checks that err is bad input (exit 2) with a one-line message
// containing want.
func wantUsage(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, errUsage) {
		t.Fatalf("err = %v, want bad input (exit 2)", err)
	}
	if msg := trimUsage(err); strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
		t.Fatalf("message %q: want one line containing %q", msg, want)
	}
}

// TestReadRunTyped: readRun's errors are the *results.ReadError that
// reportErr makes bad input.
func TestReadRunTyped(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v2.json")
	os.WriteFile(p, []byte(`{"schema_version": 99}`), 0o644)
	_, err := readRun(p)
	var re *results.ReadError
	if !errors.As(err, &re) || !errors.Is(err, results.ErrVersion) || re.File != p {
		t.Fatalf("got %v (%T)", err, err)
	}
	wantUsage(t, reportErr(err), p+": schema_version 99")
}

// TestCompareFilesExitCodes checks the error each outcome maps to: nil
// (exit 0), errRegression (exit 1) and bad input (exit 2) with nothing
// written.
func TestCompareFilesExitCodes(t *testing.T) {
	dir := t.TempDir()
	base := writeResult(t, dir, "base.json", nil)
	same := writeResult(t, dir, "same.json", func(r *results.Run) { r.ID += "-again" })
	cut := writeResult(t, dir, "cut.json", func(r *results.Run) { r.Complete, r.Incomplete = false, "interrupted" })
	other := writeResult(t, dir, "other.json", func(r *results.Run) {
		for i := range r.Cells {
			r.Cells[i].Payload = 4096
			r.Cells[i].Key = results.CellKey(&r.Cells[i])
		}
	})
	v2 := filepath.Join(dir, "v2.json")
	os.WriteFile(v2, []byte(`{"schema_version": 99, "cells": []}`), 0o644)
	notJSON := filepath.Join(dir, "notjson.json")
	os.WriteFile(notJSON, []byte("goos: linux\n"), 0o644)
	missing := filepath.Join(dir, "missing.json")
	fail, err := report.ParseThreshold("p99:+10%")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		base, cur string
		format    string
		want      error  // nil, errRegression or errUsage
		wantInMsg string // for bad input: the message names this
	}{
		{"same run passes", base, same, "text", nil, ""},
		{"json passes too", base, same, "json", nil, ""},
		{"incomplete new run fails", base, cut, "text", errRegression, ""},
		{"incomplete new run fails in markdown", base, cut, "markdown", errRegression, ""},
		{"missing base", missing, same, "text", errUsage, "missing.json: no such file"},
		{"missing new", base, missing, "text", errUsage, "missing.json: no such file"},
		{"newer schema", base, v2, "text", errUsage, "v2.json: schema_version 99"},
		{"not a result", notJSON, base, "text", errUsage, "notjson.json: not JSON"},
		{"no common cells", base, other, "text", errUsage, "no cell in common"},
		{"bad format", base, missing, "yaml", errUsage, `--format "yaml": want one of text, markdown, json`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := reportErr(compareFiles(&out, tt.base, tt.cur, report.CompareOptions{Thresholds: []report.Threshold{fail}}, tt.format))
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("err = %v, want nil (exit 0)", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == errUsage {
				wantUsage(t, err, tt.wantInMsg)
				if out.Len() != 0 {
					t.Errorf("bad input wrote output:\n%s", out.String())
				}
				return
			}
			if !strings.Contains(out.String(), tt.base) || !strings.Contains(out.String(), tt.cur) {
				t.Errorf("the output does not name both files:\n%s", out.String())
			}
			if tt.format == "json" && !json.Valid(out.Bytes()) {
				t.Errorf("json output does not decode:\n%s", out.String())
			}
		})
	}
}

func TestReportFiles(t *testing.T) {
	dir := t.TempDir()
	a := writeResult(t, dir, "a.json", func(r *results.Run) { r.ID = "first-run" })
	b := writeResult(t, dir, "b.json", func(r *results.Run) { r.ID = "second-run" })
	out := filepath.Join(dir, "out", "report.html")
	if err := reportFiles(out, []string{a, b}); err != nil {
		t.Fatalf("reportFiles: %v", err)
	}
	page, _ := os.ReadFile(out)
	if !bytes.Contains(page, []byte("first-run")) || !bytes.Contains(page, []byte("second-run")) {
		t.Error("merged report does not name both runs")
	}
	md := filepath.Join(dir, "summary.md")
	if err := reportFiles(md, []string{a}); err != nil {
		t.Fatalf("reportFiles .md: %v", err)
	}
	if b, _ := os.ReadFile(md); !bytes.HasPrefix(b, []byte("## rpcbench")) {
		t.Error("reportFiles to .md did not write Markdown")
	}
	none := filepath.Join(dir, "none.html")
	wantUsage(t, reportErr(reportFiles(none, []string{a, filepath.Join(dir, "missing.json")})), "missing.json: no such file")
	wantUsage(t, reportErr(reportFiles("", []string{a})), "-o: give the file to write")
	if _, err := os.Stat(none); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bad input wrote %s", none)
	}
}

func TestExportFile(t *testing.T) {
	dir := t.TempDir()
	p := writeResult(t, dir, "r.json", nil)
	var buf bytes.Buffer
	if err := exportFile(&buf, p, "benchfmt"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\nBenchmarkRPC/"); n != 6 {
		t.Errorf("%d benchmark lines, want 6", n)
	}
	buf.Reset()
	wantUsage(t, reportErr(exportFile(&buf, p, "csv")), `--format "csv": want benchfmt`)
	wantUsage(t, reportErr(exportFile(&buf, filepath.Join(dir, "nope.json"), "benchfmt")), "nope.json: no such file")
	if buf.Len() != 0 {
		t.Errorf("bad input wrote %q", buf.String())
	}
}

// TestRedactOldResults: a result written before runs redacted broker
// credentials (a password in a broker URL, quoted again in a cell's error
// and a warning) keeps them out of everything report, compare and export
// write.
func TestRedactOldResults(t *testing.T) {
	const pass = "s3cretPassw0rd"
	dir := t.TempDir()
	old := writeResult(t, dir, "old.json", func(r *results.Run) {
		r.Environment.Brokers[0].URL = "nats://bench:" + pass + "@127.0.0.1:4222"
		r.Environment.Brokers[0].Details["dialed"] = "nats://bench:" + pass + "@127.0.0.1:4222"
		for i := range r.Cells {
			c := &r.Cells[i]
			if c.Driver == "nats" {
				c.Broker = "nats at nats://bench:" + pass + "@127.0.0.1:4222"
				c.Warnings = append(c.Warnings, "authorization "+pass+" was slow")
				c.Errors = append(c.Errors, results.ErrorCount{Message: "dial nats://bench:" + pass + "@127.0.0.1:4222: refused", Count: 1})
				c.Error = "password " + pass + " rejected"
			}
		}
	})
	if b, _ := os.ReadFile(old); !bytes.Contains(b, []byte(pass)) {
		t.Fatal("the test file lost its password")
	}
	for _, name := range []string{"report.html", "summary.md"} {
		out := filepath.Join(dir, name)
		if err := reportFiles(out, []string{old}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		if bytes.Contains(b, []byte(pass)) {
			t.Errorf("the password is in %s", name)
		}
		if name == "report.html" && !bytes.Contains(b, []byte("nats://bench:***@127.0.0.1:4222")) {
			t.Errorf("%s does not show the redacted broker URL", name)
		}
	}
	for _, format := range report.CompareFormats {
		var buf bytes.Buffer
		if err := compareFiles(&buf, old, old, report.CompareOptions{}, format); err != nil && !errors.Is(err, errRegression) {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), pass) {
			t.Errorf("the password is in compare --format %s:\n%s", format, buf.String())
		}
	}
	var buf bytes.Buffer
	if err := exportFile(&buf, old, "benchfmt"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), pass) {
		t.Errorf("the password is in export:\n%s", buf.String())
	}
}
