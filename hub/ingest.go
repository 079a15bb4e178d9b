package hub

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/route"
)

// EventsStream is the name of the built-in endpoint's stream, and the
// endpoint name routes use for it.
const EventsStream = "events"

// maxCommit bounds the entries of one Append, so that one commit never
// grows without bound under load.
const maxCommit = 1024

// maxAsyncCommits bounds the batches handed to a [queue.AsyncAppender] and
// not yet done, so that a slow disk holds back Ingest instead of growing
// memory. The store merges waiting batches into one write, so a few are
// enough to keep it busy.
const maxAsyncCommits = 8

// A commit is the work of one Ingest or device event: the entries it
// appends and whom to tell once they are durable.
type commit struct {
	entries []queue.Entry
	done    func(error) // may be nil
}

func (c *commit) finish(err error) {
	if c.done != nil {
		c.done(err)
	}
}

// Partition returns the built-in events partition of a device: the 32-bit
// FNV-1a hash of its device id modulo Config.Partitions. Every message of a
// device, and of its modules, goes to that partition.
func (h *Hub) Partition(deviceID string) int {
	f := fnv.New32a()
	f.Write([]byte(deviceID))
	return int(f.Sum32() % uint32(h.cfg.Partitions))
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
	if err := h.running(); err != nil {
		done(err)
		return
	}
	if err := hubkit.ValidateD2C(msg); err != nil {
		done(err)
		return
	}
	m := msg.Clone()
	s := &m.System
	s.EnqueuedTime = h.cfg.clock.Now().UTC()
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
			h.log.LogAttrs(ctx, slog.LevelWarn, "route names an unknown endpoint", slog.String("endpoint", name))
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
	if len(entries) == 0 {
		h.metrics.d2cDropped.Add(1)
	}
	return entries, nil
}

// enqueue hands entries to the committer. A message routed nowhere is
// done at once, as IoT Hub acknowledges orphaned messages.
func (h *Hub) enqueue(ctx context.Context, entries []queue.Entry, done func(error)) {
	c := &commit{entries: entries, done: done}
	h.inMu.RLock()
	defer h.inMu.RUnlock()
	if h.inShut {
		c.finish(hubkit.ErrClosed)
		return
	}
	select {
	case h.pending <- c:
	case <-ctx.Done():
		c.finish(fmt.Errorf("hub: ingest: %w", ctx.Err()))
	case <-h.ctx.Done():
		c.finish(hubkit.ErrClosed)
	}
}

// stopIngest stops taking work: the committer drains what is pending and
// returns.
func (h *Hub) stopIngest() {
	h.inMu.Lock()
	defer h.inMu.Unlock()
	if !h.inShut {
		h.inShut = true
		close(h.pending)
	}
}

// commitLoop is the one committer: it takes everything pending and appends
// it in one write, and the done callbacks are called in order once that
// write is durable. When the store is a [queue.AsyncAppender] it hands each
// batch over and goes straight back to gathering the next while the store
// syncs, so that a message waits for one sync rather than for the one in
// progress and then its own; the store then calls the callbacks, from its
// own goroutine, in the order the batches were handed over. Otherwise it
// waits in Append. It returns when pending is closed and drained, or when
// the hub closes, and only once every batch it handed over is done.
func (h *Hub) commitLoop() error {
	defer close(h.drained)
	async, _ := h.q.(queue.AsyncAppender)
	slots := make(chan struct{}, maxAsyncCommits) // batches handed over and not yet done
	defer func() {
		for range cap(slots) {
			slots <- struct{}{}
		}
	}()
	var entries []queue.Entry
	for {
		var batch []*commit // not reused: an asynchronous append's callback keeps it
		entries = entries[:0]
		select {
		case c, ok := <-h.pending:
			if !ok {
				return nil
			}
			batch = append(batch, c)
			entries = append(entries, c.entries...)
		case <-h.ctx.Done():
			return nil
		}
	drain:
		for len(entries) < maxCommit {
			select {
			case c, ok := <-h.pending:
				if !ok {
					break drain
				}
				batch = append(batch, c)
				entries = append(entries, c.entries...)
			default:
				break drain
			}
		}
		n := len(entries)
		if async != nil {
			// A batch without entries goes through the store too, so that
			// its callbacks keep their place after those of earlier batches.
			slots <- struct{}{}
			async.AppendAsync(h.ctx, entries, func(_ []queue.Position, err error) {
				h.finish(batch, n, err)
				<-slots
			})
			continue
		}
		var err error
		if n > 0 {
			_, err = h.q.Append(h.ctx, entries)
		}
		h.finish(batch, n, err)
	}
}

// finish calls the done callbacks of a batch of n entries whose append
// returned err.
func (h *Hub) finish(batch []*commit, n int, err error) {
	if err != nil {
		err = h.closedErr(fmt.Errorf("hub: append %d entries: %w", n, err))
		h.log.LogAttrs(h.ctx, slog.LevelError, "commit failed", slog.Any("err", err))
	}
	for _, c := range batch {
		c.finish(err)
	}
}
