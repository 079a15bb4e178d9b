package hub

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
