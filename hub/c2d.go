package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/queue"
)

var _ broker.BatchCompleter = (*Hub)(nil)

// maxExpiry is the furthest in the future a C2D expiry time may be.
const maxExpiry = 48 * time.Hour

// SendC2D queues a cloud-to-device message for a device with IoT Hub's
// send-time checks: the device exists and is enabled (404001), the message
// fits 64 KiB (413001), its message id, ack and application properties are
// valid (400004), its expiry is in the future and at most 48 h away
// (403009), and the device queue holds fewer than Config.C2DMaxQueueDepth
// messages (403004). It stamps To, the expiry (Config.C2DDefaultTTL when
// none is given) and, through the store, the enqueued time and the
// per-device sequence number, which it returns. When it returns nil the
// message is durable. SendC2D does not keep msg.
func (h *Hub) SendC2D(ctx context.Context, deviceID string, msg *hubkit.Message) (uint64, error) {
	if err := h.running(); err != nil {
		return 0, err
	}
	// The check and the enqueue are one step for DeleteDevice, which
	// otherwise could delete and purge between them and leave this message
	// to a device re-created with the same id.
	l := h.deviceLock(deviceID)
	l.RLock()
	defer l.RUnlock()
	d, err := h.reg.Get(ctx, deviceID)
	if err != nil {
		return 0, err
	}
	if d.Status == auth.StatusDisabled {
		return 0, fmt.Errorf("hub: device %q is disabled: %w", deviceID, hubkit.ErrDeviceNotFound)
	}
	if err := hubkit.ValidateC2D(msg); err != nil {
		return 0, err
	}
	m := msg.Clone()
	s := &m.System
	s.Ack, _ = hubkit.ParseAck(string(s.Ack)) // checked by ValidateC2D
	now := h.cfg.Clock.Now()
	switch {
	case s.ExpiryTime.IsZero():
		s.ExpiryTime = now.Add(h.cfg.C2DDefaultTTL).UTC()
	case !s.ExpiryTime.After(now) || s.ExpiryTime.After(now.Add(maxExpiry)):
		return 0, fmt.Errorf("%w: expiry %s must be later than now and at most 48h away", hubkit.ErrInvalidMessageExpiryTime, s.ExpiryTime.UTC().Format(time.RFC3339))
	}
	s.To = "/devices/" + deviceID + "/messages/deviceBound"
	s.DeliveryCount = 0
	// The feedback loop needs the generation the message was sent to, to
	// drop feedback for a device deleted (and maybe re-created) since; the
	// field means nothing else on C2D and ReceiveC2D clears it.
	s.ConnectionAuthGenerationID = d.GenerationID
	seq, err := h.q.Enqueue(ctx, deviceID, m, queue.EnqueueOptions{
		MaxDepth:         h.cfg.C2DMaxQueueDepth,
		MaxDeliveryCount: uint32(h.cfg.C2DMaxDeliveryCount),
		Journal:          s.Ack != hubkit.AckNone,
	})
	if err != nil {
		return 0, h.closedErr(fmt.Errorf("hub: send to %q: %w", deviceID, err))
	}
	h.metrics.c2dSent.Add(1)
	return seq, nil
}

// ReceiveC2D locks the next cloud-to-device message of the device as
// [queue.DeviceQueues.Receive] does with opts, for Config.C2DLockTimeout
// when opts.Lock is 0. Unless opts.NoWait, it waits until one is
// available, ctx ends or the hub closes; with NoWait it returns
// queue.ErrEmpty when none is. opts.Volatile keeps the lock in memory
// only (see [queue.ReceiveOptions]).
func (h *Hub) ReceiveC2D(ctx context.Context, deviceID string, opts queue.ReceiveOptions) (queue.Delivery, error) {
	if err := h.serving(); err != nil {
		return queue.Delivery{}, err
	}
	if opts.Lock <= 0 {
		opts.Lock = h.cfg.C2DLockTimeout
	}
	ctx, cancel := h.bound(ctx)
	defer cancel()
	d, err := h.q.Receive(ctx, deviceID, opts)
	if err != nil {
		return d, h.closedErr(err)
	}
	d.Message.System.ConnectionAuthGenerationID = ""
	if !opts.Volatile {
		// A device asked (HTTPS). A volatile receive is a broker pushing
		// to a connection; the device's acknowledgement, through Settle
		// or CompleteC2D, records its activity.
		h.touch(ctx, deviceID, "", h.cfg.Clock.Now())
	}
	return d, nil
}

// Settle ends a delivery of ReceiveC2D: complete, reject, abandon or
// release. An unknown or expired lock token gives an error wrapping
// hubkit.ErrDeviceMessageLockLost.
func (h *Hub) Settle(ctx context.Context, deviceID, lockToken string, how broker.Settlement) error {
	if err := h.serving(); err != nil { // a broker stopping releases and completes
		return err
	}
	var err error
	switch how {
	case broker.Complete:
		if err = h.q.Complete(ctx, deviceID, lockToken); err == nil {
			h.metrics.c2dCompleted.Add(1)
		}
	case broker.Reject:
		if err = h.q.Reject(ctx, deviceID, lockToken); err == nil {
			h.metrics.c2dRejected.Add(1)
		}
	case broker.Abandon:
		if _, err = h.q.Abandon(ctx, deviceID, lockToken); err == nil {
			h.metrics.c2dAbandoned.Add(1)
		}
	case broker.Release:
		err = h.q.Release(ctx, deviceID, lockToken)
	default:
		return fmt.Errorf("%w: unknown settlement %d", hubkit.ErrArgumentInvalid, how)
	}
	if err != nil {
		return h.closedErr(fmt.Errorf("hub: settle %q: %w", deviceID, err))
	}
	h.touch(ctx, deviceID, "", h.cfg.Clock.Now())
	return nil
}

// CompleteC2D completes several deliveries of ReceiveC2D of one device,
// as Settle with Complete does for each, in one store write when the
// store is a [queue.BatchCompleter]. It implements [broker.BatchCompleter]:
// one error per token, in token order, nil for each completed message.
func (h *Hub) CompleteC2D(ctx context.Context, deviceID string, lockTokens []string) []error {
	var errs []error
	if err := h.serving(); err != nil {
		errs = make([]error, len(lockTokens))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if bc, ok := h.q.(queue.BatchCompleter); ok {
		errs = bc.CompleteBatch(ctx, deviceID, lockTokens)
	} else {
		errs = make([]error, len(lockTokens))
		for i, t := range lockTokens {
			errs[i] = h.q.Complete(ctx, deviceID, t)
		}
	}
	done := 0
	for i, err := range errs {
		if err != nil {
			errs[i] = h.closedErr(fmt.Errorf("hub: settle %q: %w", deviceID, err))
			continue
		}
		done++
	}
	if done > 0 {
		h.metrics.c2dCompleted.Add(int64(done))
		h.touch(ctx, deviceID, "", h.cfg.Clock.Now())
	}
	return errs
}

// Purge removes every message of the device's queue, each giving Purged
// feedback when its ack asks, and returns how many it removed. An unknown
// device gives 404001.
func (h *Hub) Purge(ctx context.Context, deviceID string) (int, error) {
	if err := h.running(); err != nil {
		return 0, err
	}
	if _, err := h.reg.Get(ctx, deviceID); err != nil {
		return 0, err
	}
	n, err := h.q.Purge(ctx, deviceID)
	if err != nil {
		return 0, h.closedErr(fmt.Errorf("hub: purge %q: %w", deviceID, err))
	}
	return n, nil
}
