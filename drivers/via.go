package drivers

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Rerouter is a broker Transport whose clients connect, besides the
// address in the broker URL, to addresses the broker hands them (Kafka's
// advertised listeners; the broker addresses RocketMQ's name server
// returns). A delay proxy in front of the URL's address alone would miss
// those hops: the core puts one in front of each address BrokerAddrs
// names, and gives the driver the URL Reroute makes.
type Rerouter interface {
	// BrokerAddrs are the host:port addresses its clients connect to for
	// the broker at url: the URL's own and those the broker hands out.
	BrokerAddrs(ctx context.Context, url string) ([]string, error)
	// Reroute returns the broker URL (or responder address) whose clients
	// connect to via[a] wherever they would connect to a. The result
	// keeps via's addresses as written (WithVia), so that replacing one
	// of them in it moves that route.
	Reroute(url string, via map[string]string) (string, error)
}

// viaSep starts the routes WithVia appends to an address.
const viaSep = "~via="

// WithVia appends via to addr (replacing any routes it had):
// "ADDR~via=FROM>TO,FROM>TO", the routes sorted. A Rerouter's Reroute can
// use it; SplitVia takes it apart again.
func WithVia(addr string, via map[string]string) string {
	addr, _, _ = strings.Cut(addr, viaSep)
	if len(via) == 0 {
		return addr
	}
	pairs := make([]string, 0, len(via))
	for from, to := range via {
		pairs = append(pairs, from+">"+to)
	}
	sort.Strings(pairs)
	return addr + viaSep + strings.Join(pairs, ",")
}

// SplitVia splits an address made by WithVia into the address and its
// routes (nil when it has none).
func SplitVia(addr string) (string, map[string]string, error) {
	base, routes, ok := strings.Cut(addr, viaSep)
	if !ok {
		return addr, nil, nil
	}
	via := map[string]string{}
	for _, p := range strings.Split(routes, ",") {
		from, to, ok := strings.Cut(p, ">")
		if !ok || CheckHostPort(from, true) != nil || CheckHostPort(to, true) != nil {
			return "", nil, fmt.Errorf("route %q: want FROM>TO, two HOST:PORT addresses", p)
		}
		via[from] = to
	}
	return base, via, nil
}

// Route is where a client with routes via connects for addr.
func Route(via map[string]string, addr string) string {
	if to, ok := via[addr]; ok {
		return to
	}
	return addr
}
