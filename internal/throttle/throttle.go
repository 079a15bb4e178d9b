package throttle

import (
	"sync/atomic"
	"time"
)

// A Gate lets an event through at most once per interval. Its zero value
// lets the first event through. It is safe for concurrent use.
type Gate struct {
	last atomic.Int64 // unix nanoseconds of the last event let through; 0: none
}

// Allow reports whether an event at now passes: none did before, or
// interval has gone by since the last that did. A passing event becomes
// the last; of events racing for the same opening, one passes.
func (g *Gate) Allow(now time.Time, interval time.Duration) bool {
	n, prev := now.UnixNano(), g.last.Load()
	return (prev == 0 || n-prev >= int64(interval)) && g.last.CompareAndSwap(prev, n)
}
