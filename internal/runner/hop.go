package runner

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
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
// reaches each of the broker's addresses (upstreams: the URL's, and for a
// drivers.Rerouter those the broker hands its clients) through a proxy of
// its own for the whole unit (rpxs, their delay set per cell), and each
// cell's callers through proxies of their own to the same upstreams.
type brokerHop struct {
	upstreams []string
	rpxs      []*delay.Proxy
}

// startBrokerHop starts the responder's proxies to the broker at brokerURL
// (delay 0 until a cell sets it) and returns the URL the responder is to
// use instead.
func startBrokerHop(ctx context.Context, t drivers.Transport, brokerURL string) (*brokerHop, string, error) {
	rr, reroutes := t.(drivers.Rerouter)
	var upstreams []string
	if reroutes {
		addrs, err := rr.BrokerAddrs(ctx, brokerURL)
		if err != nil {
			return nil, "", fmt.Errorf("network: the broker's addresses, for the delay proxies: %w", err)
		}
		upstreams = addrs
	} else {
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
		upstreams = []string{hostport}
	}
	bh := &brokerHop{upstreams: upstreams}
	via := map[string]string{}
	for _, up := range upstreams {
		px, err := delay.Start(ctx, up, delay.Config{})
		if err != nil {
			bh.close()
			return nil, "", fmt.Errorf("start the responder's delay proxy to %s: %w", up, err)
		}
		bh.rpxs = append(bh.rpxs, px)
		via[up] = px.Addr()
	}
	if !reroutes {
		return bh, replaceAddrs(brokerURL, via), nil
	}
	rewritten, err := rr.Reroute(brokerURL, via)
	if err != nil {
		bh.close()
		return nil, "", fmt.Errorf("network: route the broker's addresses through the delay proxies: %w", err)
	}
	return bh, rewritten, nil
}

// set gives the responder's hops the cell's delay and clears their counts.
func (bh *brokerHop) set(h *results.Hop) error {
	oneWay, err := time.ParseDuration(h.OneWayDelay)
	if err != nil {
		return fmt.Errorf("hop delay %q: %w", h.OneWayDelay, err)
	}
	jitter, err := time.ParseDuration(h.Jitter)
	if err != nil {
		return fmt.Errorf("hop jitter %q: %w", h.Jitter, err)
	}
	for _, px := range bh.rpxs {
		px.ResetStats()
		if err := px.SetConfig(delay.Config{OneWay: oneWay, Jitter: jitter}); err != nil {
			return err
		}
	}
	return nil
}

// callers sets the responder's hops to h and starts the callers' proxies
// at h, one per upstream; it returns the address the callers dial (the
// responder's addr, which names the responder's proxies, with the
// callers' instead) and the proxies.
func (bh *brokerHop) callers(ctx context.Context, addr string, h *results.Hop) (string, []*delay.Proxy, error) {
	if err := bh.set(h); err != nil {
		return "", nil, err
	}
	var pxs []*delay.Proxy
	swap := map[string]string{}
	for i, up := range bh.upstreams {
		px, err := startHop(ctx, up, h)
		if err != nil {
			closeAll(pxs)
			return "", nil, err
		}
		pxs = append(pxs, px)
		swap[bh.rpxs[i].Addr()] = px.Addr()
	}
	return replaceAddrs(addr, swap), pxs, nil
}

// ports are the listen ports of the responder's proxies and the upstream
// ports.
func (bh *brokerHop) ports() (listen, upstream []uint16) {
	for i := range bh.upstreams {
		listen = append(listen, portOf(bh.rpxs[i].Addr()))
		upstream = append(upstream, portOf(bh.upstreams[i]))
	}
	return listen, upstream
}

func (bh *brokerHop) close() { closeAll(bh.rpxs) }

func closeAll(pxs []*delay.Proxy) {
	for _, px := range pxs {
		px.Close()
	}
}

// replaceAddrs replaces every host:port of swap found in s by its value,
// in one pass: an address followed by a digit is a longer one's prefix
// and is left alone.
func replaceAddrs(s string, swap map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		matched := false
		for from, to := range swap {
			if strings.HasPrefix(s[i:], from) && (i+len(from) == len(s) || s[i+len(from)] < '0' || s[i+len(from)] > '9') {
				b.WriteString(to)
				i += len(from)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// portOf is the port of a host:port (0 when it has none).
func portOf(hostport string) uint16 {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}
