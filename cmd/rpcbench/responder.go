package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rpcbench/rpcbench/drivers"
	"github.com/rpcbench/rpcbench/internal/proc"
	"github.com/rpcbench/rpcbench/internal/runner"
)

// Where a run's responders run (--responder).
const (
	responderProcess   = "process"
	responderInProcess = "in-process"
)

// responderStartTimeout bounds how long a responder process may take to
// say where it serves (a broker driver's responder declares its queues or
// topics first).
const responderStartTimeout = 2 * time.Minute

// serveBrokersEnv passes `serve` brokers (KIND=URL lines) as --broker
// does, out of sight of other users' ps.
const serveBrokersEnv = "RPCBENCH_SERVE_BROKERS"

// responderStopGrace is how long a responder process gets to stop after
// SIGINT before it is killed.
const responderStopGrace = 10 * time.Second

// serveProcess starts a unit's responder as its own process: this binary's
// `serve`, with the unit's driver, variant, effective options and
// responder concurrency, at at. It returns once the child has printed the
// address it serves at.
func serveProcess(ctx context.Context, u runner.Unit, at drivers.Place, o runner.ServeOptions) (drivers.Server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("responder process: %w", err)
	}
	spec, cfg := u.Driver.Spec(), u.Config()
	args := []string{"serve", "--driver", spec.Name, "--variant", cfg.Variant,
		"--responder-concurrency", strconv.Itoa(cfg.Concurrency())}
	for _, k := range slices.Sorted(maps.Keys(cfg.Options)) {
		args = append(args, "--option", k+"="+cfg.Options[k])
	}
	if o.Ledger != "" {
		args = append(args, "--ledger", o.Ledger, "--incarnation", strconv.Itoa(max(o.Incarnation, 1)))
	}
	if o.ChainNext != "" {
		args = append(args, "--chain-next", o.ChainNext)
	}
	var env []string
	if spec.Kind == drivers.Broker {
		// through the environment, not argv: the URL may hold a password
		// and any local user can read a process's command line
		env = append(env, serveBrokersEnv+"="+spec.Broker+"="+at.Broker)
	} else {
		listen := at.Listen
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		args = append(args, "--listen", listen)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &responderProc{cmd: cmd, stderr: &proc.Tail{Max: 4 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := proc.StartTied(cmd, p.exited); err != nil {
		return nil, fmt.Errorf("responder process: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if i := strings.LastIndex(line, " at "); !sent && strings.HasPrefix(line, "serving ") && i > 0 {
				addr <- line[i+4:]
				sent = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	wait := time.NewTimer(responderStartTimeout)
	defer wait.Stop()
	select {
	case a := <-addr:
		p.addr = a
		// serve prints its address with the broker's password redacted:
		// the queue or subject is its own, the URL is the one it was given
		if spec.Kind == drivers.Broker {
			if _, frag, ok := strings.Cut(a, "#"); ok {
				// the frag keeps the routes to the delay proxies
				// (drivers.WithVia) the address has
				url, _, _ := strings.Cut(at.Broker, "#")
				url, _, _ = drivers.SplitVia(url)
				p.addr = url + "#" + frag
			}
		}
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("responder process exited: %s", p.why())
	case <-wait.C:
		p.Close()
		return nil, fmt.Errorf("responder process did not say where it serves within %v: %s", responderStartTimeout, p.why())
	case <-ctx.Done():
		p.Close()
		return nil, ctx.Err()
	}
}

// responderProc is a responder running as a child process.
type responderProc struct {
	cmd    *exec.Cmd
	stderr *proc.Tail
	exited chan struct{}
	addr   string
	// faultKilled is set when Signal sent SIGKILL
	faultKilled atomic.Bool
}

func (p *responderProc) killed() bool { return p.faultKilled.Load() }

func (p *responderProc) Addr() string { return p.addr }

// Signal sends sig to the responder process (a fault run kills or freezes
// it). SIGKILL waits until it has exited.
func (p *responderProc) Signal(sig syscall.Signal) error {
	select {
	case <-p.exited:
		return errors.New("responder process has exited already")
	default:
	}
	if sig == syscall.SIGKILL {
		p.faultKilled.Store(true)
	}
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("responder process: %v: %w", sig, err)
	}
	if sig == syscall.SIGKILL {
		<-p.exited
	}
	return nil
}

// CPU is the CPU time the responder process has used.
func (p *responderProc) CPU() (time.Duration, error) { return proc.TreeCPU(p.cmd.Process.Pid) }

// PIDs are the responder process and its descendants.
func (p *responderProc) PIDs() ([]int, error) { return proc.TreePIDs(p.cmd.Process.Pid) }

// Close stops the child: SIGINT (serve closes its responder), then SIGKILL
// to its process group if it has not exited within responderStopGrace.
func (p *responderProc) Close() error {
	select {
	case <-p.exited:
		// reaped already: its pid may belong to another process by now
	default:
		pid := p.cmd.Process.Pid
		syscall.Kill(pid, syscall.SIGINT)
		t := time.NewTimer(responderStopGrace)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
			syscall.Kill(-pid, syscall.SIGKILL)
			<-p.exited
			return fmt.Errorf("responder process did not stop within %v after SIGINT: killed", responderStopGrace)
		}
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			return nil
		}
		if st.ExitCode() == 130 {
			return nil
		}
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && p.killed() {
			return nil // a fault run killed it
		}
		return errors.New("responder process: " + st.String() + ": " + p.why())
	}
	return nil
}

// why is the last line of the child's stderr, or its exit status.
func (p *responderProc) why() string {
	tail := strings.TrimSpace(p.stderr.String())
	if i := strings.LastIndexByte(tail, '\n'); i >= 0 {
		tail = tail[i+1:]
	}
	if tail == "" && p.cmd.ProcessState != nil {
		return p.cmd.ProcessState.String()
	}
	return tail
}

// serveFunc is how the run starts its responders: nil (in this process)
// or serveProcess.
func serveFunc(f runFlags) func(context.Context, runner.Unit, drivers.Place, runner.ServeOptions) (drivers.Server, error) {
	if f.responder == responderInProcess {
		return nil
	}
	return serveProcess
}

// responderWhere is what the results record of where responders ran.
func responderWhere(f runFlags) string {
	if f.target != "" {
		return "remote"
	}
	return f.responder
}
