package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/route"
)

// touch records activity of an identity in the registry. It is best
// effort: IoT Hub documents lastActivityTime as for debugging only.
func (h *Hub) touch(ctx context.Context, deviceID, moduleID string, t time.Time) {
	if err := h.reg.Touch(ctx, deviceID, moduleID, t); err != nil {
		h.log.LogAttrs(ctx, slog.LevelDebug, "record activity", slog.String("device_id", deviceID), slog.Any("err", err))
	}
}

// Connected records that an identity connected in the registry and emits
// a deviceConnected event for routing.
func (h *Hub) Connected(ctx context.Context, id auth.Identity) { h.connection(ctx, id, true) }

// Disconnected records that an identity disconnected in the registry and
// emits a deviceDisconnected event for routing.
func (h *Hub) Disconnected(ctx context.Context, id auth.Identity) { h.connection(ctx, id, false) }

func (h *Hub) connection(ctx context.Context, id auth.Identity, connected bool) {
	if h.serving() != nil {
		return
	}
	// A broker stopping reports disconnects with its ctx already
	// cancelled: the activity and the event must be recorded all the same.
	ctx = context.WithoutCancel(ctx)
	now := h.cfg.Clock.Now().UTC()
	op, delta := "deviceDisconnected", int64(-1)
	if connected {
		op, delta = "deviceConnected", 1
	}
	h.metrics.connections.Add(delta)
	h.states.add(auth.ConnectionChange{DeviceID: id.DeviceID, ModuleID: id.ModuleID, Connected: connected, Time: now})
	h.touch(ctx, id.DeviceID, id.ModuleID, now)
	body := fmt.Sprintf(`{"sequenceNumber":"%064X"}`, h.nextEventSeq(now))
	h.event(ctx, route.DeviceConnectionStateEvents, "deviceConnectionStateNotification", op, id.DeviceID, id.ModuleID, now, []byte(body))
}

// nextEventSeq returns the next connection event sequence number: strictly
// increasing, and taken from the clock so that it also increases across
// restarts.
func (h *Hub) nextEventSeq(now time.Time) uint64 {
	for {
		last := h.eventSeq.Load()
		next := max(last+1, uint64(now.UnixNano()))
		if h.eventSeq.CompareAndSwap(last, next) {
			return next
		}
	}
}

// sourceNames are the iothub-message-source values of the routing sources.
var sourceNames = map[route.Source]string{
	route.DeviceLifecycleEvents:       hubkit.SourceLifecycle,
	route.DeviceConnectionStateEvents: hubkit.SourceConnectionState,
}

// event emits a device event with the properties of IoT Hub's
// non-telemetry events. Like IoT Hub, it is dropped unless a route takes it.
func (h *Hub) event(ctx context.Context, source route.Source, schema, op, deviceID, moduleID string, now time.Time, body []byte) {
	m := &hubkit.Message{Body: body, System: hubkit.SystemProperties{
		CorrelationID:      newID(),
		UserID:             h.name,
		ContentType:        "application/json",
		ContentEncoding:    "utf-8",
		ConnectionDeviceID: deviceID,
		ConnectionModuleID: moduleID,
		EnqueuedTime:       now,
		MessageSource:      sourceNames[source],
	}}
	m.Properties.Set("hubName", h.name)
	m.Properties.Set("deviceId", deviceID)
	if moduleID != "" {
		m.Properties.Set("moduleId", moduleID)
	}
	m.Properties.Set("operationTimestamp", now.Format(time.RFC3339Nano))
	m.Properties.Set("iothub-message-schema", schema)
	m.Properties.Set("opType", op)
	entries, err := h.route(ctx, source, m)
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "device event lost", slog.String("device_id", deviceID), slog.String("op", op), slog.Any("err", err))
		return
	}
	if len(entries) == 0 {
		return
	}
	h.enqueue(ctx, entries, func(err error) {
		if err != nil {
			h.log.LogAttrs(h.ctx, slog.LevelError, "device event lost", slog.String("device_id", deviceID), slog.String("op", op), slog.Any("err", err))
		}
	})
}

// lifecycle emits a device lifecycle event whose body is the device's twin.
func (h *Hub) lifecycle(ctx context.Context, op string, d auth.Device) {
	now := h.cfg.Clock.Now().UTC()
	meta := map[string]any{"$metadata": map[string]string{"$lastUpdated": now.Format(time.RFC3339Nano)}, "$version": 1}
	body, err := json.Marshal(map[string]any{
		"deviceId":   d.DeviceID,
		"etag":       d.ETag,
		"version":    2,
		"properties": map[string]any{"desired": meta, "reported": meta},
	})
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "encode lifecycle event", slog.Any("err", err))
		return
	}
	h.event(ctx, route.DeviceLifecycleEvents, "deviceLifecycleNotification", op, d.DeviceID, "", now, body)
}

// GetDevice returns a device from the registry, with
// CloudToDeviceMessageCount the number of messages in its queue now.
func (h *Hub) GetDevice(ctx context.Context, deviceID string) (auth.Device, error) {
	if err := h.running(); err != nil {
		return auth.Device{}, err
	}
	d, err := h.reg.Get(ctx, deviceID)
	if err != nil {
		return d, err
	}
	return d, h.countC2D(ctx, &d)
}

func (h *Hub) countC2D(ctx context.Context, d *auth.Device) error {
	n, err := h.q.Len(ctx, d.DeviceID)
	if err != nil {
		return h.closedErr(fmt.Errorf("hub: count messages of %q: %w", d.DeviceID, err))
	}
	d.CloudToDeviceMessageCount = n
	return nil
}

// Devices returns up to top devices (0 means 1000, the most) whose ids
// sort after after, in id order, like GetDevice.
func (h *Hub) Devices(ctx context.Context, after string, top int) ([]auth.Device, error) {
	if err := h.running(); err != nil {
		return nil, err
	}
	ds, err := h.reg.List(ctx, after, top)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		if err := h.countC2D(ctx, &ds[i]); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// CreateDevice adds a device to the registry (see [Registry.Create]) and
// emits a createDeviceIdentity lifecycle event for routing.
func (h *Hub) CreateDevice(ctx context.Context, d auth.Device) (auth.Device, error) {
	if err := h.running(); err != nil {
		return auth.Device{}, err
	}
	d, err := h.reg.Create(ctx, d)
	if err != nil {
		return d, err
	}
	h.lifecycle(ctx, "createDeviceIdentity", d)
	return d, nil
}

// UpdateDevice replaces a device whose etag matches ifMatch (see
// [Registry.Update]). Disabling a device or changing its credentials
// disconnects it, as any such change made through [Hub.Registry] does
// when the hub made the registry.
func (h *Hub) UpdateDevice(ctx context.Context, d auth.Device, ifMatch string) (auth.Device, error) {
	if err := h.running(); err != nil {
		return auth.Device{}, err
	}
	old, err := h.reg.Get(ctx, d.DeviceID)
	if err != nil {
		return old, err
	}
	n, err := h.reg.Update(ctx, d, ifMatch)
	if err != nil {
		return n, err
	}
	if h.cfg.Registry != nil { // the hub sees a registry it made change by itself
		h.registryChanged(auth.Change{Kind: auth.Updated, DeviceID: n.DeviceID, Enabled: n.Status == auth.StatusEnabled, CredentialsChanged: n.Authentication != old.Authentication})
	}
	return n, h.countC2D(ctx, &n)
}

// DeleteDevice removes a device whose etag matches ifMatch (see
// [Registry.Delete]): it disconnects it, drops its cloud-to-device queue
// and the feedback not yet sent for it, and emits a deleteDeviceIdentity
// lifecycle event.
func (h *Hub) DeleteDevice(ctx context.Context, deviceID, ifMatch string) error {
	if err := h.running(); err != nil {
		return err
	}
	l := h.deviceLock(deviceID) // no SendC2D between the delete and the purge
	l.Lock()
	defer l.Unlock()
	d, err := h.reg.Get(ctx, deviceID)
	if err != nil {
		return err
	}
	if err := h.reg.Delete(ctx, deviceID, ifMatch); err != nil {
		return err
	}
	if h.cfg.Registry != nil {
		h.registryChanged(auth.Change{Kind: auth.Deleted, DeviceID: deviceID})
	}
	// Purged outcomes of a deleted device give no feedback: the feedback
	// loop drops records whose device generation is gone.
	if _, err := h.q.Purge(ctx, deviceID); err != nil {
		return h.closedErr(fmt.Errorf("hub: drop queue of %q: %w", deviceID, err))
	}
	h.lifecycle(ctx, "deleteDeviceIdentity", d)
	return nil
}

// deviceLock returns the lock of the device's stripe: SendC2D holds it
// shared from its registry check to its enqueue, DeleteDevice exclusively
// from its registry delete to its purge.
func (h *Hub) deviceLock(deviceID string) *sync.RWMutex {
	return &h.deviceLocks[idHash(deviceID)%uint32(len(h.deviceLocks))]
}
