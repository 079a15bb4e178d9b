package hub

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/internal/throttle"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/route"
)

// EventsStream is the name of the built-in endpoint's stream, and the
// endpoint name routes use for it.
const EventsStream = "events"

// Partition returns the built-in events partition of a device: the 32-bit
// FNV-1a hash of its device id modulo Config.Partitions. Every message of a
// device, and of its modules, goes to that partition.
func (h *Hub) Partition(deviceID string) int {
	return int(idHash(deviceID) % uint32(h.cfg.Partitions))
}

// idHash is the 32-bit FNV-1a hash of a device id.
func idHash(deviceID string) uint32 {
	f := fnv.New32a()
	f.Write([]byte(deviceID))
	return f.Sum32()
}

// Ingest takes a device-to-cloud message from an authenticated identity:
// it validates it (hubkit.ValidateD2C), stamps the properties IoT Hub
// stamps, routes it, and queues it for the committer, which appends it to
// every matched endpoint stream in one durable write. done is called once,
// from the committer goroutine or, when the store is a
// [queue.AsyncAppender], from the store's, after the write (nil) or with
// the reason the message was refused; done calls come in Ingest order and
// must not block. Ingest copies msg and waits only when the committer is
// far behind, until ctx ends.
func (h *Hub) Ingest(ctx context.Context, id auth.Identity, msg *hubkit.Message, done func(error)) {
	if err := h.serving(); err != nil { // brokers draining still hand over messages
		done(err)
		return
	}
	if err := hubkit.ValidateD2C(msg); err != nil {
		done(err)
		return
	}
	m := msg.Clone()
	s := &m.System
	s.EnqueuedTime = h.cfg.Clock.Now().UTC()
	s.ConnectionDeviceID = id.DeviceID
	s.ConnectionModuleID = id.ModuleID
	s.ConnectionAuthMethod = id.Method.JSON()
	s.ConnectionAuthGenerationID = id.GenerationID
	s.MessageSource = hubkit.SourceTelemetry
	// DataSchema is stamped by the broker from the connection's model id,
	// which only the broker knows; the hub keeps what it was given.
	h.touch(ctx, id.DeviceID, id.ModuleID, s.EnqueuedTime)
	h.metrics.d2cIn.Add(1)
	entries, err := h.route(ctx, route.DeviceMessages, m)
	if err != nil {
		done(err)
		return
	}
	h.enqueue(ctx, entries, done)
}

// route returns the entries of m: one per endpoint the router chose, with
// the endpoint's enrichments. An endpoint the hub does not have, or whose
// enriched copy is too large, does not get the message.
func (h *Hub) route(ctx context.Context, source route.Source, m *hubkit.Message) ([]queue.Entry, error) {
	names, err := h.router.Route(ctx, source, m)
	if err != nil {
		return nil, fmt.Errorf("hub: route: %w", err)
	}
	p := h.Partition(m.System.ConnectionDeviceID)
	entries := make([]queue.Entry, 0, len(names))
	for _, name := range names {
		if !h.streams[name] {
			if h.warnUnknown(name) {
				h.log.LogAttrs(ctx, slog.LevelWarn, "route names an unknown endpoint: messages for it are dropped", slog.String("endpoint", name))
			}
			continue
		}
		em := m
		if h.enricher != nil {
			if em, err = h.enricher.Enrich(ctx, name, m); err != nil {
				h.log.LogAttrs(ctx, slog.LevelWarn, "enrichment failed: message dropped for the endpoint",
					slog.String("endpoint", name), slog.String("device_id", m.System.ConnectionDeviceID), slog.Any("err", err))
				continue
			}
		}
		entries = append(entries, queue.Entry{Stream: name, Partition: p, Message: em})
	}
	if len(entries) == 0 && source == route.DeviceMessages {
		// Counted as IoT Hub's d2c.telemetry.egress.dropped: telemetry
		// only, since device events go nowhere unless a route takes them.
		h.metrics.d2cDropped.Add(1)
	}
	return entries, nil
}

// warnUnknown reports whether a warning that a route names the unknown
// endpoint name is due, at most one a minute per endpoint, and claims it:
// a router sending every message there must not flood the log.
func (h *Hub) warnUnknown(name string) bool {
	g, _ := h.unknownWarned.LoadOrStore(name, new(throttle.Gate))
	return g.(*throttle.Gate).Allow(h.cfg.Clock.Now(), time.Minute)
}

// enqueue hands entries to the committer. A message routed nowhere is
// done in its turn, as IoT Hub acknowledges orphaned messages.
func (h *Hub) enqueue(ctx context.Context, entries []queue.Entry, done func(error)) {
	h.commits.Submit(ctx, entries, done)
}

// commitFailed logs a failed D2C write and returns the error its messages get.
func (h *Hub) commitFailed(n int, err error) error {
	err = h.closedErr(fmt.Errorf("hub: append %d entries: %w", n, err))
	h.log.LogAttrs(h.ctx, slog.LevelError, "commit failed", slog.Any("err", err))
	return err
}
