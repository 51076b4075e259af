//go:build !race

package driverstest

// raceSlack widens DeadlineEpsilon in race-detector builds only.
const raceSlack = 0
