package broker

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// restartTimeout bounds how long a restarted broker may take to accept
// connections again.
const restartTimeout = 2 * time.Minute

// Control returns the faults a fault run can do to the container: kill
// (SIGKILL, the container kept), a graceful stop, start again (same
// ports: host networking; same storage: the container's own file
// system), pause and resume (the cgroup freezer).
func (c *Container) Control(readyPorts []int) Control {
	return &containerControl{c: c, ports: readyPorts}
}

type containerControl struct {
	c     *Container
	ports []int
}

func (cc *containerControl) Kill(ctx context.Context) error {
	if err := cc.c.Kill(ctx); err != nil {
		return fmt.Errorf("kill container %.12s: %w", cc.c.ID, err)
	}
	return nil
}

func (cc *containerControl) Stop(ctx context.Context) error {
	return cc.docker(ctx, "stop", func(cli *client.Client) error {
		grace := int(cc.c.stopWait / time.Second)
		if grace <= 0 {
			grace = 10
		}
		_, err := cli.ContainerStop(ctx, cc.c.ID, client.ContainerStopOptions{Timeout: &grace})
		return err
	})
}

func (cc *containerControl) Start(ctx context.Context) error {
	if err := cc.c.Restart(ctx); err != nil {
		return fmt.Errorf("start container %.12s: %w", cc.c.ID, err)
	}
	if err := waitPorts(ctx, cc.ports, restartTimeout); err != nil {
		return fmt.Errorf("container %.12s started again but is not ready: %w", cc.c.ID, err)
	}
	return nil
}

func (cc *containerControl) Pause(ctx context.Context) error {
	return cc.docker(ctx, "pause", func(cli *client.Client) error {
		_, err := cli.ContainerPause(ctx, cc.c.ID, client.ContainerPauseOptions{})
		return err
	})
}

func (cc *containerControl) Resume(ctx context.Context) error {
	return cc.docker(ctx, "unpause", func(cli *client.Client) error {
		_, err := cli.ContainerUnpause(ctx, cc.c.ID, client.ContainerUnpauseOptions{})
		return err
	})
}

func (cc *containerControl) docker(ctx context.Context, what string, f func(*client.Client) error) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := f(cli); err != nil {
		return fmt.Errorf("%s container %.12s: %w", what, cc.c.ID, err)
	}
	return nil
}

// processControl does faults to a broker run as a local process group
// (RocketMQ's and Kafka's process sources): the restarted process is the
// same command with the same environment, so the same ports and storage
// directory. cmd and exited point at the source's own fields, which a
// restart replaces, so its final stop ends the current process.
type processControl struct {
	name   string
	cmd    **exec.Cmd
	exited *chan struct{}
	grace  time.Duration
	// ready waits until the restarted broker serves again
	ready func(ctx context.Context) error
}

func (pc *processControl) running() bool {
	select {
	case <-*pc.exited:
		return false
	default:
		return true
	}
}

func (pc *processControl) group(sig syscall.Signal) error {
	if !pc.running() {
		return fmt.Errorf("%s: broker process not running", pc.name)
	}
	return syscall.Kill(-(*pc.cmd).Process.Pid, sig)
}

func (pc *processControl) Kill(context.Context) error {
	if err := pc.group(syscall.SIGKILL); err != nil {
		return err
	}
	<-*pc.exited
	waitGroupGone((*pc.cmd).Process.Pid, 10*time.Second)
	return nil
}

func (pc *processControl) Stop(ctx context.Context) error {
	if err := pc.group(syscall.SIGTERM); err != nil {
		return err
	}
	t := time.NewTimer(pc.grace)
	defer t.Stop()
	select {
	case <-*pc.exited:
	case <-t.C:
	case <-ctx.Done():
	}
	pid := (*pc.cmd).Process.Pid
	syscall.Kill(-pid, syscall.SIGKILL)
	<-*pc.exited
	waitGroupGone(pid, 10*time.Second)
	return nil
}

func (pc *processControl) Start(ctx context.Context) error {
	if pc.running() {
		return fmt.Errorf("%s: broker process is still running", pc.name)
	}
	old := *pc.cmd
	cmd := exec.Command(old.Path, old.Args[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = old.Env, old.Dir, old.Stdout, old.Stderr
	exited := make(chan struct{})
	if err := startTied(cmd, exited); err != nil {
		return fmt.Errorf("%s: start broker again: %w", pc.name, err)
	}
	*pc.cmd, *pc.exited = cmd, exited
	rctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	if err := pc.ready(rctx); err != nil {
		return fmt.Errorf("%s: broker started again but is not ready: %w", pc.name, err)
	}
	return nil
}

func (pc *processControl) Pause(context.Context) error  { return pc.group(syscall.SIGSTOP) }
func (pc *processControl) Resume(context.Context) error { return pc.group(syscall.SIGCONT) }
