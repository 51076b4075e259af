package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/rpcbench/rpcbench/internal/broker"
)

// TestRedactBrokersUpStatus: brokers up and brokers status print no
// password (the URL shows as amqp://bench:***@host/), while the state file
// keeps the full URL, readable by its owner only, for the runs that use it.
func TestRedactBrokersUpStatus(t *testing.T) {
	const pass = "s3cretPassw0rd"
	url := "amqp://bench:" + pass + "@127.0.0.1:5672/"
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/rpcbench-no-docker.sock") // no container is running or started
	starters := map[string]broker.Starter{
		"rabbitmq": func(ctx context.Context, opts broker.StartOptions) (broker.Broker, func(context.Context) error, error) {
			return broker.Broker{Kind: "rabbitmq", URL: url, Source: "container", Image: "rabbitmq:test", Version: "4.0"},
				func(context.Context) error { return nil }, nil
		},
		"rocketmq": func(ctx context.Context, opts broker.StartOptions) (broker.Broker, func(context.Context) error, error) {
			return broker.Broker{}, nil, os.ErrPermission
		},
	}
	f := brokersFlags{out: t.TempDir()}
	var stdout, stderr bytes.Buffer
	err := brokersUp(context.Background(), f, []string{"rabbitmq", "rocketmq"}, starters, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "rocketmq") {
		t.Fatalf("err = %v, want the rocketmq start failure", err)
	}
	var status bytes.Buffer
	if err := brokersStatus(context.Background(), f, &status); err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"up stdout": stdout.String(), "up stderr": stderr.String(), "up error": err.Error(), "status": status.String()} {
		if strings.Contains(text, pass) {
			t.Errorf("the password is in brokers %s:\n%s", what, text)
		}
		if what != "up error" && !strings.Contains(text, "amqp://bench:***@127.0.0.1:5672/") {
			t.Errorf("brokers %s does not show the redacted URL:\n%s", what, text)
		}
	}
	if !strings.Contains(stdout.String(), "use: rpcbench run --broker rabbitmq=amqp://bench:***@127.0.0.1:5672/ (passwords are in ") {
		t.Errorf("up does not say where the password is:\n%s", stdout.String())
	}
	fi, err := os.Stat(statePath(f.out))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", statePath(f.out), fi.Mode().Perm())
	}
	data, _ := os.ReadFile(statePath(f.out))
	var st brokersState
	if err := json.Unmarshal(data, &st); err != nil || len(st.Brokers) != 1 || st.Brokers[0].URL != url {
		t.Fatalf("state %s (%v): want the full URL for the runs", data, err)
	}
}
