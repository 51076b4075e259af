//go:build !race

package connect_test

const raceOn = false
