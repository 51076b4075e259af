package broker

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requireActiveMQ skips (fails in CI) when java or the package is missing.
func requireActiveMQ(t *testing.T) {
	t.Helper()
	_, err := findActiveMQHome()
	if err == nil {
		_, err = exec.LookPath("java")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v (make brokers installs it)", err)
		}
		t.Skip(err)
	}
}

func TestActiveMQParams(t *testing.T) {
	ctx := context.Background()
	for want, params := range map[string]map[string]string{
		`unknown broker param "network"`:               {"network": "host"},
		`source "vm": want auto, container or process`: {"source": "vm"},
	} {
		_, err := StartActiveMQ(ctx, StartOptions{Params: params})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("params %v: err %v, want %q", params, err, want)
		}
	}
}

func TestActiveMQURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"stomp://127.0.0.1:61613":           true,
		"stomp://user:pass@127.0.0.1:61613": true,
		"stomp://127.0.0.1:61613/":          true,
		"127.0.0.1:61613":                   false,
		"stomp://127.0.0.1":                 false,
		"tcp://127.0.0.1:61616":             false,
		"stomp://127.0.0.1:61613/x?y=1":     false,
		"":                                  false,
	} {
		if err := CheckURL("activemq", raw); (err == nil) != ok {
			t.Errorf("CheckURL(activemq, %q) = %v", raw, err)
		}
	}
	err := CheckURL("activemq", "tcp://user:s3cret@127.0.0.1:61616")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v repeats the password", err)
	}
	if got := Redact("stomp://user:s3cret@127.0.0.1:61613"); got != "stomp://user:***@127.0.0.1:61613" {
		t.Errorf("Redact = %q", got)
	}
	if v := ActiveMQServerVersion("ActiveMQ/5.17.2"); v != "5.17.2" {
		t.Errorf("version %q", v)
	}
}

// The process source: ready with a version, its faults (kill and start
// again on the same port, pause and resume), and nothing left after Stop.
func TestActiveMQProcess(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	requireActiveMQ(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, err := StartActiveMQ(ctx, StartOptions{Params: map[string]string{"source": SourceProcess}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	t.Logf("activemq %s at %s, started in %v; details %v", a.Version, a.URL, a.Startup, a.Details)
	if a.Kind != "activemq" || a.Source != SourceProcess || !strings.HasPrefix(a.Version, "5.") || a.URL != "stomp://"+a.Addr {
		t.Errorf("broker %+v", a.Broker)
	}
	for _, key := range []string{"jvm", "jvm_opts", "startup", "dir", "connector", "server"} {
		if a.Details[key] == "" {
			t.Errorf("no %s in details %v", key, a.Details)
		}
	}
	if cpu, err := a.CPU(ctx); err != nil || cpu <= 0 {
		t.Errorf("cpu %v, %v", cpu, err)
	}
	probe := func() error {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		defer pcancel()
		_, err := StompProbe(pctx, a.Addr, "", "")
		return err
	}
	if err := a.Control.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := probe(); err == nil {
		t.Error("a paused broker answered STOMP")
	}
	if err := a.Control.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := probe(); err != nil {
		t.Errorf("resumed: %v", err)
	}
	if err := a.Control.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := probe(); err == nil {
		t.Error("a killed broker answered STOMP")
	}
	t0 := time.Now()
	if err := a.Control.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("started again in %v", time.Since(t0))
	if err := a.Control.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Control.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dir := a.Details["dir"]
	pid := a.proc.cmd.Process.Pid
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", a.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still answers after Stop", a.Addr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("run directory %s left after Stop (%v)", dir, err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("broker process %d left after Stop", pid)
	}
}

func TestActiveMQContainer(t *testing.T) {
	requireDocker(t)
	if !imagePresent(context.Background(), ActiveMQLocalImage) {
		msg := "no " + ActiveMQLocalImage + ": run `make brokers`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Setenv("RPCBENCH_ACTIVEMQ_SOURCE", "")
	if got := activeMQSources.choose(context.Background()); got != SourceContainer {
		t.Fatalf("default source %q, want container", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, err := StartActiveMQ(ctx, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	t.Logf("activemq %s container %s at %s, started in %v; details %v", a.Version, a.Details["container"], a.URL, a.Startup, a.Details)
	if a.Source != SourceContainer || !strings.HasPrefix(a.Version, "5.") || a.Details["jvm"] == "" || a.Image != ActiveMQLocalImage {
		t.Errorf("broker %+v", a.Broker)
	}
	if err := a.Control.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := a.Control.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("started again in %v", time.Since(t0))
	if _, err := StompProbe(ctx, a.Addr, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", a.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still answers after Stop", a.Addr)
	}
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name=^"+a.Details["container"]+"$").Output()
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("container %s left after Stop", a.Details["container"])
	}
}
