package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat's CPU
// times (100 on Linux for every architecture rpcbench runs on).
const clockTick = 100

// SelfCPU is the CPU time (user + system) this process has used.
func SelfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// statCPU reads a /proc/PID/stat line: the parent pid and the CPU time
// (utime + stime, and the reaped children's cutime + cstime).
func statCPU(path string) (ppid int, cpu time.Duration, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("%s: no command field", path)
	}
	// fields after "(comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17)
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	ppid, _ = strconv.Atoi(f[1])
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		ticks += v
	}
	return ppid, time.Duration(ticks) * time.Second / clockTick, nil
}

// TreeCPU is the CPU time used by process pid and all its descendants
// (a container's processes are host processes, so its init's tree is the
// container), at /proc/PID/stat's 10 ms resolution.
func TreeCPU(pid int) (time.Duration, error) {
	t, err := readTree()
	if err != nil {
		return 0, err
	}
	if _, ok := t.cpu[pid]; !ok {
		return 0, fmt.Errorf("process %d is gone", pid)
	}
	var total time.Duration
	for _, n := range t.under(pid) {
		total += t.cpu[n]
	}
	return total, nil
}

// TreePIDs are process pid and all its descendants.
func TreePIDs(pid int) ([]int, error) {
	t, err := readTree()
	if err != nil {
		return nil, err
	}
	if _, ok := t.cpu[pid]; !ok {
		return nil, fmt.Errorf("process %d is gone", pid)
	}
	return t.under(pid), nil
}

// tree is every process's parent and CPU time, read from /proc.
type tree struct {
	parent map[int]int
	cpu    map[int]time.Duration
}

func readTree() (*tree, error) {
	paths, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	t := &tree{parent: map[int]int{}, cpu: map[int]time.Duration{}}
	for _, p := range paths {
		n, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		pp, c, err := statCPU(p)
		if err != nil {
			continue // gone meanwhile
		}
		t.parent[n], t.cpu[n] = pp, c
	}
	return t, nil
}

// under lists pid and its descendants.
func (t *tree) under(pid int) []int {
	var out []int
	for n := range t.cpu {
		for a := n; a > 1; a = t.parent[a] {
			if a == pid {
				out = append(out, n)
				break
			}
		}
	}
	return out
}
