// Package env collects the environment manifest every result records: what
// built rpcbench, what it ran on, and the exact versions of the libraries
// the drivers use.
package env

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/rpcbench/rpcbench/results"
)

// Version and Commit are set at build time by the Makefile (-ldflags -X).
var (
	Version = "dev"
	Commit  = "unknown"
)

// Collect returns the manifest. libs are module paths whose versions to
// record (the drivers' Spec().Libraries).
func Collect(libs []string) results.Environment {
	e := results.Environment{
		RpcbenchVersion: Version,
		Commit:          Commit,
		GoVersion:       runtime.Version(),
		OS:              runtime.GOOS,
		Arch:            runtime.GOARCH,
		Kernel:          kernel(),
		CPUModel:        cpuModel(),
		Cores:           runtime.NumCPU(),
		GOMAXPROCS:      runtime.GOMAXPROCS(0),
		Libraries:       map[string]string{},
		Brokers:         []results.Broker{},
	}
	want := map[string]bool{}
	for _, l := range libs {
		want[l] = true
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && e.Commit == "unknown" {
				e.Commit = s.Value
			}
		}
		for _, m := range bi.Deps {
			if want[m.Path] {
				v := m.Version
				if m.Replace != nil {
					v = m.Replace.Version + " (replaces " + m.Version + ")"
				}
				e.Libraries[m.Path] = v
			}
		}
	}
	for l := range want {
		if _, ok := e.Libraries[l]; !ok {
			e.Libraries[l] = "unknown (no build info)"
		}
	}
	return e
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
