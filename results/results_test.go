package results_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/results"
)

func sample(t testing.TB) *results.Run {
	t.Helper()
	h := results.NewHistogram()
	for i := int64(1); i <= 1000; i++ {
		h.RecordValue(i * 1000)
	}
	enc, err := results.EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	return &results.Run{
		SchemaVersion: results.SchemaVersion, ID: "x", StartedAt: now, FinishedAt: now, Complete: true,
		Environment: results.Environment{RpcbenchVersion: "dev", Commit: "c", GoVersion: "go", OS: "linux", Arch: "amd64", Kernel: "6", CPUModel: "cpu", Cores: 2, GOMAXPROCS: 2, Libraries: map[string]string{}, Brokers: []results.Broker{}},
		Scenario: results.Scenario{Name: "default", Source: "embedded:default", Drivers: []results.ScenarioDriver{{Name: "tcp"}},
			Payloads: []int{64}, Concurrency: []int{1}, MaxInFlight: 256, ServiceTimes: []string{"0"},
			Duration: "1.5s", Warmup: "500ms", BrokerWarmup: "6s", Timeout: "5s", Repeat: 1, Settle: "6s"},
		Cells: []results.Cell{{
			Key: "tcp/mux payload=64", Driver: "tcp", Kind: "direct", Variant: "mux", Payload: 64, ResponseSize: 64,
			Mode: "closed", Concurrency: 1, ServiceTime: "0", Repetition: 1, StartedAt: now, Seconds: 1,
			Counts: results.Counts{Scheduled: 1000, Started: 1000, OK: 1000}, Throughput: 1000,
			Latency: results.Summarize(h), Uncorrected: results.Summarize(h), Responder: results.Summarize(h),
			Histograms: results.Histograms{Corrected: enc, Uncorrected: enc, Responder: enc},
			Series:     []results.Point{{Second: 0, OK: 1000, Throughput: 1000, P50: 500, P99: 990}},
		}},
		Skipped: []results.Skip{{Driver: "rabbitmq", Reason: "skipped: no Docker engine; use --broker or start Docker"}},
	}
}

func TestWriteReadValidate(t *testing.T) {
	run := sample(t)
	path := filepath.Join(t.TempDir(), "r", "result.json")
	if err := results.Write(path, run); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := results.Validate(data); err != nil {
		t.Fatalf("written result does not validate: %v", err)
	}
	back, err := results.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := results.DecodeHistogram(back.Cells[0].Histograms.Corrected)
	if err != nil || h.TotalCount() != 1000 || results.Summarize(h) != run.Cells[0].Latency {
		t.Fatalf("histogram round trip: %v %+v", err, results.Summarize(h))
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left beside the result: %v", ents)
	}
}

func TestValidateRejects(t *testing.T) {
	good, _ := json.Marshal(sample(t))
	for name, edit := range map[string]func(m map[string]any){
		"no cells":        func(m map[string]any) { delete(m, "cells") },
		"wrong version":   func(m map[string]any) { m["schema_version"] = 99 },
		"unknown field":   func(m map[string]any) { m["extra"] = true },
		"negative counts": func(m map[string]any) { m["cells"].([]any)[0].(map[string]any)["counts"].(map[string]any)["ok"] = -1 },
		"bad mode":        func(m map[string]any) { m["cells"].([]any)[0].(map[string]any)["mode"] = "half-open" },
	} {
		var m map[string]any
		json.Unmarshal(good, &m)
		edit(m)
		doc, _ := json.Marshal(m)
		if err := results.Validate(doc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadRefusesOtherVersions(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"v2.json":   `{"schema_version": 99}`,
		"none.json": `{"cells": []}`,
		"bad.json":  `{`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(doc), 0o644)
		_, err := results.Read(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, want an error naming the file", name, err)
		}
	}
}
