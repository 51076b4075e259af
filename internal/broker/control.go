package broker

import (
	"context"
	"fmt"
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
