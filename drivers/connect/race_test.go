//go:build race

package connect_test

// raceOn: the race detector is on.
const raceOn = true
