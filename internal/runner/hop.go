package runner

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
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

// fillHop records what the proxies forwarded and the delay they achieved
// (a broker driver's cell: its callers' proxy and the responder's).
func fillHop(h *results.Hop, pxs ...*delay.Proxy) {
	st := pxs[0].Stats()
	for _, px := range pxs[1:] {
		o := px.Stats()
		for i := range 2 {
			st.Bytes[i] += o.Bytes[i]
			st.Chunks[i] += o.Chunks[i]
		}
		st.Achieved.Merge(o.Achieved)
	}
	h.Bytes, h.Chunks = st.Bytes, st.Chunks
	if h.OneWayDelay != "0s" || h.Jitter != "0s" {
		if st.Achieved.TotalCount() > 0 {
			l := results.Summarize(st.Achieved)
			h.Achieved = &l
		}
	}
}

// brokerHop puts delay proxies on a broker driver's hops: the responder
// reaches the broker through rpx for the whole unit (its delay set per
// cell), and each cell's callers through a proxy of their own to
// upstream, the broker's real address.
type brokerHop struct {
	upstream string
	rpx      *delay.Proxy
}

// startBrokerHop starts the responder's proxy to the broker at brokerURL
// (delay 0 until a cell sets it) and returns the URL the responder is to
// use instead.
func startBrokerHop(ctx context.Context, brokerURL string) (*brokerHop, string, error) {
	u, err := url.Parse(brokerURL)
	hostport := ""
	if err == nil && u.Host != "" {
		hostport = u.Host
	} else if _, _, err2 := net.SplitHostPort(brokerURL); err2 == nil {
		hostport = brokerURL // a bare host:port
	}
	if _, _, err := net.SplitHostPort(hostport); hostport == "" || strings.Contains(hostport, ",") || err != nil {
		return nil, "", fmt.Errorf("network: the broker's URL names no single host:port for a delay proxy to stand in for")
	}
	px, err := delay.Start(ctx, hostport, delay.Config{})
	if err != nil {
		return nil, "", fmt.Errorf("start the responder's delay proxy: %w", err)
	}
	rewritten := strings.Replace(brokerURL, hostport, px.Addr(), 1)
	return &brokerHop{upstream: hostport, rpx: px}, rewritten, nil
}

// set gives the responder's hop the cell's delay and clears its counts.
func (bh *brokerHop) set(h *results.Hop) error {
	oneWay, err := time.ParseDuration(h.OneWayDelay)
	if err != nil {
		return fmt.Errorf("hop delay %q: %w", h.OneWayDelay, err)
	}
	jitter, err := time.ParseDuration(h.Jitter)
	if err != nil {
		return fmt.Errorf("hop jitter %q: %w", h.Jitter, err)
	}
	bh.rpx.ResetStats()
	return bh.rpx.SetConfig(delay.Config{OneWay: oneWay, Jitter: jitter})
}

// callerAddr is the address a cell's callers dial: the responder's addr
// (which names the responder's proxy) with the callers' proxy instead.
func (bh *brokerHop) callerAddr(addr string, px *delay.Proxy) string {
	return strings.Replace(addr, bh.rpx.Addr(), px.Addr(), 1)
}

func (bh *brokerHop) close() { bh.rpx.Close() }

// portOf is the port of a host:port (0 when it has none).
func portOf(hostport string) uint16 {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}
