//go:build race

package driverstest

import "time"

// raceSlack widens DeadlineEpsilon in race-detector builds.
const raceSlack = 150 * time.Millisecond
