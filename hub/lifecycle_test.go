package hub_test

import (
	"context"
	"errors"
	"runtime"
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

// restart shuts the hub down, closes its store and starts a new hub on
// the same directory and clock.
func (r *rig) restart(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if err := r.Shutdown(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	r.close(t)
	o.dir, o.clock = r.dir, r.clock
	return newRig(t, o)
}

func TestRestartLosesNothing(t *testing.T) {
	o := rigOptions{config: func(c *hub.Config) { c.FeedbackBatchSize = 1 }}
	r := newRig(t, o)
	ctx := ctxFor(t, 20*time.Second)
	createDevice(t, r, "a")
	ingest(t, r.Hub, []string{"a"}, 3)
	p := r.Partition("a")
	if err := r.CreateConsumerGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkpoint(ctx, "g", p, 1); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2"} {
		if _, err := r.SendC2D(ctx, "a", &hubkit.Message{System: hubkit.SystemProperties{MessageID: id, Ack: hubkit.AckPositive}}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, r, "a", broker.Complete)

	r = r.restart(t, o)
	ingest(t, r.Hub, []string{"a"}, 1)
	evs, err := r.Receive(ctx, hub.DefaultConsumerGroup, p, hub.Earliest(), 10)
	if err != nil || len(evs) != 4 || string(evs[3].Message.Body) != "a-0" || evs[3].SequenceNumber != 3 {
		t.Fatalf("events after restart: %d, %v", len(evs), err)
	}
	evs, err = r.Receive(ctx, "g", p, hub.FromCheckpoint(), 10)
	if err != nil || len(evs) != 2 || evs[0].SequenceNumber != 2 {
		t.Fatalf("group g after restart: %+v, %v", evs, err)
	}
	d, err := r.ReceiveC2D(ctx, "a", queue.ReceiveOptions{NoWait: true})
	if err != nil || d.Message.System.MessageID != "c2" {
		t.Fatalf("C2D after restart: %+v, %v", d, err)
	}
	if got := feedbackRecords(t, r, 1); got[0] != "a:Success" {
		t.Fatalf("feedback after restart: %v", got)
	}
	// The journal cursor was committed: the same outcome gives no second record.
	r = r.restart(t, o)
	if _, err := r.ReceiveFeedback(ctxFor(t, 5*time.Second), true); err == nil {
		t.Fatal("feedback repeated after a restart")
	}
	if _, err := r.GetDevice(ctx, "a"); err != nil {
		t.Fatalf("registry after restart: %v", err)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := hub.New(hub.Config{Partitions: 1, C2DMaxDeliveryCount: 101, FeedbackLockDuration: time.Second,
		Endpoints: []hub.Endpoint{{Name: "events"}}})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"Partitions", "C2DMaxDeliveryCount", "FeedbackLockDuration", "reserved", "Endpoint is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestClosedHubRefusesEverything(t *testing.T) {
	r := newRig(t, rigOptions{})
	createDevice(t, r, "a")
	ctx := ctxFor(t, 5*time.Second)
	// A receive waiting when the hub closes ends with ErrClosed.
	waiting := make(chan error, 1)
	go func() {
		_, err := r.Receive(ctx, hub.DefaultConsumerGroup, 0, hub.Latest(), 1)
		waiting <- err
	}()
	if err := r.Hub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, hubkit.ErrClosed) {
		t.Errorf("waiting Receive: %v", err)
	}
	if err := r.Hub.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after Close: %v", err)
	}
	done := make(chan error, 1)
	r.Ingest(ctx, identity("a"), &hubkit.Message{}, func(err error) { done <- err })
	calls := map[string]error{
		"Ingest":         <-done,
		"Start":          r.Start(ctx),
		"Receive":        second(r.Receive(ctx, hub.DefaultConsumerGroup, 0, hub.Earliest(), 1)),
		"SendC2D":        second(r.SendC2D(ctx, "a", &hubkit.Message{})),
		"ReceiveC2D":     second(r.ReceiveC2D(ctx, "a", queue.ReceiveOptions{NoWait: true})),
		"Settle":         r.Settle(ctx, "a", "x", broker.Complete),
		"ReceiveFeedbck": second(r.ReceiveFeedback(ctx, true)),
		"Authenticate":   second(r.Authenticate(ctx, auth.Credentials{DeviceID: "a"})),
		"CreateDevice":   second(r.CreateDevice(ctx, auth.Device{DeviceID: "b"})),
		"Checkpoint":     r.Checkpoint(ctx, hub.DefaultConsumerGroup, 0, 0),
		"Healthy":        r.Healthy(),
	}
	for name, err := range calls {
		if !errors.Is(err, hubkit.ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestShutdownCommitsPending(t *testing.T) {
	r := newRig(t, rigOptions{})
	const n = 200
	results := make(chan error, n)
	for range n {
		r.Ingest(t.Context(), identity("a"), &hubkit.Message{Body: []byte("x")}, func(err error) { results <- err })
	}
	if err := r.Shutdown(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-results; err != nil {
			t.Fatalf("an ingest before Shutdown failed: %v", err)
		}
	}
	// Everything acknowledged is in the store.
	_, next, err := r.q.Bounds(ctxFor(t, 5*time.Second), hub.EventsStream, r.Partition("a"))
	if err != nil || next != n {
		t.Fatalf("stored %d, %v; want %d", next, err, n)
	}
}

func TestTwoHubsInOneProcess(t *testing.T) {
	a := newRig(t, rigOptions{})
	b := newRig(t, rigOptions{})
	createDevice(t, a, "only-in-a")
	ingest(t, a.Hub, []string{"x"}, 2)
	ctx := ctxFor(t, 5*time.Second)
	if _, err := b.GetDevice(ctx, "only-in-a"); !errors.Is(err, hubkit.ErrDeviceNotFound) {
		t.Errorf("hub b sees hub a's device: %v", err)
	}
	if err := a.CreateConsumerGroup(ctx, "ga"); err != nil {
		t.Fatal(err)
	}
	names, err := b.ConsumerGroups(ctx)
	if err != nil || len(names) != 1 {
		t.Errorf("hub b groups %v, %v", names, err)
	}
	if a.Metrics().D2CIn != 2 || b.Metrics().D2CIn != 0 {
		t.Errorf("metrics shared: %+v %+v", a.Metrics(), b.Metrics())
	}
	if err := b.Hub.Close(); err != nil {
		t.Fatal(err)
	}
	ingest(t, a.Hub, []string{"x"}, 1) // a runs on after b closed
}

func TestGoroutinesReturnAfterClose(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		r := newRig(t, rigOptions{})
		createDevice(t, r, "a")
		ingest(t, r.Hub, []string{"a"}, 5)
		r.Connected(t.Context(), identity("a"))
		if _, err := r.SendC2D(t.Context(), "a", &hubkit.Message{System: hubkit.SystemProperties{Ack: hubkit.AckFull}}); err != nil {
			t.Fatal(err)
		}
		r.close(t)
	}
	poll.Until(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestStartWithoutQueueUsesPebbleInDir(t *testing.T) {
	dir := t.TempDir()
	cfg := hub.Config{Dir: dir, Logger: discard()}
	for range 2 { // twice: the second run finds the first one's data
		h, err := hub.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Start(t.Context()); err != nil {
			t.Fatal(errors.Join(err, h.Close()))
		}
		ctx := context.Background()
		if _, err := h.GetDevice(ctx, "d"); errors.Is(err, hubkit.ErrDeviceNotFound) {
			if _, err := h.CreateDevice(ctx, auth.Device{DeviceID: "d"}); err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		if err := h.Shutdown(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

// stuckBroker's Shutdown waits until its ctx ends; it records its calls.
type stuckBroker struct {
	started, closed atomic.Int32
}

func (b *stuckBroker) Start(ctx context.Context, h broker.Hub) error { b.started.Add(1); return nil }
func (b *stuckBroker) Disconnect(deviceID, moduleID string)          {}
func (b *stuckBroker) Shutdown(ctx context.Context) error            { <-ctx.Done(); return ctx.Err() }
func (b *stuckBroker) Close() error                                  { b.closed.Add(1); return nil }

func TestShutdownFallsBackToCloseWhenCtxEnds(t *testing.T) {
	b := &stuckBroker{}
	r := newRig(t, rigOptions{config: func(c *hub.Config) { c.Brokers = []broker.Broker{b} }})
	if b.started.Load() != 1 {
		t.Fatalf("broker started %d times", b.started.Load())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := r.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	if b.closed.Load() == 0 {
		t.Error("the broker was not closed")
	}
	if err := r.Healthy(); !errors.Is(err, hubkit.ErrClosed) {
		t.Errorf("Healthy after Shutdown: %v", err)
	}
}

func TestNeverStartedHub(t *testing.T) {
	b := &stuckBroker{}
	h, err := hub.New(hub.Config{Dir: t.TempDir(), Brokers: []broker.Broker{b}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Healthy(); !errors.Is(err, hub.ErrNotStarted) {
		t.Errorf("Healthy before Start: %v", err)
	}
	if _, err := h.SendC2D(t.Context(), "a", &hubkit.Message{}); !errors.Is(err, hub.ErrNotStarted) {
		t.Errorf("SendC2D before Start: %v", err)
	}
	if err := h.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.closed.Load() != 0 {
		t.Error("a broker never started was closed")
	}
	if err := h.Start(t.Context()); !errors.Is(err, hubkit.ErrClosed) {
		t.Errorf("Start after Shutdown: %v", err)
	}
}
