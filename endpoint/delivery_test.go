package endpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
	"github.com/hubkit/hubkit/queue/pebble"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newStore returns an in-memory store on the clock now (nil: the system
// clock), closed when the test ends, after the deliveries started later.
func newStore(t testing.TB, now func() time.Time) *memory.Store {
	t.Helper()
	s := memory.New(memory.Options{Now: now, SweepInterval: -1})
	t.Cleanup(func() { s.Close() })
	return s
}

// start runs a Delivery for cfg until the test ends and checks that Run returned nil.
func start(t *testing.T, cfg endpoint.DeliveryConfig) *endpoint.Delivery {
	t.Helper()
	d, err := endpoint.NewDelivery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return d
}

func msg(dev string, i int) *hubkit.Message {
	return &hubkit.Message{
		Body:   []byte(fmt.Sprintf(`{"i":%d}`, i)),
		System: hubkit.SystemProperties{MessageID: fmt.Sprintf("%s-%d", dev, i), ConnectionDeviceID: dev},
	}
}

// appendN appends n messages to each of parts partitions of stream; the
// message ids are p<partition>-<i>.
func appendN(t *testing.T, s queue.Streams, stream string, parts, from, n int) {
	t.Helper()
	var entries []queue.Entry
	for i := from; i < from+n; i++ {
		for p := range parts {
			entries = append(entries, queue.Entry{Stream: stream, Partition: p, Message: msg(fmt.Sprintf("p%d", p), i)})
		}
	}
	if _, err := s.Append(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
}

// recorder is a Func endpoint that records what it accepts and fails while told to.
type recorder struct {
	mu      sync.Mutex // guards the fields below
	ids     []string
	failing error
	calls   int
}

func (r *recorder) send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failing != nil {
		return 0, r.failing
	}
	for _, m := range batch {
		r.ids = append(r.ids, m.System.MessageID)
	}
	return len(batch), nil
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing = err
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// checkPartitionOrder checks that ids (p<partition>-<i>) hold 0..n-1 of
// each partition, each once, in order per partition.
func checkPartitionOrder(t *testing.T, ids []string, parts, n int) {
	t.Helper()
	next := map[string]int{}
	for _, id := range ids {
		p, i, _ := strings.Cut(id, "-")
		if want := fmt.Sprint(next[p]); i != want {
			t.Fatalf("partition %s: got message %s, want %s", p, i, want)
		}
		next[p]++
	}
	for p := range parts {
		if got := next[fmt.Sprintf("p%d", p)]; got != n {
			t.Fatalf("partition %d: %d messages delivered, want %d", p, got, n)
		}
	}
}

func TestDeliveryInOrderAcrossPartitions(t *testing.T) {
	s := newStore(t, nil)
	rec := &recorder{}
	d := start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: endpoint.Func("ep", rec.send), Streams: s, Partitions: 4, MaxBatch: 7})
	appendN(t, s, "ep", 4, 0, 250)
	poll.Until(t, "1000 messages", func() bool { return len(rec.got()) >= 1000 })
	checkPartitionOrder(t, rec.got(), 4, 250)
	for p := range 4 {
		poll.Until(t, "cursor", func() bool {
			n, err := s.Cursor(context.Background(), "endpoint/ep", "ep", p)
			return err == nil && n == 250
		})
	}
	if h := d.Health(); h.Status != endpoint.Healthy || h.LastSuccessfulSendAttemptTime.IsZero() {
		t.Errorf("health = %+v, want healthy with a successful send", h)
	}
	if m := d.Metrics(); m.Delivered != 1000 || m.Sends < 1000/7 {
		t.Errorf("metrics = %+v, want 1000 delivered in at least %d sends", m, 1000/7)
	}
}

func TestDeliveryResumesFromCursor(t *testing.T) {
	s := newStore(t, nil)
	appendN(t, s, "ep", 2, 0, 10)
	if err := s.Commit(context.Background(), "endpoint/ep", "ep", 1, 4); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: endpoint.Func("ep", rec.send), Streams: s, Partitions: 2})
	poll.Until(t, "16 messages", func() bool { return len(rec.got()) == 16 })
	got := strings.Join(rec.got(), ",")
	if strings.Contains(got, "p1-3,") || !strings.Contains(got, "p1-4") || !strings.Contains(got, "p0-0") {
		t.Errorf("delivered %s: want p0 from 0 and p1 from 4", got)
	}
}

// recordingClock records the waits asked of it.
type recordingClock struct {
	*endpointtest.Clock
	mu sync.Mutex
	ds []time.Duration
}

func (c *recordingClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.ds = append(c.ds, d)
	c.mu.Unlock()
	return c.Clock.After(d)
}

func (c *recordingClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.ds...)
}

func TestDeliveryRetriesUntilRecovery(t *testing.T) {
	clock := &recordingClock{Clock: endpointtest.NewClock(t0)}
	s := newStore(t, clock.Now)
	rec := &recorder{}
	rec.fail(errors.New("sink down"))
	d := start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: endpoint.Func("ep", rec.send), Streams: s, Partitions: 1, Clock: clock})
	if h := d.Health(); h.Status != endpoint.Unknown {
		t.Fatalf("health before any send = %s, want unknown", h.Status)
	}
	appendN(t, s, "ep", 1, 0, 5)
	// Backoff doubles from 1 s to 60 s: after each failure, one timer waits.
	for i := range 8 {
		poll.Until(t, "a backoff timer", func() bool { return clock.Waiters() == 1 && len(clock.waits()) == i+1 })
		clock.Advance(2 * time.Minute)
	}
	for i, w := range clock.waits() {
		base := min(time.Second<<i, time.Minute)
		if w < base-time.Second || w > base+time.Second {
			t.Errorf("wait %d = %v, want %v ± 1 s", i, w, base)
		}
	}
	h := d.Health()
	if h.Status != endpoint.Unhealthy || h.LastKnownError != "endpoint ep: sink down" || !h.LastSuccessfulSendAttemptTime.IsZero() || h.LastSendAttemptTime.Before(h.LastKnownErrorTime) {
		t.Fatalf("health while failing = %+v", h)
	}
	poll.Until(t, "a backoff timer", func() bool { return clock.Waiters() == 1 })
	rec.fail(nil)
	d.Wake() // ends the 60 s wait at once
	poll.Until(t, "5 messages", func() bool { return len(rec.got()) == 5 })
	poll.Until(t, "healthy", func() bool { return d.Health().Status == endpoint.Healthy })
	if m := d.Metrics(); m.Failures != 9 || m.Delivered != 5 {
		t.Errorf("metrics = %+v, want 9 failures and 5 delivered", m)
	}
	b, _ := json.Marshal(d.Health())
	for _, field := range []string{`"endpointId":"ep"`, `"healthStatus":"healthy"`, `"lastKnownError":`, `"lastKnownErrorTime":`, `"lastSuccessfulSendAttemptTime":`, `"lastSendAttemptTime":`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("health JSON %s lacks %s", b, field)
		}
	}
}

func TestDeliveryDeadDropsAfterRetention(t *testing.T) {
	clock := endpointtest.NewClock(t0)
	s := newStore(t, clock.Now)
	rec := &recorder{}
	rec.fail(errors.New("sink down"))
	d := start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: endpoint.Func("ep", rec.send), Streams: s, Partitions: 1, Clock: clock,
		RetryPeriod: 10 * time.Minute, Retention: 15 * time.Minute})
	appendN(t, s, "ep", 1, 0, 3)
	for d.Health().Status != endpoint.Dead {
		poll.Until(t, "a timer", func() bool { return clock.Waiters() == 1 })
		clock.Advance(time.Minute)
	}
	if m := d.Metrics(); m.Dropped != (endpoint.Metrics{}).Dropped {
		t.Fatalf("dropped %v before Retention", m.Dropped)
	}
	// Dead: attempts every ReviveInterval (30 s) until the messages are 15 min old.
	for d.Metrics().Dropped[endpoint.DropDeadEndpoint] != 3 {
		poll.Until(t, "a timer", func() bool { return clock.Waiters() == 1 || d.Metrics().Dropped[endpoint.DropDeadEndpoint] == 3 })
		clock.Advance(30 * time.Second)
		if clock.Now().Sub(t0) > 20*time.Minute {
			t.Fatalf("no drop 20 min after enqueue: %+v", d.Metrics())
		}
	}
	if n, err := s.Cursor(context.Background(), "endpoint/ep", "ep", 0); err != nil || n != 3 {
		t.Fatalf("cursor after drops = %d, %v; want 3", n, err)
	}
	// A dead endpoint that recovers gets new messages.
	rec.fail(nil)
	appendN(t, s, "ep", 1, 3, 2)
	d.Wake()
	poll.Until(t, "2 messages", func() bool { return len(rec.got()) == 2 })
	poll.Until(t, "healthy", func() bool { return d.Health().Status == endpoint.Healthy })
}

func TestDeliverySkipsRefusedMessages(t *testing.T) {
	s := newStore(t, nil)
	var ids []string
	var mu sync.Mutex
	ep := endpoint.Func("ep", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for i, m := range batch {
			switch m.System.MessageID {
			case "p0-2":
				return i, endpoint.Skip("ep", fmt.Errorf("%w: too big", hubkit.ErrMessageTooLarge))
			case "p0-5":
				return i, endpoint.Skip("ep", errors.New("bad input"))
			}
			ids = append(ids, m.System.MessageID)
		}
		return len(batch), nil
	})
	d := start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: ep, Streams: s, Partitions: 1})
	appendN(t, s, "ep", 1, 0, 8)
	poll.Until(t, "6 messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(ids) == 6 })
	mu.Lock()
	got := strings.Join(ids, ",")
	mu.Unlock()
	if got != "p0-0,p0-1,p0-3,p0-4,p0-6,p0-7" {
		t.Errorf("delivered %s", got)
	}
	m := d.Metrics()
	if m.Dropped[endpoint.DropTooLarge] != 1 || m.Dropped[endpoint.DropInvalid] != 1 || m.Failures != 0 {
		t.Errorf("metrics = %+v, want one too large, one invalid, no failures", m)
	}
	if h := d.Health(); h.Status != endpoint.Healthy || !strings.Contains(h.LastKnownError, "bad input") {
		t.Errorf("health = %+v, want healthy with the last refusal as lastKnownError", h)
	}
}

func TestDeliveryPartialAccepts(t *testing.T) {
	s := newStore(t, nil)
	rec := &recorder{}
	ep := endpoint.Func("ep", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		return rec.send(ctx, batch[:min(3, len(batch))])
	})
	start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: ep, Streams: s, Partitions: 2, MaxBatch: 10})
	appendN(t, s, "ep", 2, 0, 20)
	poll.Until(t, "40 messages", func() bool { return len(rec.got()) == 40 })
	checkPartitionOrder(t, rec.got(), 2, 20)
}

func TestDeliveryBatchLimits(t *testing.T) {
	clock := endpointtest.NewClock(t0)
	s := newStore(t, clock.Now)
	var sizes []int
	var mu sync.Mutex
	ep := endpoint.Func("ep", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(batch))
		return len(batch), nil
	})
	// Each message is 13 bytes by Message.Size: 4 fit in 60 bytes.
	start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: ep, Streams: s, Partitions: 1, MaxBatchBytes: 60, Linger: time.Second, Clock: clock})
	appendN(t, s, "ep", 1, 0, 2)
	poll.Until(t, "linger timer", func() bool { return clock.Waiters() == 1 })
	mu.Lock()
	if len(sizes) != 0 {
		t.Fatalf("sent %v before Linger passed", sizes)
	}
	mu.Unlock()
	appendN(t, s, "ep", 1, 2, 8)
	poll.Until(t, "a full batch", func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) > 0 })
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range sizes {
			n += s
		}
		return n
	}
	for total() < 10 {
		poll.Until(t, "a linger timer", func() bool { return clock.Waiters() > 0 || total() == 10 })
		clock.Advance(time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	if sizes[0] != 4 {
		t.Errorf("batch sizes %v: the first should be 4 messages, the most 60 bytes hold", sizes)
	}
	for _, n := range sizes {
		if n > 4 {
			t.Errorf("batch sizes %v exceed 60 bytes", sizes)
		}
	}
}

func TestDeliveryCloseCancelsSend(t *testing.T) {
	s := newStore(t, nil)
	var cancelled atomic.Bool
	entered := make(chan struct{})
	ep := endpoint.Func("ep", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		close(entered)
		<-ctx.Done()
		cancelled.Store(true)
		return 0, ctx.Err()
	})
	goroutines := runtime.NumGoroutine()
	d, err := endpoint.NewDelivery(endpoint.DeliveryConfig{Name: "ep", Endpoint: ep, Streams: s, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	appendN(t, s, "ep", 1, 0, 1)
	<-entered
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after Close = %v, want nil", err)
	}
	if !cancelled.Load() {
		t.Error("the Send in flight did not see its ctx cancelled")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.Run(context.Background()); !errors.Is(err, hubkit.ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if n, err := s.Cursor(context.Background(), "endpoint/ep", "ep", 0); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("cursor = %d, %v: a cancelled send must not commit", n, err)
	}
	poll.Until(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestDeliveryConfigErrors(t *testing.T) {
	_, err := endpoint.NewDelivery(endpoint.DeliveryConfig{MaxBatch: -1})
	for _, want := range []string{"Name is empty", "Endpoint is nil", "Streams is nil", "Partitions is 0", "MaxBatch is negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestDeliveryResumesAfterReopen stops delivery and the Pebble store in the
// middle of a run, reopens both, and checks that delivery goes on from the
// cursor: nothing is lost, and nothing accepted before the stop is sent again.
func TestDeliveryResumesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	var stop atomic.Bool // makes the endpoint fail once limit messages are in
	limit := 150
	ep := endpoint.Func("ep", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		if stop.Load() {
			return 0, errors.New("stopping")
		}
		n, err := rec.send(ctx, batch[:min(len(batch), limit-len(rec.got()))])
		if len(rec.got()) >= limit {
			stop.Store(true)
		}
		return n, err
	})
	for round := range 2 {
		s, err := pebble.Open(dir, pebble.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			appendN(t, s, "ep", 2, 0, 200)
		}
		d, err := endpoint.NewDelivery(endpoint.DeliveryConfig{Name: "ep", Endpoint: ep, Streams: s, Partitions: 2, MaxBatch: 16})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(context.Background()) }()
		if round == 0 {
			poll.Until(t, "the first 150 messages", stop.Load)
		} else {
			poll.Until(t, "all 400 messages", func() bool { return len(rec.got()) == 400 })
		}
		d.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		stop.Store(false)
		limit = 400
	}
	checkPartitionOrder(t, rec.got(), 2, 200)
}

// logBuffer collects JSON log lines; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the logged lines that contain every one of subs.
func (b *logBuffer) lines(subs ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// TestDeliveryCountsRetentionDrops checks that records the store's
// retention removed before they were delivered are counted as dropped for
// "retention" and logged once per gap, both when the gap is there before
// Run starts and when it opens while the endpoint is failing.
func TestDeliveryCountsRetentionDrops(t *testing.T) {
	t.Run("before start", func(t *testing.T) {
		clock := endpointtest.NewClock(t0)
		s := newStore(t, clock.Now)
		if err := s.SetRetention("ep", queue.Retention{MaxAge: time.Minute}); err != nil {
			t.Fatal(err)
		}
		appendN(t, s, "ep", 2, 0, 10)
		clock.Advance(2 * time.Minute)
		if err := s.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		appendN(t, s, "ep", 1, 10, 3)
		logs := &logBuffer{}
		rec := &recorder{}
		d := start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: endpoint.Func("ep", rec.send), Streams: s, Partitions: 2,
			Clock: clock, Retention: -1, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		poll.Until(t, "3 messages", func() bool { return len(rec.got()) == 3 })
		if got := strings.Join(rec.got(), ","); got != "p0-10,p0-11,p0-12" {
			t.Errorf("delivered %s, want p0-10,p0-11,p0-12", got)
		}
		poll.Until(t, "20 drops", func() bool { return d.Metrics().Dropped[endpoint.DropRetention] == 20 })
		if m := d.Metrics(); m.Dropped[endpoint.DropExpired]+m.Dropped[endpoint.DropDeadEndpoint] != 0 {
			t.Errorf("metrics = %+v: only retention drops expected", m)
		}
		for p := range 2 {
			if got := logs.lines(`"reason":"retention"`, fmt.Sprintf(`"partition":%d,`, p), `"count":10`); len(got) != 1 {
				t.Errorf("partition %d: %d retention logs with count 10, want 1; all logs:\n%s", p, len(got), strings.Join(logs.lines(), "\n"))
			}
		}
	})
	t.Run("while failing", func(t *testing.T) {
		clock := endpointtest.NewClock(t0)
		s := newStore(t, clock.Now)
		if err := s.SetRetention("ep", queue.Retention{MaxAge: time.Minute}); err != nil {
			t.Fatal(err)
		}
		logs := &logBuffer{}
		rec := &recorder{}
		rec.fail(errors.New("sink down"))
		d := start(t, endpoint.DeliveryConfig{Name: "ep", Endpoint: endpoint.Func("ep", rec.send), Streams: s, Partitions: 1,
			MaxBatch: 2, Clock: clock, Retention: -1, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		appendN(t, s, "ep", 1, 0, 20)
		poll.Until(t, "a failed send", func() bool { return clock.Waiters() == 1 })
		// The engine holds a few records in memory; retention removes the rest.
		clock.Advance(2 * time.Minute)
		if err := s.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		appendN(t, s, "ep", 1, 20, 5)
		rec.fail(nil)
		d.Wake()
		poll.Until(t, "p0-24", func() bool { got := rec.got(); return len(got) > 0 && got[len(got)-1] == "p0-24" })
		got := rec.got()
		dropped := d.Metrics().Dropped[endpoint.DropRetention]
		if uint64(len(got))+dropped != 25 || dropped < 10 {
			t.Fatalf("delivered %d (%v) and dropped %d for retention: want 25 in all, at least 10 dropped", len(got), got, dropped)
		}
		last := -1
		for _, id := range got {
			var i int
			fmt.Sscanf(id, "p0-%d", &i)
			if i <= last {
				t.Fatalf("delivered %v: out of order or repeated", got)
			}
			last = i
		}
		if n := len(logs.lines(`"reason":"retention"`, fmt.Sprintf(`"count":%d`, dropped))); n != 1 {
			t.Errorf("%d retention logs with count %d, want 1; all logs:\n%s", n, dropped, strings.Join(logs.lines(), "\n"))
		}
	})
}
