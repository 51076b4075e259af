// Package proc starts the child processes a run owns (brokers run as
// local processes, responders in their own process) so that none outlives
// rpcbench.
package proc

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// StartTied starts cmd in its own process group (a terminal's Ctrl-C
// reaches rpcbench only, which stops its children in order; a stop can
// signal the whole group) with SIGKILL as its death signal, so a killed
// rpcbench leaves no child behind. exited closes when cmd has exited.
func StartTied(cmd *exec.Cmd, exited chan<- struct{}) error {
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

// Tail keeps the last Max bytes written to it: a child's stderr, for the
// error that says why it failed.
type Tail struct {
	Max int
	mu  sync.Mutex
	b   []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.Max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.Max:]...)
	}
	return len(p), nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
