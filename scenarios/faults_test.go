package scenarios

import (
	"strings"
	"testing"
	"time"
)

func TestParseFaultFlag(t *testing.T) {
	f, err := ParseFault("kill-responder@2s+1.5s")
	if err != nil || f.Action != KillResponder || time.Duration(f.At) != 2*time.Second || time.Duration(f.RestoreAfter) != 1500*time.Millisecond {
		t.Fatalf("%+v, %v", f, err)
	}
	if f.String() != "kill-responder@2s+1.5s" {
		t.Fatalf("String %q", f.String())
	}
	if f, err := ParseFault("pause-broker@0"); err != nil || f.RestoreAfter != 0 {
		t.Fatalf("%+v, %v", f, err)
	}
	for _, bad := range []string{"kill-responder", "explode@1s", "stop-broker@soon", "stop-broker@1s+-1s", "kill-responder@2h"} {
		if _, err := ParseFault(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFaultsKey(t *testing.T) {
	base := "name: f\ndrivers: [tcp]\npayloads: [64]\nduration: 10s\n"
	sc, err := Parse("f.yaml", []byte(base+"rate: [100]\nfaults:\n  - {at: 2s, action: kill-responder, restore_after: 1s}\n  - {at: 5s, action: stop-broker}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Faults) != 2 || sc.Faults[0].Line != 7 || sc.Faults[1].Action != StopBroker {
		t.Fatalf("%+v", sc.Faults)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"concurrency: [1]\nfaults: [{at: 1s, action: kill-responder}]\n", "f.yaml:6: faults: fault cells run open loop"},
		{"rate: [100]\nfaults: [{at: 1s, action: melt}]\n", `faults[0].action: unknown fault action "melt"`},
		{"rate: [100]\nfaults: [{action: kill-responder}]\n", "faults[0].at: missing"},
		{"rate: [100]\nfaults: [{at: 1s, action: kill-responder, when: now}]\n", "faults[0].when: unknown key"},
		{"rate: [100]\nfaults: [{at: 9s, action: kill-responder, restore_after: 2s}]\n", "faults[0]: restored at 11s, not before the cell ends"},
		{"rate: [100]\nfaults: [{at: 3s, action: kill-responder, restore_after: 2s}, {at: 4s, action: stop-broker}]\n", "faults[1].at: 4s is before the fault before it is restored"},
	} {
		_, err := Parse("f.yaml", []byte(base+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestFaultOverride(t *testing.T) {
	sc, err := Parse("f.yaml", []byte("name: f\ndrivers: [tcp]\npayloads: [64]\nduration: 10s\nrate: [100]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Apply(Overrides{Faults: []string{"kill-responder@1s+1s"}}); err != nil || len(sc.Faults) != 1 {
		t.Fatalf("%v %+v", err, sc.Faults)
	}
	err = sc.Apply(Overrides{Faults: []string{"kill-responder@20s"}})
	if err == nil || !strings.Contains(err.Error(), "--fault") {
		t.Fatalf("fault past the cell: %v", err)
	}
}

func TestPhases(t *testing.T) {
	base := "name: p\ndrivers: [tcp]\npayloads: [64]\n"
	sc, err := Parse("p.yaml", []byte(base+"phases:\n  - {duration: 2s, rate: 100}\n  - {duration: 500ms, rate: 2000}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !sc.OpenLoop() || time.Duration(sc.Duration) != 2500*time.Millisecond || PhasesString(sc.Phases) != "2s@100/s,500ms@2000/s" {
		t.Fatalf("open %v, duration %v, phases %s", sc.OpenLoop(), sc.Duration, PhasesString(sc.Phases))
	}
	for _, tc := range []struct{ yaml, want string }{
		{"phases: [{duration: 1s, rate: 10}]\nrate: [5]\n", "rate: phases set the open-loop rate"},
		{"phases: [{duration: 1s, rate: 10}]\nduration: 3s\n", "duration: phases set"},
		{"phases: [{duration: 1s}]\n", "phases[0].rate: missing"},
		{"phases: []\n", "phases: must not be empty"},
		{"phases: [{duration: 1s, rate: 10, burst: yes}]\n", "phases[0].burst: unknown key"},
	} {
		_, err := Parse("p.yaml", []byte(base+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
