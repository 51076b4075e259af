package delay_test

import (
	"context"
	"testing"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/tcp"
	"github.com/rpcbench/rpcbench/internal/delay"
	"github.com/rpcbench/rpcbench/internal/driverstest"
	"github.com/rpcbench/rpcbench/internal/runner"
)

// BenchmarkHop: tcp at concurrency 1 direct, through the proxy with no
// delay (what the proxy itself costs), and with 250 µs one way (about
// 500 µs more per call, two traversals), side by side in one run:
//
//	go test -run '^$' -bench Hop -benchtime 1x -count 3 ./internal/delay
func BenchmarkHop(b *testing.B) {
	tr := driverstest.Configure(b, tcp.New(), drivers.Config{})
	srv := driverstest.Serve(b, tr, drivers.Place{})
	p50 := func(b *testing.B, addr string) float64 {
		client := driverstest.Dial(b, tr, addr)
		m, err := runner.RunCell(context.Background(), client, runner.Load{Payload: 64, Concurrency: 1, Duration: 2 * time.Second, Warmup: 300 * time.Millisecond, Timeout: 5 * time.Second}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return float64(m.Corrected.ValueAtQuantile(50)) / 1e3
	}
	var direct float64
	for _, d := range []time.Duration{-1, 0, 250 * time.Microsecond} {
		name := "direct"
		if d >= 0 {
			name = "proxy-" + d.String()
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				addr := srv.Addr()
				var px *delay.Proxy
				if d >= 0 {
					var err error
					px, err = delay.Start(context.Background(), srv.Addr(), delay.Config{OneWay: d})
					if err != nil {
						b.Fatal(err)
					}
					addr = px.Addr()
				}
				v := p50(b, addr)
				b.ReportMetric(v, "p50-µs")
				if d < 0 {
					direct = v
				} else if direct > 0 {
					b.ReportMetric(v-direct, "added-µs")
				}
				if px != nil {
					st := px.Stats()
					if d > 0 {
						b.ReportMetric(float64(st.Achieved.ValueAtQuantile(50))/1e3, "achieved-p50-µs")
					}
					px.Close()
				}
			}
		})
	}
}
