package proc

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// A child that burns CPU shows in its parent's tree: TreeCPU of this
// process grows by at least part of what the child used, SelfCPU does not
// count the child.
func TestTreeCPU(t *testing.T) {
	before, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		child, err := TreeCPU(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if child >= 100*time.Millisecond {
			all, err := TreeCPU(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if all-before < child {
				t.Fatalf("the tree grew by %v, the child alone used %v", all-before, child)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the busy child used only %v in 30 s", child)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSelfCPU(t *testing.T) {
	a, err := SelfCPU()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i ^ x
	}
	b, _ := SelfCPU()
	if b <= a || x == 1 {
		t.Fatalf("SelfCPU did not grow: %v -> %v", a, b)
	}
}

// A busy child shows in the machine's CPU: MachineCPU grows by at least
// most of what the child used.
func TestMachineCPU(t *testing.T) {
	before, err := MachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	after, err := MachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	used := time.Duration(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime())
	if used < 100*time.Millisecond {
		t.Fatalf("the busy child used only %v", used)
	}
	// tick accounting differs from the child's own rusage by a few ticks
	if after.Busy-before.Busy < used*8/10 {
		t.Fatalf("the machine's CPU grew by %v while a child used %v", after.Busy-before.Busy, used)
	}
}
