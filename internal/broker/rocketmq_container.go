package broker

// RocketMQ from its container source: the local image
// rpcbench.local/rocketmq:<version> running run.sh.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

func startRocketMQContainer(ctx context.Context, opts StartOptions, flush string) (*RocketMQBroker, error) {
	start := time.Now()
	netMode, err := NetworkFromEnv()
	if err != nil {
		return nil, err
	}
	if v := opts.Params["network"]; v != "" {
		if netMode, err = ParseNetworkMode(v); err != nil {
			return nil, err
		}
	}
	// In mapped mode the broker must accept the forwarded connections
	// inside its own namespace; it still advertises 127.0.0.1 (brokerIP1)
	// and the ports are published under the same numbers.
	bind := Host
	if netMode == MappedPorts {
		bind = "0.0.0.0"
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		nsPort, brokerPort, err := rocketMQPorts()
		if err != nil {
			return nil, err
		}
		c, err := StartContainer(ctx, ContainerSpec{
			Kind:         "rocketmq",
			Images:       []Image{{Name: RocketMQLocalImage, Local: true, Cmd: []string{"/opt/rocketmq/bin/run.sh"}}},
			Env:          rocketMQEnv(nsPort, brokerPort, flush, "/tmp/rocketmq", bind),
			Ports:        []int{nsPort, brokerPort - 2, brokerPort, brokerPort + 1},
			Network:      netMode,
			ReadyLog:     brokerReadyLine,
			ReadyPorts:   []int{nsPort, brokerPort},
			StartTimeout: 2 * time.Minute,
			StopTimeout:  2 * time.Second,
			Keep:         opts.Params["keep"] == "true",
			LogLines:     40,
		})
		if err != nil {
			lastErr = err
			if _, ok := IsUnavailable(err); ok || ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
				return nil, err
			}
			continue // lost a port race: new ports
		}
		namesrv := c.Endpoint(nsPort)
		if err := waitRocketMQRoutes(ctx, namesrv); err != nil {
			logs, _ := c.Logs(context.WithoutCancel(ctx), 40)
			return nil, errors.Join(fmt.Errorf("%w\n--- last log lines of rocketmq ---\n%s", err, logs), c.Stop(ctx))
		}
		r := &RocketMQBroker{
			Namesrv:    namesrv,
			BrokerAddr: c.Endpoint(brokerPort),
			Startup:    time.Since(start),
			Container:  c,
		}
		r.Broker = Broker{
			Kind:    "rocketmq",
			URL:     namesrv,
			Source:  "container",
			Image:   c.Image,
			Version: RocketMQVersion,
			CPU:     c.CPU,
			PIDs:    c.PIDs,
			Control: c.Control([]int{nsPort, brokerPort}),
			Details: map[string]string{
				"flush":     flush,
				"broker":    r.BrokerAddr,
				"network":   string(netMode),
				"container": c.Name,
				"startup":   r.Startup.Round(time.Millisecond).String(),
			},
		}
		if logs, err := c.Logs(ctx, 2000); err == nil {
			jvmDetails(logs, r.Details)
		}
		return r, nil
	}
	return nil, lastErr
}
