//go:build race

package gozero_test

const raceDetector = true
