package kafka_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/broker"
)

// The package's tests and benchmarks share one Kafka: the one named by
// RPCBENCH_KAFKA (HOST:PORT), else one started here (container or process,
// stopped at the end). When none can start the tests skip, except with
// CI=true, where they fail.
var (
	shared    *broker.KafkaBroker
	brokerURL string
	brokerErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if u := os.Getenv("RPCBENCH_KAFKA"); u != "" {
		brokerURL = u
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	k, err := broker.StartKafka(ctx, broker.StartOptions{})
	cancel()
	if err != nil {
		brokerErr = err
		return m.Run()
	}
	shared = k
	brokerURL = k.URL
	fmt.Fprintf(os.Stderr, "kafka: %s %s from %s at %s, started in %v\n", k.Image, k.Version, k.Source, k.URL, k.Startup.Round(time.Millisecond))
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "last lines of the broker's log:\n%s\n", k.LogTail(context.Background(), 40))
	}
	if err := k.Stop(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "stop broker:", err)
		code = 1
	}
	return code
}

// brokerFailed fails the test in CI and skips it elsewhere when no broker
// can start here.
func brokerFailed(tb testing.TB, err error) {
	tb.Helper()
	if reason, ok := broker.IsUnavailable(err); ok && os.Getenv("CI") != "true" {
		tb.Skip("no Kafka: " + reason)
	}
	tb.Fatalf("start Kafka: %v", err)
}

// needBroker returns the shared broker's bootstrap address, or skips
// (fails in CI).
func needBroker(tb testing.TB) string {
	tb.Helper()
	if brokerURL == "" {
		brokerFailed(tb, brokerErr)
	}
	return brokerURL
}
