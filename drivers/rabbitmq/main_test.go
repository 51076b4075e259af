package rabbitmq

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/broker"
)

// The package's tests and benchmarks share one RabbitMQ: the one named by
// RPCBENCH_RABBITMQ_URL, else a container started here (and removed at the
// end). Without Docker the tests skip, except with CI=true, where they fail.
var (
	brokerURL string
	brokerErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if u := os.Getenv("RPCBENCH_RABBITMQ_URL"); u != "" {
		brokerURL = u
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, b, err := broker.StartRabbitMQ(ctx, broker.StartOptions{})
	cancel()
	if err != nil {
		brokerErr = err
		return m.Run()
	}
	defer c.Stop(context.Background())
	brokerURL = b.URL
	fmt.Fprintf(os.Stderr, "rabbitmq: %s %s at %s\n", b.Image, b.Version, b.URL)
	return m.Run()
}

// needBroker returns the shared broker's URL, or skips (fails in CI).
func needBroker(tb testing.TB) string {
	tb.Helper()
	if brokerURL != "" {
		return brokerURL
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and no RabbitMQ: %v", brokerErr)
	}
	tb.Skipf("no RabbitMQ: %v", brokerErr)
	return ""
}

// needDocker skips (fails in CI) when no Docker engine answers.
func needDocker(tb testing.TB) {
	tb.Helper()
	if err := broker.CheckEngine(context.Background()); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true and %v", err)
		}
		tb.Skip(err)
	}
}
