package broker

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSSyncParam is the StartOptions.Params key that sets the embedded NATS
// server's JetStream file-store sync: "default" (the server's periodic sync,
// every 2 minutes) or "always" (fsync after every stored message). It is a
// server-wide setting in NATS, not a stream setting, so brokers started with
// different values must be started under different Manager keys (e.g.
// "nats/sync-always").
const NATSSyncParam = "sync"

// natsReadyTimeout bounds how long the embedded server may take to accept
// connections when ctx has no earlier deadline.
const natsReadyTimeout = 10 * time.Second

// NATSEmbedded returns a Starter that runs a nats-server inside this process:
// 127.0.0.1 on a random port, no signal handling, no logging, JetStream on
// with its store in a fresh directory under opts.Dir (a temporary directory
// when Dir is empty). The stop function shuts the server down and removes
// the store.
func NATSEmbedded() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		syncAlways := false
		for k, v := range opts.Params {
			switch {
			case k == NATSSyncParam && (v == "default" || v == ""):
			case k == NATSSyncParam && v == "always":
				syncAlways = true
			case k == NATSSyncParam:
				return Broker{}, nil, fmt.Errorf("nats: broker param %s=%q: want default or always", k, v)
			default:
				return Broker{}, nil, fmt.Errorf("nats: unknown broker param %q (want %s)", k, NATSSyncParam)
			}
		}
		if err := ctx.Err(); err != nil {
			return Broker{}, nil, err
		}
		if opts.Dir != "" {
			if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
				return Broker{}, nil, fmt.Errorf("nats: store directory: %w", err)
			}
		}
		// A fresh directory per server: two embedded brokers of one run (sync
		// default and always) never share a store.
		store, err := os.MkdirTemp(opts.Dir, "nats-store-")
		if err != nil {
			return Broker{}, nil, fmt.Errorf("nats: store directory: %w", err)
		}
		sopts := &server.Options{
			ServerName: "rpcbench-embedded",
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			NoLog:      true,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   store,
			SyncAlways: syncAlways,
			// No HTTP monitoring, no cluster, no leafnodes: the defaults
			// (disabled) are what we want.
		}
		ns, err := server.NewServer(sopts)
		if err != nil {
			os.RemoveAll(store)
			return Broker{}, nil, fmt.Errorf("nats: embedded server: %w", err)
		}
		started := time.Now()
		go ns.Start()
		wait := natsReadyTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			wait = time.Until(dl)
		}
		if !ns.ReadyForConnections(wait) || ctx.Err() != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
			os.RemoveAll(store)
			if err := ctx.Err(); err != nil {
				return Broker{}, nil, err
			}
			return Broker{}, nil, fmt.Errorf("nats: embedded server not ready after %v", wait)
		}
		jsc := ns.JetStreamConfig()
		if jsc == nil {
			ns.Shutdown()
			ns.WaitForShutdown()
			os.RemoveAll(store)
			return Broker{}, nil, fmt.Errorf("nats: embedded server started without JetStream")
		}
		sync := "every " + jsc.SyncInterval.String()
		if jsc.SyncAlways {
			sync = "always"
		}
		b := Broker{
			Kind:    "nats",
			URL:     ns.ClientURL(),
			Source:  "embedded",
			Version: server.VERSION,
			Details: map[string]string{
				"jetstream":      "enabled",
				"jetstream_sync": sync,
				"store_dir":      store,
				"connection":     "tcp loopback (in-process server)",
				"startup":        time.Since(started).Round(time.Millisecond).String(),
			},
		}
		stop := func(ctx context.Context) error {
			done := make(chan struct{})
			go func() {
				ns.Shutdown()
				ns.WaitForShutdown()
				close(done)
			}()
			select {
			case <-done:
			case <-ctx.Done():
				return fmt.Errorf("nats: embedded server shutdown: %w", ctx.Err())
			}
			if err := os.RemoveAll(store); err != nil {
				return fmt.Errorf("nats: remove store: %w", err)
			}
			return nil
		}
		return b, stop, nil
	}
}

// NATSOfficialImage is the image of the container source.
const NATSOfficialImage = "nats:2.10"

// NATS returns the run's NATS starter: the embedded server by default, or
// the official image in a container when RPCBENCH_NATS_SOURCE=container
// (useful to compare the in-process server with a separate broker process;
// the image must be present or pullable).
func NATS() Starter {
	embedded, container := NATSEmbedded(), NATSContainer()
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		switch src := os.Getenv("RPCBENCH_NATS_SOURCE"); src {
		case "", "embedded":
			return embedded(ctx, opts)
		case "container":
			return container(ctx, opts)
		default:
			return Broker{}, nil, fmt.Errorf("RPCBENCH_NATS_SOURCE=%q: want embedded or container", src)
		}
	}
}

// NATSContainer starts the official nats image through the container
// lifecycle: host networking, a free port on 127.0.0.1, JetStream on with
// its store inside the container. JetStream's sync=always is a config-file
// setting there, so only sync=default is offered.
func NATSContainer() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		for k, v := range opts.Params {
			if k != NATSSyncParam || (v != "" && v != "default") {
				return Broker{}, nil, &Unavailable{Reason: fmt.Sprintf("the nats container source supports only sync=default (got %s=%s); use the embedded source", k, v)}
			}
		}
		ports, err := FreePorts(1)
		if err != nil {
			return Broker{}, nil, err
		}
		port := strconv.Itoa(ports[0])
		c, err := StartContainer(ctx, ContainerSpec{
			Kind: "nats",
			Images: []Image{{Name: NATSOfficialImage,
				Cmd: []string{"-a", Host, "-p", port, "-js", "-sd", "/tmp/nats-js"}}},
			Ports:       ports,
			ReadyLog:    "Server is ready",
			ReadyPorts:  ports,
			StopTimeout: 2 * time.Second,
		})
		if err != nil {
			return Broker{}, nil, err
		}
		b := Broker{Kind: "nats", URL: "nats://" + c.Endpoint(ports[0]), Source: "container", Image: c.Image,
			Details: map[string]string{"jetstream_sync": "default", "network": string(c.Network)}}
		return b, c.Stop, nil
	}
}
