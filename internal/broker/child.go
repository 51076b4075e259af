package broker

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startTied starts cmd in its own process group (a terminal's Ctrl-C
// reaches rpcbench only, which stops its brokers in order; a stop can
// signal the whole group) with SIGKILL as its death signal, so a killed
// rpcbench leaves no broker behind. exited closes when cmd has exited.
func startTied(cmd *exec.Cmd, exited chan<- struct{}) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits:
		// keep this goroutine on its thread for the child's lifetime.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(exited)
	}()
	return <-started
}
