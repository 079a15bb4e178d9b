package hub

import (
	"time"

	"github.com/hubkit/hubkit/endpoint/endpointtest"
)

// SetClock makes the hub built from c use k for feedback batching and
// send-time checks.
func SetClock(c *Config, k *FakeClock) { c.clock = k }

// A FakeClock is a clock that moves only when told: the endpoint suite's.
type FakeClock = endpointtest.Clock

// NewFakeClock returns a clock at now.
func NewFakeClock(now time.Time) *FakeClock { return endpointtest.NewClock(now) }

// DeleteWaiting reports whether a DeleteDevice of deviceID waits for the
// SendC2D calls of the device's lock stripe: a waiting writer makes
// TryRLock fail.
func DeleteWaiting(h *Hub, deviceID string) bool {
	l := h.deviceLock(deviceID)
	if l.TryRLock() {
		l.RUnlock()
		return false
	}
	return true
}
