package rocketmq_test

import "github.com/rpcbench/rpcbench/internal/wire"

var wireRespond = wire.Respond
