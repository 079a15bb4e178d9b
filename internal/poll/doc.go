// Package poll waits in tests for a condition, polling it with a
// deadline instead of sleeping a guessed time.
package poll
