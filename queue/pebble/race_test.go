//go:build race

package pebble_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// pooled objects are allocated again and allocation counts grow.
const raceEnabled = true
