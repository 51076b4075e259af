package broker

import (
	"os/exec"

	"github.com/rpcbench/rpcbench/internal/proc"
)

// startTied starts cmd tied to rpcbench's lifetime (proc.StartTied).
func startTied(cmd *exec.Cmd, exited chan<- struct{}) error { return proc.StartTied(cmd, exited) }
