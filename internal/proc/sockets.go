package proc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SocketInodes are the inodes of the sockets processes pids have open
// (from /proc/PID/fd: "socket:[N]"). A process gone meanwhile is skipped.
func SocketInodes(pids []int) map[uint32]bool {
	out := map[uint32]bool{}
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			l, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSuffix(l[len("socket:["):], "]"), 10, 32)
			if err == nil {
				out[uint32(n)] = true
			}
		}
	}
	return out
}
