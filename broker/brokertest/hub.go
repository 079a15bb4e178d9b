package brokertest

import (
	"context"
	"sync"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/internal/groupcommit"
	"github.com/hubkit/hubkit/queue"
)

// Stream is the stream Hub appends device-to-cloud messages to, all in
// partition 0.
const Stream = "events"

// ConnEvent records one Connected or Disconnected call.
type ConnEvent struct {
	// Connected is true for Connected, false for Disconnected.
	Connected bool
	// Identity is the identity the call reported.
	Identity auth.Identity
}

// Hub is a [broker.Hub] over an [auth.Authenticator] and a
// [queue.DurableQueue]. Ingest hands messages to one committer goroutine
// that appends everything pending in a single [queue.Streams.Append] (one
// durable write for many messages) and then calls the done callbacks in
// Ingest order. Hub stamps the hub-owned system properties of messages.go
// §3 except dt-dataschema, which the broker sets. All methods are safe for
// concurrent use.
type Hub struct {
	auth auth.Authenticator
	q    queue.DurableQueue

	commits *groupcommit.Committer
	cancel  context.CancelFunc // ends the committer's writes
	run     chan error         // the committer's result

	mu      sync.Mutex // guards the fields below
	closed  bool
	events  []ConnEvent
	waiters []chan struct{} // closed on the next event
}

var _ broker.Hub = (*Hub)(nil)

// New returns a Hub that authenticates with a and stores messages in q, and
// starts its committer goroutine; Close stops it. The Hub does not close q.
func New(a auth.Authenticator, q queue.DurableQueue) *Hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{auth: a, q: q, commits: groupcommit.New(q, groupcommit.Options{}), cancel: cancel, run: make(chan error, 1)}
	go func() { h.run <- h.commits.Run(ctx) }()
	return h
}

// Close stops the committer after the batch it is writing, fails the
// messages still pending with hubkit.ErrClosed and waits for the committer
// to end. Later Ingest calls fail with hubkit.ErrClosed. Close is idempotent.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.commits.Stop()
	<-h.run
	h.commits.Fail(hubkit.ErrClosed)
	return nil
}

// Authenticate calls the Hub's Authenticator.
func (h *Hub) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	return h.auth.Authenticate(ctx, c)
}

// Ingest validates msg (hubkit.ValidateD2C), stamps the connection
// properties of id, the enqueued time and the Telemetry source on a copy,
// and queues it for the committer. done gets nil once the message is
// durable, or the validation or storage error.
func (h *Hub) Ingest(ctx context.Context, id auth.Identity, msg *hubkit.Message, done func(error)) {
	if err := hubkit.ValidateD2C(msg); err != nil {
		done(err)
		return
	}
	m := msg.Clone()
	s := &m.System
	s.ConnectionDeviceID = id.DeviceID
	s.ConnectionModuleID = id.ModuleID
	s.ConnectionAuthGenerationID = id.GenerationID
	s.ConnectionAuthMethod = id.Method.JSON()
	s.MessageSource = hubkit.SourceTelemetry
	s.EnqueuedTime = time.Now().UTC()
	h.commits.Submit(ctx, []queue.Entry{{Stream: Stream, Message: m}}, done)
}

// Connected records the call.
func (h *Hub) Connected(ctx context.Context, id auth.Identity) { h.record(ConnEvent{true, id}) }

// Disconnected records the call.
func (h *Hub) Disconnected(ctx context.Context, id auth.Identity) { h.record(ConnEvent{false, id}) }

func (h *Hub) record(e ConnEvent) {
	h.mu.Lock()
	h.events = append(h.events, e)
	ws := h.waiters
	h.waiters = nil
	h.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// Events returns a copy of the Connected and Disconnected calls so far, in
// call order.
func (h *Hub) Events() []ConnEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ConnEvent(nil), h.events...)
}

// WaitEvents waits until at least n Connected or Disconnected calls were
// made or ctx ends, and returns the calls so far.
func (h *Hub) WaitEvents(ctx context.Context, n int) ([]ConnEvent, error) {
	for {
		h.mu.Lock()
		if len(h.events) >= n {
			ev := append([]ConnEvent(nil), h.events...)
			h.mu.Unlock()
			return ev, nil
		}
		w := make(chan struct{})
		h.waiters = append(h.waiters, w)
		h.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return h.Events(), ctx.Err()
		}
	}
}

// ReceiveC2D receives from the device's queue (named by the device id).
func (h *Hub) ReceiveC2D(ctx context.Context, deviceID string, opts queue.ReceiveOptions) (queue.Delivery, error) {
	return h.q.Receive(ctx, deviceID, opts)
}

// Settle settles a delivery of the device's queue.
func (h *Hub) Settle(ctx context.Context, deviceID, lockToken string, how broker.Settlement) error {
	switch how {
	case broker.Complete:
		return h.q.Complete(ctx, deviceID, lockToken)
	case broker.Reject:
		return h.q.Reject(ctx, deviceID, lockToken)
	case broker.Abandon:
		_, err := h.q.Abandon(ctx, deviceID, lockToken)
		return err
	case broker.Release:
		return h.q.Release(ctx, deviceID, lockToken)
	}
	return hubkit.ErrArgumentInvalid
}

// SendC2D enqueues msg for the device, as the hub's service API would, with
// To set to the device's deviceBound address.
func (h *Hub) SendC2D(ctx context.Context, deviceID string, msg *hubkit.Message) error {
	m := msg.Clone()
	m.System.To = "/devices/" + deviceID + "/messages/deviceBound"
	_, err := h.q.Enqueue(ctx, deviceID, m, queue.EnqueueOptions{})
	return err
}

// Messages reads the device-to-cloud messages stored so far, waiting until
// there are at least n of them or ctx ends.
func (h *Hub) Messages(ctx context.Context, n int) ([]hubkit.Message, error) {
	var out []hubkit.Message
	var recs []queue.Record
	for len(out) < n {
		var err error
		recs, err = h.q.Read(ctx, Stream, 0, uint64(len(out)), n-len(out), recs[:0])
		if err != nil {
			return out, err
		}
		for _, r := range recs {
			out = append(out, r.Message)
		}
	}
	return out, nil
}
