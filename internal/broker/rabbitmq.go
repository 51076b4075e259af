package broker

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQ images, in order of preference: the official image when present
// or pullable, else the one docker/rabbitmq/build.sh builds from Debian.
const (
	RabbitMQOfficialImage = "rabbitmq:3.13"
	RabbitMQLocalImage    = "rpcbench.local/rabbitmq:3.10"
)

// RabbitMQ starts a RabbitMQ broker in a container (ContainerSpec), on
// ports chosen free on 127.0.0.1. StartOptions.Params:
//   - "network": "host" (default; RPCBENCH_BROKER_NETWORK) or "mapped";
//   - "image": run only this image (e.g. rpcbench.local/rabbitmq:3.10);
//   - "keep": "true" labels the container LabelKeep (rpcbench brokers up).
//
// The Broker records the image that ran and the server's version (from
// the connection's server properties); the URL is
// amqp://guest:guest@127.0.0.1:PORT/.
func RabbitMQ() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		c, b, err := StartRabbitMQ(ctx, opts)
		if err != nil {
			return Broker{}, nil, err
		}
		return b, c.Stop, nil
	}
}

// StartRabbitMQ is RabbitMQ's starter returning the container too (tests
// kill it; rpcbench brokers up records its id).
func StartRabbitMQ(ctx context.Context, opts StartOptions) (*Container, Broker, error) {
	netMode, err := NetworkFromEnv()
	if err != nil {
		return nil, Broker{}, err
	}
	if v := opts.Params["network"]; v != "" {
		if netMode, err = ParseNetworkMode(v); err != nil {
			return nil, Broker{}, err
		}
	}
	ports, err := FreePorts(3)
	if err != nil {
		return nil, Broker{}, err
	}
	amqpPort, distPort, epmdPort := ports[0], ports[1], ports[2]
	listen := Host
	if netMode == MappedPorts {
		// Inside its own network namespace the broker must accept the
		// port-forwarded connections from the bridge.
		listen = "0.0.0.0"
	}
	mnesia := "/tmp/rpcbench-mnesia-" + strconv.Itoa(amqpPort)
	env := map[string]string{
		"RABBITMQ_NODENAME":        "rpcbench" + strconv.Itoa(amqpPort) + "@localhost",
		"RABBITMQ_NODE_IP_ADDRESS": listen,
		"RABBITMQ_NODE_PORT":       strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT":       strconv.Itoa(distPort),
		"ERL_EPMD_PORT":            strconv.Itoa(epmdPort),
		"ERL_EPMD_ADDRESS":         "127.0.0.1",
		"RABBITMQ_MNESIA_BASE":     mnesia,
		"RABBITMQ_LOGS":            "-",
		"RABBITMQ_SASL_LOGS":       "-",
		"HOME":                     "/var/lib/rabbitmq",
		// No plugins (the official image enables prometheus on a fixed
		// port, which would clash between brokers on host networking).
		"RABBITMQ_ENABLED_PLUGINS_FILE": mnesia + "-enabled-plugins",
		// guest may connect from anywhere: in mapped mode connections come
		// from the bridge, not loopback.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-rabbit loopback_users []",
	}
	images := []Image{
		{Name: RabbitMQOfficialImage},
		{Name: RabbitMQLocalImage, Local: true, Cmd: []string{"/usr/lib/rabbitmq/bin/rabbitmq-server"}},
	}
	if want := opts.Params["image"]; want != "" {
		var picked []Image
		for _, im := range images {
			if im.Name == want {
				picked = append(picked, im)
			}
		}
		if picked == nil {
			picked = []Image{{Name: want}}
		}
		images = picked
	}
	c, err := StartContainer(ctx, ContainerSpec{
		Kind:         "rabbitmq",
		Images:       images,
		Env:          env,
		Ports:        ports,
		Network:      netMode,
		ReadyLog:     "Server startup complete",
		ReadyPorts:   []int{amqpPort},
		StartTimeout: 2 * time.Minute,
		StopTimeout:  5 * time.Second,
		Keep:         opts.Params["keep"] == "true",
	})
	if err != nil {
		return nil, Broker{}, err
	}
	u := url.URL{Scheme: "amqp", User: url.UserPassword("guest", "guest"), Host: c.Endpoint(amqpPort), Path: "/"}
	b := Broker{
		Kind:    "rabbitmq",
		URL:     u.String(),
		Source:  "container",
		Image:   c.Image,
		CPU:     c.CPU,
		PIDs:    c.PIDs,
		Control: c.Control([]int{amqpPort}),
		Details: map[string]string{
			"network":   string(netMode),
			"container": c.ID[:12],
			"node":      env["RABBITMQ_NODENAME"],
		},
	}
	v, err := RabbitMQVersion(ctx, b.URL)
	if err != nil {
		logs, _ := c.Logs(context.WithoutCancel(ctx), 30)
		stopErr := c.Stop(ctx)
		return nil, Broker{}, fmt.Errorf("rabbitmq started but refuses AMQP: %w (stop: %v)\n--- last log lines ---\n%s", err, stopErr, logs)
	}
	b.Version = v
	return c, b, nil
}

// RabbitMQVersion connects to the broker at amqpURL and returns its version
// from the server properties ("3.10.8"), also used to record the version of
// an external broker.
func RabbitMQVersion(ctx context.Context, amqpURL string) (string, error) {
	var conn *amqp.Connection
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err = amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), Properties: amqp.Table{"connection_name": "rpcbench-version"}})
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	props := conn.Properties
	v, _ := props["version"].(string)
	if p, ok := props["product"].(string); ok && p != "RabbitMQ" && p != "" {
		v = p + " " + v
	}
	return v, nil
}
