package activemq_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/internal/broker"
)

// The package's tests and benchmarks share one ActiveMQ: the one named by
// RPCBENCH_ACTIVEMQ (stomp://HOST:PORT), else one started here (a local
// process from Debian's package, stopped at the end). When none can start
// the tests skip, except with CI=true, where they fail.
var (
	shared    *broker.ActiveMQBroker
	brokerURL string
	brokerErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if u := os.Getenv("RPCBENCH_ACTIVEMQ"); u != "" {
		brokerURL = u
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	a, err := broker.StartActiveMQ(ctx, broker.StartOptions{})
	cancel()
	if err != nil {
		brokerErr = err
		return m.Run()
	}
	shared = a
	brokerURL = a.URL
	fmt.Fprintf(os.Stderr, "activemq: %s from %s at %s, started in %v\n", a.Version, a.Source, a.URL, a.Startup.Round(time.Millisecond))
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "last lines of the broker's log:\n%s\n", a.LogTail(40))
	}
	if err := a.Stop(context.Background()); err != nil {
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
		tb.Skip("no ActiveMQ: " + reason)
	}
	tb.Fatalf("start ActiveMQ: %v", err)
}

// needBroker returns the shared broker's URL, or skips (fails in CI).
func needBroker(tb testing.TB) string {
	tb.Helper()
	if brokerURL == "" {
		brokerFailed(tb, brokerErr)
	}
	return brokerURL
}
