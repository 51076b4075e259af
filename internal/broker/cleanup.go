package broker

// Labels on every container rpcbench starts, the containers this process
// has not removed yet, and finding and removing labelled containers.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// Labels put on every container rpcbench starts.
const (
	// LabelKey=1 marks a container as rpcbench's.
	LabelKey = "rpcbench"
	// LabelRun holds the RunID of the process that started it.
	LabelRun = "rpcbench.run"
	// LabelKind holds the ContainerSpec.Kind.
	LabelKind = "rpcbench.kind"
	// LabelKeep=1 marks containers left running on purpose (rpcbench
	// brokers up); ListLabelled skips them unless asked.
	LabelKeep = "rpcbench.keep"
)

// RunID identifies this process's containers (label LabelRun):
// RPCBENCH_RUN_ID when set (tests use it to find the containers of a
// child rpcbench), else random.
var RunID = runIDFromEnv()

func runIDFromEnv() string {
	if id := os.Getenv("RPCBENCH_RUN_ID"); id != "" {
		return id
	}
	return newRunID()
}

func newRunID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b[:])
}

// liveSet tracks the containers this process started and has not removed.
type liveSet struct {
	mu sync.Mutex
	m  map[*Container]struct{}
}

var live = &liveSet{m: map[*Container]struct{}{}}

func (s *liveSet) add(c *Container) {
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *liveSet) remove(c *Container) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// StopAll removes every container this process started and has not removed
// yet, except those started with Keep. Call it from a signal handler or a
// deferred cleanup in main so Ctrl-C leaves nothing behind.
func StopAll(ctx context.Context) error {
	live.mu.Lock()
	var cs []*Container
	for c := range live.m {
		cs = append(cs, c)
	}
	live.mu.Unlock()
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Stop(ctx))
	}
	return errors.Join(errs...)
}

// ListLabelled lists the IDs of containers (running or not) labelled
// LabelKey=1, of one run if runID is not empty, skipping LabelKeep ones
// unless withKept.
func ListLabelled(ctx context.Context, runID string, withKept bool) ([]string, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	f := client.Filters{}
	f = f.Add("label", LabelKey+"=1")
	if runID != "" {
		f = f.Add("label", LabelRun+"="+runID)
	}
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range res.Items {
		if !withKept && c.Labels[LabelKeep] == "1" {
			continue
		}
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// ContainerRunning reports whether the container id exists and runs.
func ContainerRunning(ctx context.Context, id string) (bool, error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return false, err
	}
	defer cli.Close()
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if isGone(err) {
			return false, nil
		}
		return false, err
	}
	return res.Container.State != nil && res.Container.State.Running, nil
}

// RemoveContainer force-removes container id (gone is not an error).
func RemoveContainer(ctx context.Context, id string) error {
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isGone(err) {
		return err
	}
	return nil
}
