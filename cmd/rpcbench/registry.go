package main

import (
	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/drivers/activemq"
	"github.com/rpcbench/rpcbench/drivers/connect"
	"github.com/rpcbench/rpcbench/drivers/dubbo"
	"github.com/rpcbench/rpcbench/drivers/gozero"
	"github.com/rpcbench/rpcbench/drivers/grpc"
	httpdriver "github.com/rpcbench/rpcbench/drivers/http"
	"github.com/rpcbench/rpcbench/drivers/kafka"
	"github.com/rpcbench/rpcbench/drivers/nats"
	"github.com/rpcbench/rpcbench/drivers/netrpc"
	"github.com/rpcbench/rpcbench/drivers/rabbitmq"
	"github.com/rpcbench/rpcbench/drivers/rocketmq"
	"github.com/rpcbench/rpcbench/drivers/rpcx"
	"github.com/rpcbench/rpcbench/drivers/tcp"
	"github.com/rpcbench/rpcbench/drivers/thrift"
	"github.com/rpcbench/rpcbench/internal/broker"
)

// registry wires the drivers into the command; the core imports none of them.
// Add a driver here with one line.
func registry() *drivers.Registry {
	return drivers.NewRegistry(
		tcp.New(),
		grpc.New(),
		nats.New(),
		rocketmq.New(),
		rabbitmq.New(),
		httpdriver.New(),
		netrpc.New(),
		connect.New(),
		thrift.New(),
		rpcx.New(),
		kafka.New(),
		gozero.New(),
		dubbo.New(),
		activemq.New(),
		// drivers:
	)
}

// brokerStarters maps a broker kind to the starter the run uses when no
// --broker URL is given for it. Add a broker kind here with one line.
func brokerStarters() map[string]broker.Starter {
	return map[string]broker.Starter{
		"nats":     broker.NATS(),
		"rocketmq": broker.RocketMQ(),
		"rabbitmq": broker.RabbitMQ(),
		"kafka":    broker.Kafka(),
		"activemq": broker.ActiveMQ(),
		// starters:
	}
}

// brokerKinds lists the broker kinds --broker accepts.
func brokerKinds() []string {
	return []string{"nats", "rabbitmq", "rocketmq", "kafka", "activemq"}
}
