package broker

// Free ports on 127.0.0.1 and waiting for a port to accept connections.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Host is the address every broker is reached at.
const Host = "127.0.0.1"

// FreePorts returns n distinct TCP ports free on 127.0.0.1 right now.
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	for len(out) < n {
		l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// waitPorts dials each port on 127.0.0.1 until it accepts or the timeout.
func waitPorts(ctx context.Context, ports []int, timeout time.Duration) error {
	if len(ports) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for _, p := range ports {
		addr := net.JoinHostPort(Host, strconv.Itoa(p))
		for {
			dctx, dcancel := context.WithTimeout(ctx, time.Second)
			conn, err := d.DialContext(dctx, "tcp", addr)
			dcancel()
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("port %s not accepting connections: %w", addr, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
