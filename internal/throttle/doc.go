// Package throttle lets a repeated event through at most once per
// interval: for log lines that would otherwise come with every message.
package throttle
