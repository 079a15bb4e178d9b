package hub

import (
	"context"
	"sync"
	"time"

	"github.com/hubkit/hubkit/auth"
)

// A Registry stores device identities; *auth.Registry is the default and
// the model. The hub calls it from any goroutine, so implementations are
// safe for concurrent use. Errors wrap hubkit.ErrDeviceNotFound,
// hubkit.ErrDeviceAlreadyExists, hubkit.ErrPreconditionFailed or
// hubkit.ErrArgumentInvalid as IoT Hub would answer, and every call
// honours ctx.
type Registry interface {
	// Get returns the device.
	Get(ctx context.Context, deviceID string) (auth.Device, error)
	// Create adds a device, filling in the hub-maintained fields, and
	// returns what it stored.
	Create(ctx context.Context, d auth.Device) (auth.Device, error)
	// Update replaces a device whose etag matches ifMatch ("*" matches
	// any) and returns what it stored.
	Update(ctx context.Context, d auth.Device, ifMatch string) (auth.Device, error)
	// Delete removes a device whose etag matches ifMatch ("" and "*"
	// match any).
	Delete(ctx context.Context, deviceID, ifMatch string) error
	// List returns up to limit devices (0 means 1000) whose ids sort after
	// after, in id order.
	List(ctx context.Context, after string, limit int) ([]auth.Device, error)
	// SetConnectionState records that a device (moduleID empty) or module
	// connected or disconnected.
	SetConnectionState(ctx context.Context, deviceID, moduleID string, connected bool) error
	// Touch records activity of a device or module at t. It is called for
	// every message, so it must be cheap.
	Touch(ctx context.Context, deviceID, moduleID string, t time.Time) error
}

var _ Registry = (*auth.Registry)(nil)

// disconnects holds the identities whose connections registry changes
// close, on their way to the brokers. The registry reports changes under
// its write lock, where calling a broker, which may read the registry,
// could deadlock; so the report only queues, and runDisconnects tells the
// brokers.
type disconnects struct {
	mu      sync.Mutex    // guards pending
	pending [][2]string   // device and module ids, "" for a device
	wake    chan struct{} // capacity 1: pending is not empty
}

// registryChanged is the registry's OnChange: it queues a disconnect of an
// identity deleted, disabled or given new credentials. A device's brokers
// close its modules' connections with its own.
func (h *Hub) registryChanged(c auth.Change) {
	if c.Kind == auth.Created || c.Enabled && !c.CredentialsChanged {
		return
	}
	d := &h.disconnects
	d.mu.Lock()
	d.pending = append(d.pending, [2]string{c.DeviceID, c.ModuleID})
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// runDisconnects tells the brokers what registryChanged queued until ctx
// ends.
func (h *Hub) runDisconnects(ctx context.Context) error {
	d := &h.disconnects
	for {
		select {
		case <-d.wake:
		case <-ctx.Done():
			return nil
		}
		d.mu.Lock()
		ids := d.pending
		d.pending = nil
		d.mu.Unlock()
		for _, id := range ids {
			for _, b := range h.cfg.Brokers {
				b.Disconnect(id[0], id[1])
			}
		}
	}
}
