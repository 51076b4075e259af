package broker

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireKafkaJars skips (fails in CI) when java or the jars are missing.
func requireKafkaJars(t *testing.T) {
	t.Helper()
	_, err := findKafkaHome()
	if err == nil {
		_, err = exec.LookPath("java")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v (make brokers fetches the jars)", err)
		}
		t.Skip(err)
	}
}

func requireKafkaImage(t *testing.T) {
	t.Helper()
	requireDocker(t)
	if !imagePresent(context.Background(), KafkaLocalImage) {
		msg := "no " + KafkaLocalImage + ": run `make brokers`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func TestKafkaParams(t *testing.T) {
	ctx := context.Background()
	for want, params := range map[string]map[string]string{
		`unknown broker param "flush"`:                 {"flush": "SYNC_FLUSH"},
		`source "vm": want auto, container or process`: {"source": "vm"},
	} {
		_, err := StartKafka(ctx, StartOptions{Params: params})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("params %v: err %v, want %q", params, err, want)
		}
	}
}

func TestKafkaURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"127.0.0.1:9092":                true,
		"127.0.0.1:9092,127.0.0.1:9093": true,
		"kafka://127.0.0.1:9092":        false,
		"127.0.0.1":                     false,
		"":                              false,
	} {
		if err := CheckURL("kafka", raw); (err == nil) != ok {
			t.Errorf("CheckURL(kafka, %q) = %v", raw, err)
		}
	}
}

// checkKafka checks a started broker, stops it and checks that nothing
// answers on its port afterwards.
func checkKafka(t *testing.T, k *KafkaBroker, source string) {
	t.Helper()
	if k.Kind != "kafka" || k.Source != source || k.Version != KafkaVersion || !strings.HasPrefix(k.URL, "127.0.0.1:") {
		t.Errorf("broker %+v", k.Broker)
	}
	for _, key := range []string{"jvm", "broker_jvm_opts", "startup", "controller"} {
		if k.Details[key] == "" {
			t.Errorf("no %s in details %v", key, k.Details)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitKafkaMetadata(ctx, k.URL); err != nil {
		t.Error(err)
	}
	if err := k.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", k.URL, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still answers after Stop", k.URL)
	}
}

func TestKafkaProcess(t *testing.T) {
	t.Parallel() // its own broker: it overlaps only the other parallel tests (`go test` runs those after the rest)
	requireKafkaJars(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k, err := StartKafka(ctx, StartOptions{Params: map[string]string{"source": SourceProcess}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop(context.Background())
	t.Logf("kafka process at %s, started in %v", k.URL, k.Startup)
	dir := k.Details["dir"]
	checkKafka(t, k, SourceProcess)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("run directory %s left after Stop (%v)", dir, err)
	}
}

func TestKafkaContainer(t *testing.T) {
	requireKafkaImage(t)
	t.Setenv("RPCBENCH_KAFKA_SOURCE", "")
	if got := kafkaSources.choose(context.Background()); got != SourceContainer {
		t.Fatalf("default source %q, want container", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k, err := StartKafka(ctx, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop(context.Background())
	t.Logf("kafka container %s at %s, started in %v", k.Details["container"], k.URL, k.Startup)
	checkKafka(t, k, SourceContainer)
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name=^"+k.Details["container"]+"$").Output()
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("container %s left after Stop", k.Details["container"])
	}
}
