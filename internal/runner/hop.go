package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/rpcbench/rpcbench/internal/delay"
	"github.com/rpcbench/rpcbench/results"
)

// startHop starts the delay proxy a cell's callers reach the responder at
// addr through.
func startHop(ctx context.Context, addr string, h *results.Hop) (*delay.Proxy, error) {
	oneWay, err := time.ParseDuration(h.OneWayDelay)
	if err != nil {
		return nil, fmt.Errorf("hop delay %q: %w", h.OneWayDelay, err)
	}
	jitter, err := time.ParseDuration(h.Jitter)
	if err != nil {
		return nil, fmt.Errorf("hop jitter %q: %w", h.Jitter, err)
	}
	px, err := delay.Start(ctx, addr, delay.Config{OneWay: oneWay, Jitter: jitter})
	if err != nil {
		return nil, fmt.Errorf("start the delay proxy: %w", err)
	}
	return px, nil
}

// fillHop records what the proxy forwarded and the delay it achieved.
func fillHop(h *results.Hop, px *delay.Proxy) {
	st := px.Stats()
	h.Bytes, h.Chunks = st.Bytes, st.Chunks
	if h.OneWayDelay != "0s" || h.Jitter != "0s" {
		if st.Achieved.TotalCount() > 0 {
			l := results.Summarize(st.Achieved)
			h.Achieved = &l
		}
	}
}
