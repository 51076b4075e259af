package broker

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// requireDocker skips the test when no Docker engine answers, except in CI
// (CI=true), where that is a failure.
func requireDocker(t *testing.T) {
	t.Helper()
	if err := CheckEngine(context.Background()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v (run make brokers)", err)
		}
		t.Skip(err)
	}
}

// requireImage skips (fails in CI) when the local RabbitMQ image is missing.
func requireRabbitImage(t *testing.T) {
	t.Helper()
	cli, err := dockerClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, im := range []string{RabbitMQOfficialImage, RabbitMQLocalImage} {
		if _, err := cli.ImageInspect(context.Background(), im); err == nil {
			return
		}
	}
	msg := "no RabbitMQ image: run `make brokers`"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// countRun counts this test process's containers of one kind: the tests
// that start containers in parallel (TestRabbitMQContainer,
// TestRocketMQContainer) each start a kind of their own, so one test's
// counts do not see the other's containers.
func countRun(t *testing.T, kind string) int {
	t.Helper()
	cli, err := dockerClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	f := client.Filters{}.Add("label", LabelRun+"="+RunID).Add("label", LabelKind+"="+kind)
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Items)
}

func TestNoEngineIsUnavailable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/rpcbench-docker.sock")
	_, err := StartContainer(context.Background(), ContainerSpec{Kind: "x", Images: []Image{{Name: "busybox"}}})
	reason, ok := IsUnavailable(err)
	if !ok {
		t.Fatalf("err = %v, want *Unavailable", err)
	}
	if reason != NoEngineReason {
		t.Fatalf("reason = %q, want %q", reason, NoEngineReason)
	}
	_, _, err = RabbitMQ()(context.Background(), StartOptions{})
	if _, ok := IsUnavailable(err); !ok {
		t.Fatalf("RabbitMQ starter: err = %v, want *Unavailable", err)
	}
}

func TestParseNetworkMode(t *testing.T) {
	for in, want := range map[string]NetworkMode{"": HostNetwork, "host": HostNetwork, "mapped": MappedPorts} {
		got, err := ParseNetworkMode(in)
		if err != nil || got != want {
			t.Errorf("ParseNetworkMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseNetworkMode("bridge"); err == nil {
		t.Error("bridge accepted")
	}
}

func TestFreePorts(t *testing.T) {
	ps, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ps {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v", ps)
		}
		seen[p] = true
	}
}

func TestRabbitMQContainer(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	requireDocker(t)
	requireRabbitImage(t)
	for _, mode := range []string{"host", "mapped"} {
		t.Run(mode, func(t *testing.T) {
			before := countRun(t, "rabbitmq")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			b, stop, err := RabbitMQ()(ctx, StartOptions{Params: map[string]string{"network": mode}})
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			defer func() {
				if !stopped {
					stop(context.Background())
				}
			}()
			if b.Kind != "rabbitmq" || b.Source != "container" || b.Image == "" || b.Version == "" {
				t.Fatalf("broker = %+v", b)
			}
			if !strings.HasPrefix(b.URL, "amqp://guest:guest@127.0.0.1:") {
				t.Fatalf("URL %q does not point at 127.0.0.1", b.URL)
			}
			if got := countRun(t, "rabbitmq"); got != before+1 {
				t.Fatalf("labelled containers = %d, want %d", got, before+1)
			}
			stopped = true
			if err := stop(ctx); err != nil {
				t.Fatal(err)
			}
			if err := stop(ctx); err != nil {
				t.Fatalf("second stop: %v", err)
			}
			if got := countRun(t, "rabbitmq"); got != before {
				t.Fatalf("after stop: labelled containers = %d, want %d", got, before)
			}
		})
	}
}

func TestStartFailureShowsLogsAndRemoves(t *testing.T) {
	requireDocker(t)
	requireRabbitImage(t)
	before := countRun(t, "failing")
	_, err := StartContainer(context.Background(), ContainerSpec{
		Kind:         "failing",
		Images:       []Image{{Name: RabbitMQLocalImage, Local: true, Cmd: []string{"/bin/sh", "-c", "echo broker-says-goodbye; sleep 1; exit 3"}}},
		ReadyLog:     "never printed",
		StartTimeout: 5 * time.Second,
		StopTimeout:  time.Second,
	})
	if err == nil {
		t.Fatal("start succeeded")
	}
	if !strings.Contains(err.Error(), "broker-says-goodbye") {
		t.Fatalf("error does not carry the log lines: %v", err)
	}
	if got := countRun(t, "failing"); got != before {
		t.Fatalf("labelled containers = %d, want %d", got, before)
	}
}

func TestCancelDuringStartRemoves(t *testing.T) {
	requireDocker(t)
	requireRabbitImage(t)
	before := countRun(t, "cancelled")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(1500 * time.Millisecond)
		cancel()
	}()
	_, err := StartContainer(ctx, ContainerSpec{
		Kind:         "cancelled",
		Images:       []Image{{Name: RabbitMQLocalImage, Local: true, Cmd: []string{"/bin/sleep", "600"}}},
		ReadyLog:     "never printed",
		StartTimeout: time.Minute,
		StopTimeout:  time.Second,
	})
	if err == nil {
		t.Fatal("start succeeded")
	}
	if got := countRun(t, "cancelled"); got != before {
		t.Fatalf("labelled containers = %d, want %d", got, before)
	}
}

func TestStopAll(t *testing.T) {
	requireDocker(t)
	requireRabbitImage(t)
	before := countRun(t, "sleeper")
	c, err := StartContainer(context.Background(), ContainerSpec{
		Kind:        "sleeper",
		Images:      []Image{{Name: RabbitMQLocalImage, Local: true, Cmd: []string{"/bin/sh", "-c", "echo up; exec sleep 600"}}},
		ReadyLog:    "up",
		StopTimeout: time.Second,
		Init:        true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := countRun(t, "sleeper"); got != before+1 {
		t.Fatalf("labelled containers = %d, want %d", got, before+1)
	}
	if err := StopAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := countRun(t, "sleeper"); got != before {
		t.Fatalf("labelled containers = %d, want %d", got, before)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNoImageIsUnavailable(t *testing.T) {
	requireDocker(t)
	_, err := StartContainer(context.Background(), ContainerSpec{
		Kind:   "ghost",
		Images: []Image{{Name: "rpcbench.local/does-not-exist:0", Local: true}},
	})
	if _, ok := IsUnavailable(err); !ok {
		t.Fatalf("err = %v, want *Unavailable", err)
	}
	var u *Unavailable
	if !errors.As(err, &u) || !strings.Contains(u.Reason, "make brokers") {
		t.Fatalf("reason = %v", err)
	}
}
