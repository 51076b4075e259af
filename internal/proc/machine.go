package proc

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Machine is the CPU time used on the whole machine since boot, summed
// over CPUs, from /proc/stat.
type Machine struct {
	// Busy is user, nice, system, irq and softirq time: every process's
	// and the kernel's work on their behalf (interrupt time is mostly the
	// run's own network traffic, which ticks charge to no process).
	Busy time.Duration
	// Steal is time the hypervisor gave this VM's CPUs to others while
	// they had work: a neighbour on the same host.
	Steal time.Duration
}

// MachineCPU reads the machine's CPU time.
func MachineCPU() (Machine, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return Machine{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return Machine{}, fmt.Errorf("/proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	// cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 9 || fields[0] != "cpu" {
		return Machine{}, fmt.Errorf("/proc/stat: unexpected first line %q", sc.Text())
	}
	tick := func(i int) (time.Duration, error) {
		v, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: field %d: %w", i, err)
		}
		return time.Duration(v) * time.Second / clockTick, nil
	}
	var m Machine
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, err := tick(i)
		if err != nil {
			return Machine{}, err
		}
		m.Busy += v
	}
	m.Steal, err = tick(8)
	return m, err
}
