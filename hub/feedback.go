package hub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// FeedbackQueue is the device queue that holds feedback messages. Device
// ids never contain '/', so it cannot be a device's queue.
const FeedbackQueue = "/feedback"

// FeedbackContentType is the content type of feedback messages.
const FeedbackContentType = "application/vnd.microsoft.iothub.feedback.json"

// A FeedbackRecord reports the outcome of one cloud-to-device message whose
// ack asked for it. Its JSON is IoT Hub's.
type FeedbackRecord struct {
	// OriginalMessageID is the message id of the C2D message, "" if it had none.
	OriginalMessageID string `json:"originalMessageId"`
	// EnqueuedTimeUTC is when the outcome happened.
	EnqueuedTimeUTC time.Time `json:"enqueuedTimeUtc"`
	// StatusCode is Success, Expired, DeliveryCountExceeded, Rejected or Purged.
	StatusCode string `json:"statusCode"`
	// Description is StatusCode again, as IoT Hub's SDKs expect.
	Description string `json:"description"`
	// DeviceID is the device the message was sent to.
	DeviceID string `json:"deviceId"`
	// DeviceGenerationID is that device's generation id.
	DeviceGenerationID string `json:"deviceGenerationId"`
}

// A FeedbackBatch is one feedback message, locked for its receiver.
type FeedbackBatch struct {
	// LockToken settles the batch with CompleteFeedback or AbandonFeedback.
	LockToken string
	// LockedUntil is when the lock ends and the batch is visible again.
	LockedUntil time.Time
	// Records are the batch's records, oldest first.
	Records []FeedbackRecord
	// Message is the feedback message itself: a JSON array of the records
	// with content type FeedbackContentType and user id the hub name.
	Message hubkit.Message
}

// feedback turns the store's outcome journal into feedback messages. Its
// run goroutine owns every field but stopCh and done.
type feedback struct {
	h        *Hub
	next     uint64 // the journal cursor as committed
	stopOnce sync.Once
	stopCh   chan struct{} // closed to ask run to flush and return
	done     chan struct{} // closed when run returns
}

type pendingRecord struct {
	rec FeedbackRecord
	gen string // generation the C2D message was sent to
	seq uint64 // the outcome's journal position
}

func (h *Hub) newFeedback(ctx context.Context) (*feedback, error) {
	next, err := h.q.OutcomesCursor(ctx)
	if err != nil {
		return nil, fmt.Errorf("hub: read feedback cursor: %w", err)
	}
	return &feedback{h: h, next: next, stopCh: make(chan struct{}), done: make(chan struct{})}, nil
}

// stop asks run to flush what is batched and waits until it returned.
func (f *feedback) stop() {
	if f == nil {
		return
	}
	f.stopOnce.Do(func() { close(f.stopCh) })
	<-f.done
}

// run reads the journal through a reader goroutine, so that it can flush
// on time while no outcome arrives, batches records and flushes them.
func (f *feedback) run() error {
	defer close(f.done)
	h := f.h
	log := h.log.With("component", "feedback")
	readCtx, cancelRead := context.WithCancel(h.ctx)
	outc := make(chan []queue.Outcome)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // joined below
		defer wg.Done()
		from := f.next
		for {
			outs, err := h.q.Outcomes(readCtx, from, h.cfg.FeedbackBatchSize)
			if err != nil {
				if readCtx.Err() != nil || errors.Is(err, hubkit.ErrClosed) {
					return
				}
				log.LogAttrs(readCtx, slog.LevelWarn, "read outcome journal", slog.Any("err", err))
				select {
				case <-readCtx.Done():
					return
				case <-h.cfg.Clock.After(time.Second):
				}
				continue
			}
			if len(outs) == 0 {
				continue
			}
			from = outs[len(outs)-1].Seq + 1
			select {
			case outc <- outs:
			case <-readCtx.Done():
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancelRead()

	// A batch goes out when it is full or FeedbackBatchDelay after the
	// last flush, whichever comes first, as IoT Hub batches: a record
	// arriving long after the last flush goes out at once.
	var pending []pendingRecord
	consumed := f.next // the journal position after the last outcome taken
	lastFlush := h.cfg.Clock.Now()
	var timer <-chan time.Time
	flush := func(n int) bool {
		next := consumed // the journal cursor once pending[:n] is sent
		if n < len(pending) {
			next = pending[n].seq
		}
		if err := f.flush(pending[:n], next, log); err != nil {
			return false
		}
		pending = append(pending[:0], pending[n:]...)
		lastFlush, timer = h.cfg.Clock.Now(), nil
		if len(pending) > 0 {
			timer = h.cfg.Clock.After(h.cfg.FeedbackBatchDelay)
		}
		return true
	}
	for {
		select {
		case outs := <-outc:
			for _, o := range outs {
				if r, ok := recordOf(o); ok {
					pending = append(pending, pendingRecord{rec: r, gen: o.Message.System.ConnectionAuthGenerationID, seq: o.Seq})
				}
				consumed = o.Seq + 1
			}
			if len(pending) == 0 {
				f.commit(consumed, log)
				continue
			}
			if timer == nil {
				timer = h.cfg.Clock.After(lastFlush.Add(h.cfg.FeedbackBatchDelay).Sub(h.cfg.Clock.Now()))
			}
			for len(pending) >= h.cfg.FeedbackBatchSize {
				if !flush(h.cfg.FeedbackBatchSize) {
					return nil
				}
			}
		case <-timer:
			if !flush(len(pending)) {
				return nil
			}
		case <-f.stopCh:
			if len(pending) > 0 {
				flush(len(pending))
			}
			return nil
		case <-h.ctx.Done():
			return nil
		}
	}
}

// recordOf returns the feedback record an outcome gives, if its ack asks
// for one.
func recordOf(o queue.Outcome) (FeedbackRecord, bool) {
	ack := o.Message.System.Ack
	if o.Status == queue.Completed && !ack.Positive() || o.Status != queue.Completed && !ack.Negative() {
		return FeedbackRecord{}, false
	}
	status := o.Status.String()
	return FeedbackRecord{
		OriginalMessageID: o.Message.System.MessageID,
		EnqueuedTimeUTC:   o.Time.UTC(),
		StatusCode:        status,
		Description:       status,
		DeviceID:          o.Queue,
	}, true
}

// flush enqueues one feedback message with the records whose device still
// exists in the generation the message was sent to, and moves the journal
// cursor to next in the same atomic write: a crash then either keeps both
// or neither, so no record is sent twice or lost. It retries until the hub
// closes, and then returns an error.
func (f *feedback) flush(recs []pendingRecord, next uint64, log *slog.Logger) error {
	h := f.h
	out := make([]FeedbackRecord, 0, len(recs))
	for _, p := range recs {
		d, err := h.reg.Get(h.ctx, p.rec.DeviceID)
		if errors.Is(err, hubkit.ErrDeviceNotFound) || err == nil && d.GenerationID != p.gen {
			continue // the device was deleted: its feedback goes with it
		}
		p.rec.DeviceGenerationID = p.gen
		out = append(out, p.rec)
	}
	if len(out) == 0 {
		f.commit(next, log)
		return nil
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	m := &hubkit.Message{Body: body, System: hubkit.SystemProperties{
		MessageID:       newID(),
		CorrelationID:   newID(),
		UserID:          h.name,
		ContentType:     FeedbackContentType,
		ContentEncoding: "utf-8",
		ExpiryTime:      h.cfg.Clock.Now().Add(h.cfg.FeedbackTTL).UTC(),
	}}
	opts := queue.EnqueueOptions{MaxDeliveryCount: uint32(h.cfg.FeedbackMaxDeliveryCount), CommitOutcomes: next}
	for {
		_, err := h.q.Enqueue(h.ctx, FeedbackQueue, m, opts)
		if err == nil {
			f.next = max(f.next, next)
			h.metrics.feedbackRecords.Add(int64(len(out)))
			h.metrics.feedbackMessages.Add(1)
			return nil
		}
		if h.ctx.Err() != nil || errors.Is(err, hubkit.ErrClosed) {
			return err
		}
		log.LogAttrs(h.ctx, slog.LevelWarn, "enqueue feedback, retrying", slog.Any("err", err))
		select {
		case <-h.ctx.Done():
			return h.ctx.Err()
		case <-h.cfg.Clock.After(time.Second):
		}
	}
}

// commit moves the journal cursor to next past outcomes that give no
// feedback. A failed commit is only logged: those outcomes are read again
// after a restart, and again give none.
func (f *feedback) commit(next uint64, log *slog.Logger) {
	if next <= f.next {
		return
	}
	if err := f.h.q.CommitOutcomes(f.h.ctx, next); err != nil {
		if f.h.ctx.Err() == nil {
			log.LogAttrs(f.h.ctx, slog.LevelWarn, "commit outcome journal", slog.Any("err", err))
		}
		return
	}
	f.next = next
}

// ReceiveFeedback locks the next feedback message for
// Config.FeedbackLockDuration and returns it with its records. Unless
// noWait, it waits until one is available, ctx ends or the hub closes;
// with noWait it returns queue.ErrEmpty when none is.
//
// The lock is volatile (see [queue.ReceiveOptions]): its holder is a Go
// caller in this process, which a crash ends too, so after a restart the
// message is visible again at once rather than when the lock would have
// ended, and receiving costs no write of its own.
func (h *Hub) ReceiveFeedback(ctx context.Context, noWait bool) (FeedbackBatch, error) {
	if err := h.running(); err != nil {
		return FeedbackBatch{}, err
	}
	ctx, cancel := h.bound(ctx)
	defer cancel()
	d, err := h.q.Receive(ctx, FeedbackQueue, queue.ReceiveOptions{Lock: h.cfg.FeedbackLockDuration, NoWait: noWait, Volatile: true})
	if err != nil {
		return FeedbackBatch{}, h.closedErr(err)
	}
	b := FeedbackBatch{LockToken: d.LockToken, LockedUntil: d.LockedUntil, Message: d.Message}
	if err := json.Unmarshal(d.Message.Body, &b.Records); err != nil {
		return b, fmt.Errorf("hub: decode feedback: %w", err)
	}
	return b, nil
}

// CompleteFeedback removes a received feedback message. An unknown or
// expired lock token gives an error wrapping hubkit.ErrDeviceMessageLockLost.
func (h *Hub) CompleteFeedback(ctx context.Context, lockToken string) error {
	if err := h.running(); err != nil {
		return err
	}
	return h.closedErr(h.q.Complete(ctx, FeedbackQueue, lockToken))
}

// AbandonFeedback makes a received feedback message visible again; after
// Config.FeedbackMaxDeliveryCount abandons it is dropped.
func (h *Hub) AbandonFeedback(ctx context.Context, lockToken string) error {
	if err := h.running(); err != nil {
		return err
	}
	_, err := h.q.Abandon(ctx, FeedbackQueue, lockToken)
	return h.closedErr(err)
}

// newID returns a random id in the 8-4-4-4-12 hex form.
func newID() string {
	a, b := randUint64(), randUint64()
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, a>>16&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

func randUint64() uint64 {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return binary.BigEndian.Uint64(b[:])
}
