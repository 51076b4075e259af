package broker

import (
	"context"
	"errors"
	"testing"
)

// TestJVMSources: a source asked for by param or env var, a wrong one
// named where it came from, auto's choice where neither source can run,
// and the reasons check gives. No broker starts.
func TestJVMSources(t *testing.T) {
	ctx := context.Background()
	noHome := errors.New("x: no /nowhere/x.jar; run `make brokers`")
	j := &jvmSources{name: "x", title: "X", image: "rpcbench-no-such-image:0",
		home: func() (string, error) { return "", noHome }, use: "build it", neither: "nothing here for X"}

	t.Setenv("RPCBENCH_X_SOURCE", "process")
	if s, err := j.resolve(ctx, ""); s != SourceProcess || err != nil {
		t.Fatalf("env process: %q %v", s, err)
	}
	if s, err := j.resolve(ctx, SourceContainer); s != SourceContainer || err != nil {
		t.Fatalf("param container over env process: %q %v", s, err)
	}
	if _, err := j.resolve(ctx, "vm"); err == nil || err.Error() != `x: source "vm": want auto, container or process` {
		t.Fatalf("param vm: %v", err)
	}
	_, err := j.check(ctx)
	if reason, ok := IsUnavailable(err); !ok || reason != "skipped: "+noHome.Error() {
		t.Fatalf("check with env process and no home: %v", err)
	}
	t.Setenv("RPCBENCH_X_SOURCE", "vm")
	if _, err := j.check(ctx); err == nil || err.Error() != `x: RPCBENCH_X_SOURCE="vm": want auto, container or process` {
		t.Fatalf("env vm: %v", err)
	}

	// auto, with no image and no home: the container where Docker
	// answers (it says the image is missing), else the reason
	t.Setenv("RPCBENCH_X_SOURCE", "")
	want, reason := "nothing here for X", "skipped: no X here: nothing here for X"
	if CheckEngine(ctx) == nil {
		want, reason = SourceContainer, "skipped: no rpcbench-no-such-image:0 image; build it"
	}
	if s, err := j.resolve(ctx, ""); s != want || err != nil {
		t.Fatalf("auto: %q %v, want %q", s, err, want)
	}
	_, err = j.check(ctx)
	if got, ok := IsUnavailable(err); !ok || got != reason {
		t.Fatalf("check auto: %v, want %q", err, reason)
	}
	// with no reason of its own, auto takes the processes, which say
	// what is missing
	j.neither = ""
	if s := j.choose(ctx); s != SourceProcess {
		t.Fatalf("auto without a reason: %q", s)
	}
}
