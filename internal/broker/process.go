package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// stopGroup ends the process group of a broker started as a local process
// (pid leads it): SIGCONT (a frozen broker must be able to act on the
// next signal), SIGTERM, SIGKILL after grace (or at once when ctx ends),
// then waits for the leader's exit (exited closes) and for every process
// of the group to be gone (a JVM's children are reaped by init).
func stopGroup(ctx context.Context, pid int, exited <-chan struct{}, grace time.Duration) {
	syscall.Kill(-pid, syscall.SIGCONT)
	syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
	case <-ctx.Done():
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	<-exited
	waitGroupGone(pid, 10*time.Second)
}

// waitGroupGone waits until no process of group pgid is left (the name
// server, a child of the broker, is reaped by init after the broker dies).
func waitGroupGone(pgid int, max time.Duration) {
	end := time.Now().Add(max)
	for time.Now().Before(end) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// findHome finds the directory holding a broker's run.sh and lib/ with
// its jars (ok says whether a directory does): the environment variable
// env when set, else docker/NAME above the working directory or the
// executable.
func findHome(name, env, jar string, ok func(dir string) bool) (string, error) {
	if d := os.Getenv(env); d != "" {
		if ok(d) {
			return d, nil
		}
		return "", fmt.Errorf("%s: %s=%s has no run.sh and lib/%s", name, env, d, jar)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		for dir := s; ; dir = filepath.Dir(dir) {
			if cand := filepath.Join(dir, "docker", name); ok(cand) {
				return cand, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", fmt.Errorf("%s: no docker/%s/lib with the jars; run `make brokers`", name, name)
}
