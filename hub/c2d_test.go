package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
)

func createDevice(t testing.TB, r *rig, id string) auth.Device {
	t.Helper()
	d, err := r.CreateDevice(ctxFor(t, 5*time.Second), auth.Device{DeviceID: id})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSendC2DChecks(t *testing.T) {
	r := newRig(t, rigOptions{})
	createDevice(t, r, "d1")
	disabled := createDevice(t, r, "off")
	disabled.Status = auth.StatusDisabled
	if _, err := r.UpdateDevice(ctxFor(t, 5*time.Second), disabled, "*"); err != nil {
		t.Fatal(err)
	}
	now := r.clock.Now()
	cases := []struct {
		name   string
		device string
		msg    hubkit.Message
		want   *hubkit.Error
	}{
		{"ok", "d1", hubkit.Message{Body: []byte("x")}, nil},
		{"unknown device", "nobody", hubkit.Message{}, hubkit.ErrDeviceNotFound},
		{"disabled device", "off", hubkit.Message{}, hubkit.ErrDeviceNotFound},
		{"too large", "d1", hubkit.Message{Body: make([]byte, hubkit.MaxC2DSize+1)}, hubkit.ErrMessageTooLarge},
		{"property name", "d1", hubkit.Message{Properties: hubkit.Properties{{Name: "a b", Value: "v"}}}, hubkit.ErrArgumentInvalid},
		{"property value", "d1", hubkit.Message{Properties: hubkit.Properties{{Name: "a", Value: "ü"}}}, hubkit.ErrArgumentInvalid},
		{"message id", "d1", hubkit.Message{System: hubkit.SystemProperties{MessageID: "a/b"}}, hubkit.ErrArgumentInvalid},
		{"ack", "d1", hubkit.Message{System: hubkit.SystemProperties{Ack: "sometimes"}}, hubkit.ErrArgumentInvalid},
		{"ack case", "d1", hubkit.Message{System: hubkit.SystemProperties{Ack: "FULL"}}, nil},
		{"expiry past", "d1", hubkit.Message{System: hubkit.SystemProperties{ExpiryTime: now.Add(-time.Second)}}, hubkit.ErrInvalidMessageExpiryTime},
		{"expiry now", "d1", hubkit.Message{System: hubkit.SystemProperties{ExpiryTime: now}}, hubkit.ErrInvalidMessageExpiryTime},
		{"expiry 48h", "d1", hubkit.Message{System: hubkit.SystemProperties{ExpiryTime: now.Add(48 * time.Hour)}}, nil},
		{"expiry beyond 48h", "d1", hubkit.Message{System: hubkit.SystemProperties{ExpiryTime: now.Add(48*time.Hour + time.Second)}}, hubkit.ErrInvalidMessageExpiryTime},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.SendC2D(ctxFor(t, 5*time.Second), c.device, &c.msg)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.want != nil && hubkit.ErrorCode(err).Code != c.want.Code {
				t.Fatalf("code %d, want %d", hubkit.ErrorCode(err).Code, c.want.Code)
			}
		})
	}
	t.Run("queue depth", func(t *testing.T) {
		createDevice(t, r, "full")
		for i := range 50 {
			if _, err := r.SendC2D(ctxFor(t, 5*time.Second), "full", &hubkit.Message{}); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		_, err := r.SendC2D(ctxFor(t, 5*time.Second), "full", &hubkit.Message{})
		if hubkit.ErrorCode(err) != hubkit.ErrDeviceMaximumQueueDepthExceeded {
			t.Fatalf("51st message: %v, want 403004", err)
		}
		d, err := r.GetDevice(ctxFor(t, 5*time.Second), "full")
		if err != nil || d.CloudToDeviceMessageCount != 50 {
			t.Fatalf("cloudToDeviceMessageCount = %d, %v; want 50", d.CloudToDeviceMessageCount, err)
		}
	})
}

func TestC2DStamps(t *testing.T) {
	r := newRig(t, rigOptions{})
	createDevice(t, r, "d1")
	ctx := ctxFor(t, 5*time.Second)
	in := &hubkit.Message{Body: []byte("hi"), System: hubkit.SystemProperties{MessageID: "m1", Ack: "Positive"}}
	in.Properties.Set("k", "v")
	s1, err := r.SendC2D(ctx, "d1", in)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r.SendC2D(ctx, "d1", &hubkit.Message{})
	if err != nil || s2 <= s1 {
		t.Fatalf("sequence numbers %d then %d, %v", s1, s2, err)
	}
	if in.System.To != "" || in.System.ExpiryTime != (time.Time{}) {
		t.Errorf("SendC2D changed its argument: %+v", in.System)
	}
	d, err := r.ReceiveC2D(ctx, "d1", queue.ReceiveOptions{NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	s := d.Message.System
	if s.To != "/devices/d1/messages/deviceBound" || s.MessageID != "m1" || s.Ack != hubkit.AckPositive ||
		!s.ExpiryTime.Equal(r.clock.Now().Add(time.Hour)) || s.SequenceNumber != s1 || s.ConnectionAuthGenerationID != "" ||
		!d.LockedUntil.Equal(r.clock.Now().Add(time.Minute)) || string(d.Message.Body) != "hi" {
		t.Errorf("delivery %+v", d)
	}
	if v, _ := d.Message.Properties.Get("k"); v != "v" {
		t.Errorf("property k = %q", v)
	}
}

// feedbackRecords receives feedback until n records arrived, completing
// each batch, and returns "device:status" strings in arrival order.
func feedbackRecords(t *testing.T, r *rig, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		b, err := r.ReceiveFeedback(ctxFor(t, 10*time.Second), false)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		m := b.Message.System
		if m.ContentType != hub.FeedbackContentType || m.UserID != "testhub" || m.ContentEncoding != "utf-8" {
			t.Errorf("feedback message properties %+v", m)
		}
		for _, rec := range b.Records {
			if rec.Description != rec.StatusCode || rec.DeviceGenerationID == "" || rec.OriginalMessageID == "" {
				t.Errorf("record %+v", rec)
			}
			got = append(got, rec.DeviceID+":"+rec.StatusCode)
		}
		if err := r.CompleteFeedback(ctxFor(t, 5*time.Second), b.LockToken); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func TestFeedbackStatusesAndAckModes(t *testing.T) {
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		c.FeedbackBatchSize = 1
		c.C2DMaxDeliveryCount = 2
		c.FeedbackTTL = 48 * time.Hour // the expire steps move the clock by hours
	}})
	outcomes := []struct {
		name   string
		status string
		act    func(t *testing.T, device string)
	}{
		{"complete", "Success", func(t *testing.T, dev string) { settle(t, r, dev, broker.Complete) }},
		{"reject", "Rejected", func(t *testing.T, dev string) { settle(t, r, dev, broker.Reject) }},
		{"abandon twice", "DeliveryCountExceeded", func(t *testing.T, dev string) {
			settle(t, r, dev, broker.Abandon)
			settle(t, r, dev, broker.Abandon)
		}},
		{"purge", "Purged", func(t *testing.T, dev string) {
			if n, err := r.Purge(ctxFor(t, 5*time.Second), dev); n != 1 || err != nil {
				t.Fatalf("Purge = %d, %v", n, err)
			}
		}},
		{"expire", "Expired", func(t *testing.T, dev string) {
			r.clock.Advance(time.Hour + time.Minute)
			if _, err := r.q.Expire(ctxFor(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	var want []string
	for _, ack := range []hubkit.Ack{hubkit.AckNone, hubkit.AckPositive, hubkit.AckNegative, hubkit.AckFull} {
		for _, o := range outcomes {
			dev := fmt.Sprintf("%s-%s", ack, strings.ReplaceAll(o.name, " ", "-"))
			createDevice(t, r, dev)
			_, err := r.SendC2D(ctxFor(t, 5*time.Second), dev, &hubkit.Message{System: hubkit.SystemProperties{MessageID: "m-" + dev, Ack: ack}})
			if err != nil {
				t.Fatal(err)
			}
			o.act(t, dev)
			if o.status == "Success" && ack.Positive() || o.status != "Success" && ack.Negative() {
				want = append(want, dev+":"+o.status)
			}
		}
	}
	got := feedbackRecords(t, r, len(want))
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("feedback:\n got %v\nwant %v", got, want)
	}
	if _, err := r.ReceiveFeedback(ctxFor(t, 5*time.Second), true); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("extra feedback: %v", err)
	}
	if m := r.Metrics(); m.FeedbackRecords != int64(len(want)) || m.C2DCompleted != 4 || m.C2DRejected != 4 {
		t.Errorf("metrics %+v", m)
	}
}

// settle receives the next message of the device and settles it.
func settle(t *testing.T, r *rig, device string, how broker.Settlement) {
	t.Helper()
	d, err := r.ReceiveC2D(ctxFor(t, 5*time.Second), device, queue.ReceiveOptions{Lock: time.Minute, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Settle(ctxFor(t, 5*time.Second), device, d.LockToken, how); err != nil {
		t.Fatal(err)
	}
	if err := r.Settle(ctxFor(t, 5*time.Second), device, d.LockToken, how); !errors.Is(err, hubkit.ErrDeviceMessageLockLost) {
		t.Fatalf("settling twice: %v, want lock lost", err)
	}
}

func TestFeedbackBatchesByCount(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, dev := range []string{"a", "b"} {
		createDevice(t, r, dev)
		for i := range 40 {
			if _, err := r.SendC2D(ctxFor(t, 5*time.Second), dev, &hubkit.Message{System: hubkit.SystemProperties{MessageID: fmt.Sprint(i), Ack: hubkit.AckPositive}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 32 {
		settle(t, r, "a", broker.Complete)
		settle(t, r, "b", broker.Complete)
	}
	b, err := r.ReceiveFeedback(ctxFor(t, 10*time.Second), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 64 {
		t.Fatalf("first batch has %d records, want 64", len(b.Records))
	}
	if b.Records[0].OriginalMessageID != "0" || b.Records[0].DeviceID != "a" || b.Records[1].DeviceID != "b" {
		t.Errorf("records out of order: %+v", b.Records[:2])
	}
	if !b.Records[0].EnqueuedTimeUTC.Equal(r.clock.Now()) {
		t.Errorf("enqueuedTimeUtc %v, want %v", b.Records[0].EnqueuedTimeUTC, r.clock.Now())
	}
	// The clock has not moved: nothing else is flushed yet.
	if _, err := r.ReceiveFeedback(ctxFor(t, 5*time.Second), true); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("second batch before its time: %v", err)
	}
}

func TestFeedbackBatchesByTime(t *testing.T) {
	r := newRig(t, rigOptions{})
	createDevice(t, r, "a")
	before := r.clock.Waiters()
	if _, err := r.SendC2D(ctxFor(t, 5*time.Second), "a", &hubkit.Message{System: hubkit.SystemProperties{MessageID: "m", Ack: hubkit.AckFull}}); err != nil {
		t.Fatal(err)
	}
	settle(t, r, "a", broker.Complete)
	poll.Until(t, "the batch timer", func() bool { return r.clock.Waiters() > before })
	r.clock.Advance(14 * time.Second)
	if _, err := r.ReceiveFeedback(ctxFor(t, 5*time.Second), true); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("feedback after 14 s: %v", err)
	}
	r.clock.Advance(time.Second)
	b, err := r.ReceiveFeedback(ctxFor(t, 10*time.Second), false)
	if err != nil || len(b.Records) != 1 || b.Records[0].StatusCode != "Success" {
		t.Fatalf("after 15 s: %+v, %v", b, err)
	}
	// Abandon makes it visible again; complete removes it.
	if err := r.AbandonFeedback(ctxFor(t, 5*time.Second), b.LockToken); err != nil {
		t.Fatal(err)
	}
	b2, err := r.ReceiveFeedback(ctxFor(t, 5*time.Second), true)
	if err != nil || len(b2.Records) != 1 || b2.Records[0] != b.Records[0] {
		t.Fatalf("after abandon: %+v, %v", b2, err)
	}
	if err := r.CompleteFeedback(ctxFor(t, 5*time.Second), b.LockToken); !errors.Is(err, hubkit.ErrDeviceMessageLockLost) {
		t.Fatalf("complete with the old lock: %v", err)
	}
	if err := r.CompleteFeedback(ctxFor(t, 5*time.Second), b2.LockToken); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReceiveFeedback(ctxFor(t, 5*time.Second), true); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("after complete: %v", err)
	}
}

// TestFeedbackBatchDelayCountsFromLastFlush: a record arriving 14 s after
// a flush goes out 1 s later, not 15 s later.
func TestFeedbackBatchDelayCountsFromLastFlush(t *testing.T) {
	r := newRig(t, rigOptions{})
	createDevice(t, r, "a")
	ctx := ctxFor(t, 10*time.Second)
	send := func(id string) {
		t.Helper()
		before := r.clock.Waiters()
		if _, err := r.SendC2D(ctx, "a", &hubkit.Message{System: hubkit.SystemProperties{MessageID: id, Ack: hubkit.AckPositive}}); err != nil {
			t.Fatal(err)
		}
		settle(t, r, "a", broker.Complete)
		poll.Until(t, "the batch timer of "+id, func() bool { return r.clock.Waiters() > before })
	}
	receive := func(id string) {
		t.Helper()
		b, err := r.ReceiveFeedback(ctxFor(t, 5*time.Second), false)
		if err != nil || len(b.Records) != 1 || b.Records[0].OriginalMessageID != id {
			t.Fatalf("feedback of %s: %+v, %v", id, b, err)
		}
		if err := r.CompleteFeedback(ctx, b.LockToken); err != nil {
			t.Fatal(err)
		}
	}
	send("first")
	r.clock.Advance(15 * time.Second)
	receive("first") // the flush
	r.clock.Advance(14 * time.Second)
	send("second")
	if _, err := r.ReceiveFeedback(ctx, true); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("feedback 14 s after the flush: %v", err)
	}
	r.clock.Advance(time.Second)
	receive("second")
}

func TestDeleteDeviceDropsQueueAndFeedback(t *testing.T) {
	r := newRig(t, rigOptions{config: func(c *hub.Config) { c.FeedbackBatchSize = 1 }})
	createDevice(t, r, "gone")
	createDevice(t, r, "stays")
	ctx := ctxFor(t, 10*time.Second)
	for range 3 {
		if _, err := r.SendC2D(ctx, "gone", &hubkit.Message{System: hubkit.SystemProperties{MessageID: "x", Ack: hubkit.AckFull}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.DeleteDevice(ctx, "gone", "*"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetDevice(ctx, "gone"); !errors.Is(err, hubkit.ErrDeviceNotFound) {
		t.Fatalf("deleted device: %v", err)
	}
	// Re-created at once: a new generation, an empty queue, no feedback of the old one.
	createDevice(t, r, "gone")
	if n, err := r.q.Len(ctx, "gone"); n != 0 || err != nil {
		t.Fatalf("queue of deleted device holds %d, %v", n, err)
	}
	if _, err := r.SendC2D(ctx, "stays", &hubkit.Message{System: hubkit.SystemProperties{MessageID: "y", Ack: hubkit.AckPositive}}); err != nil {
		t.Fatal(err)
	}
	settle(t, r, "stays", broker.Complete)
	// The journal is in order: once the marker's feedback is out, the
	// purge outcomes before it were handled.
	if got := feedbackRecords(t, r, 1); len(got) != 1 || got[0] != "stays:Success" {
		t.Fatalf("feedback %v, want only stays:Success", got)
	}
}

// heldQueue holds the next Enqueue until the test lets it go, once armed.
type heldQueue struct {
	queue.DurableQueue
	armed   atomic.Bool
	entered chan struct{} // receives when an armed Enqueue started
	release chan struct{} // closed to let it finish
}

func (q *heldQueue) Enqueue(ctx context.Context, id string, m *hubkit.Message, o queue.EnqueueOptions) (uint64, error) {
	if q.armed.CompareAndSwap(true, false) {
		q.entered <- struct{}{}
		<-q.release
	}
	return q.DurableQueue.Enqueue(ctx, id, m, o)
}

func TestSendRacingDeleteLeavesNoStaleMessage(t *testing.T) {
	g := &heldQueue{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := newRig(t, rigOptions{config: func(c *hub.Config) { g.DurableQueue = c.Queue; c.Queue = g }})
	createDevice(t, r, "d")
	ctx := ctxFor(t, 20*time.Second)
	g.armed.Store(true)
	sent := make(chan error, 1)
	go func() { _, err := r.SendC2D(ctx, "d", &hubkit.Message{Body: []byte("old")}); sent <- err }()
	<-g.entered // the send passed its registry check
	deleted := make(chan error, 1)
	go func() { deleted <- r.DeleteDevice(ctx, "d", "*") }()
	// The delete either waits for the send (the fix) or has already
	// deleted and purged around it (the race).
	done := false
	poll.Until(t, "the delete to wait or finish", func() bool {
		select {
		case err := <-deleted:
			deleted <- err
			done = true
			return true
		default:
			return hub.DeleteWaiting(r.Hub, "d")
		}
	})
	close(g.release)
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if done {
		t.Error("DeleteDevice finished while a SendC2D that passed its check was still enqueuing")
	}
	createDevice(t, r, "d")
	if n, err := r.q.Len(ctx, "d"); n != 0 || err != nil {
		t.Fatalf("re-created device's queue holds %d, %v; want 0", n, err)
	}
}

func TestCompleteC2D(t *testing.T) {
	r := newRig(t, rigOptions{config: func(c *hub.Config) { c.FeedbackBatchSize = 2 }})
	createDevice(t, r, "d1")
	ctx := ctxFor(t, 5*time.Second)
	for i := range 3 {
		if _, err := r.SendC2D(ctx, "d1", &hubkit.Message{System: hubkit.SystemProperties{MessageID: fmt.Sprint(i), Ack: hubkit.AckPositive}}); err != nil {
			t.Fatal(err)
		}
	}
	var tokens []string
	for range 2 {
		d, err := r.ReceiveC2D(ctx, "d1", queue.ReceiveOptions{NoWait: true, Volatile: true})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, d.LockToken)
	}
	errs := r.CompleteC2D(ctx, "d1", append(tokens, "no-such-token"))
	if len(errs) != 3 || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], hubkit.ErrDeviceMessageLockLost) {
		t.Fatalf("CompleteC2D = %v, want nil, nil, lock lost", errs)
	}
	if m := r.Metrics(); m.C2DCompleted != 2 {
		t.Errorf("C2DCompleted = %d, want 2", m.C2DCompleted)
	}
	if got := feedbackRecords(t, r, 2); strings.Join(got, " ") != "d1:Success d1:Success" {
		t.Errorf("feedback %v", got)
	}
	d, err := r.ReceiveC2D(ctx, "d1", queue.ReceiveOptions{NoWait: true})
	if err != nil || d.Message.System.MessageID != "2" {
		t.Errorf("after CompleteC2D received %q, %v; want the third message", d.Message.System.MessageID, err)
	}
}

func TestFeedbackLockEndsWithRestart(t *testing.T) {
	o := rigOptions{config: func(c *hub.Config) { c.FeedbackBatchSize = 1 }}
	r := newRig(t, o)
	createDevice(t, r, "d1")
	if _, err := r.SendC2D(ctxFor(t, 5*time.Second), "d1", &hubkit.Message{System: hubkit.SystemProperties{MessageID: "m", Ack: hubkit.AckPositive}}); err != nil {
		t.Fatal(err)
	}
	settle(t, r, "d1", broker.Complete)
	b, err := r.ReceiveFeedback(ctxFor(t, 10*time.Second), false)
	if err != nil {
		t.Fatal(err)
	}
	r = r.restart(t, o)
	again, err := r.ReceiveFeedback(ctxFor(t, 5*time.Second), true)
	if err != nil || again.Message.System.MessageID != b.Message.System.MessageID {
		t.Fatalf("after restart ReceiveFeedback = %q, %v; want the message locked before, at once", again.Message.System.MessageID, err)
	}
	if err := r.CompleteFeedback(ctxFor(t, 5*time.Second), b.LockToken); !errors.Is(err, hubkit.ErrDeviceMessageLockLost) {
		t.Errorf("CompleteFeedback with a token from before the restart: %v, want lock lost", err)
	}
	if err := r.CompleteFeedback(ctxFor(t, 5*time.Second), again.LockToken); err != nil {
		t.Fatal(err)
	}
}
