package proc

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// MachineCPU is the CPU time every process on the machine has used since
// boot, summed over CPUs (/proc/stat's user, nice and system), plus the
// time the hypervisor took from this VM (steal). Interrupt and softirq
// time is left out: on one host it is mostly the run's own network
// traffic, which ticks charge to no process.
func MachineCPU() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, fmt.Errorf("/proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	// cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", sc.Text())
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 8} {
		v, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: field %d: %w", i, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}
