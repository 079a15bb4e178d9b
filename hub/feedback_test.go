package hub_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
)

// feedbackFailsOnce fails the next Enqueue of a feedback message, once
// armed, and notes how many waiters its clock had at that moment.
type feedbackFailsOnce struct {
	queue.DurableQueue
	clock   *endpointtest.Clock
	armed   atomic.Bool
	waiters atomic.Int64  // the clock's waiters when the Enqueue failed
	failed  chan struct{} // closed when it has failed
}

func (q *feedbackFailsOnce) Enqueue(ctx context.Context, id string, m *hubkit.Message, o queue.EnqueueOptions) (uint64, error) {
	if id == hub.FeedbackQueue && q.armed.CompareAndSwap(true, false) {
		q.waiters.Store(int64(q.clock.Waiters()))
		close(q.failed)
		return 0, errors.New("disk full")
	}
	return q.DurableQueue.Enqueue(ctx, id, m, o)
}

// TestFeedbackRetryWaitsOnTheClock: a feedback message the store refuses
// is enqueued again a second later by Config.Clock, so that a test clock
// decides when the retry happens.
func TestFeedbackRetryWaitsOnTheClock(t *testing.T) {
	clock := endpointtest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	q := &feedbackFailsOnce{clock: clock, failed: make(chan struct{})}
	r := newRig(t, rigOptions{clock: clock, config: func(c *hub.Config) {
		q.DurableQueue = c.Queue
		c.Queue = q
		c.FeedbackBatchSize = 1
	}})
	createDevice(t, r, "a")
	q.armed.Store(true)
	if _, err := r.SendC2D(ctxFor(t, 5*time.Second), "a", &hubkit.Message{System: hubkit.SystemProperties{MessageID: "m", Ack: hubkit.AckPositive}}); err != nil {
		t.Fatal(err)
	}
	settle(t, r, "a", broker.Complete)
	select {
	case <-q.failed:
	case <-ctxFor(t, poll.Timeout).Done():
		t.Fatal("the feedback message was never enqueued")
	}
	poll.Until(t, "the retry to wait on Config.Clock", func() bool { return int64(clock.Waiters()) > q.waiters.Load() })
	clock.Advance(time.Second)
	b, err := r.ReceiveFeedback(ctxFor(t, 10*time.Second), false)
	if err != nil || len(b.Records) != 1 || b.Records[0].OriginalMessageID != "m" {
		t.Fatalf("feedback after the retry: %+v, %v", b, err)
	}
}
