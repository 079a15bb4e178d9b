package hub

import (
	"context"
	"log/slog"
	"sync"

	"github.com/hubkit/hubkit/auth"
)

// connectionStates writes devices' connection states to the registry in
// the background, many in one write, so that a connect never waits for a
// registry write and a reconnect storm costs a few syncs, not one per
// device. IoT Hub documents connectionState as lagging by up to minutes;
// ours lags by about one sync.
type connectionStates struct {
	mu      sync.Mutex // guards pending
	pending map[[2]string]auth.ConnectionChange
	wake    chan struct{} // capacity 1: pending is not empty
}

// batchStateSetter is the optional registry role the writer prefers: one
// write for many changes ([auth.Registry] has it).
type batchStateSetter interface {
	SetConnectionStates(ctx context.Context, changes []auth.ConnectionChange) error
}

func newConnectionStates() *connectionStates {
	return &connectionStates{pending: map[[2]string]auth.ConnectionChange{}, wake: make(chan struct{}, 1)}
}

// add records a change; a later change of the same identity replaces it.
func (s *connectionStates) add(c auth.ConnectionChange) {
	s.mu.Lock()
	s.pending[[2]string{c.DeviceID, c.ModuleID}] = c
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// runConnectionStates writes what is pending until ctx ends, then writes what is left
// once more, so that Shutdown and Close leave the registry current. Writes
// ignore ctx: a wake-up chosen after ctx ended must not drop the
// disconnects the stopping brokers reported.
func (h *Hub) runConnectionStates(ctx context.Context) error {
	s := h.states
	wctx := context.WithoutCancel(ctx)
	for {
		select {
		case <-s.wake:
			h.flushConnectionStates(wctx)
		case <-ctx.Done():
			h.flushConnectionStates(wctx)
			return nil
		}
	}
}

func (h *Hub) flushConnectionStates(ctx context.Context) {
	s := h.states
	s.mu.Lock()
	if len(s.pending) == 0 {
		s.mu.Unlock()
		return
	}
	changes := make([]auth.ConnectionChange, 0, len(s.pending))
	for _, c := range s.pending {
		changes = append(changes, c)
	}
	clear(s.pending)
	s.mu.Unlock()
	if b, ok := h.reg.(batchStateSetter); ok {
		if err := b.SetConnectionStates(ctx, changes); err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "record connection states", slog.Int("devices", len(changes)), slog.Any("err", err))
		}
		return
	}
	for _, c := range changes {
		if err := h.reg.SetConnectionState(ctx, c.DeviceID, c.ModuleID, c.Connected); err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "record connection state", slog.String("device_id", c.DeviceID), slog.Any("err", err))
		}
	}
}
