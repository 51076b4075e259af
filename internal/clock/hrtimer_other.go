//go:build !linux

package clock

import "time"

// hrTimer: elsewhere than Linux the Go timer is used alone.
type hrTimer struct{}

func newHRTimer() *hrTimer                 { return nil }
func (t *hrTimer) kick(time.Duration) bool { return false }
func (t *hrTimer) close()                  {}
