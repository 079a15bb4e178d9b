package hub_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
)

// gatedQueue holds every Append until the test opens the gate, and counts
// the Appends.
type gatedQueue struct {
	queue.DurableQueue
	gate    chan struct{}
	entered chan struct{} // receives once per Append call
	appends atomic.Int32
}

func (g *gatedQueue) Append(ctx context.Context, entries []queue.Entry) ([]queue.Position, error) {
	g.appends.Add(1)
	g.entered <- struct{}{}
	<-g.gate
	return g.DurableQueue.Append(ctx, entries)
}

func TestDoneOnlyAfterDurableAppendAndGroupCommit(t *testing.T) {
	var g *gatedQueue
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		g = &gatedQueue{DurableQueue: c.Queue, gate: make(chan struct{}), entered: make(chan struct{}, 100)}
		c.Queue = g
	}})
	var doneCount atomic.Int32
	var wg sync.WaitGroup
	ingestOne := func(i int) {
		wg.Add(1)
		r.Ingest(t.Context(), identity("a"), &hubkit.Message{Body: []byte{byte(i)}}, func(err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
			}
			doneCount.Add(1)
		})
	}
	ingestOne(0)
	<-g.entered // the first commit is in Append, held at the gate
	for i := 1; i <= 100; i++ {
		ingestOne(i) // these queue up behind it
	}
	// Nothing is done while the write is not durable.
	if n := doneCount.Load(); n != 0 {
		t.Fatalf("%d done callbacks before Append returned", n)
	}
	close(g.gate)
	wg.Wait()
	// The 100 messages that waited share one Append (maxCommit is 1024).
	if n := g.appends.Load(); n != 2 {
		t.Errorf("%d Appends for 101 messages, want 2", n)
	}
	_, next, err := g.Bounds(ctxFor(t, 5*time.Second), hub.EventsStream, r.Partition("a"))
	if err != nil || next != 101 {
		t.Fatalf("stored %d, %v; want 101", next, err)
	}
}

// gatedAsyncQueue passes AppendAsync on to the store but holds the done
// callbacks until the test opens the gate; one goroutine then makes them,
// in order. It counts the AppendAsync calls.
type gatedAsyncQueue struct {
	queue.DurableQueue
	async   queue.AsyncAppender
	gate    chan struct{}
	held    chan func() // done calls to make, in order
	appends atomic.Int32
}

func (g *gatedAsyncQueue) AppendAsync(ctx context.Context, entries []queue.Entry, done func([]queue.Position, error)) {
	g.appends.Add(1)
	g.async.AppendAsync(ctx, entries, func(pos []queue.Position, err error) {
		g.held <- func() { done(pos, err) } // buffered beyond what the hub hands over
	})
}

// pass makes the held done calls once the gate is open, until held closes.
func (g *gatedAsyncQueue) pass() {
	<-g.gate
	for f := range g.held {
		f()
	}
}

func TestAsyncAppendPipelinesAndDoneOnlyAfterStoreDone(t *testing.T) {
	var g *gatedAsyncQueue
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		g = &gatedAsyncQueue{DurableQueue: c.Queue, async: c.Queue.(queue.AsyncAppender), gate: make(chan struct{}), held: make(chan func(), 4096)}
		c.Queue = g
		go g.pass()
		t.Cleanup(func() { close(g.held) }) // after the hub closed: nothing sends any more
	}})
	var mu sync.Mutex
	var order []int
	var errs []error
	ingestOne := func(i int) {
		r.Ingest(t.Context(), identity("a"), &hubkit.Message{Body: []byte{byte(i)}}, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, i)
			errs = append(errs, err)
		})
	}
	dones := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(order)
	}
	ctx := ctxFor(t, 10*time.Second)
	ingestOne(0)
	poll.Until(t, "the first AppendAsync", func() bool { return g.appends.Load() >= 1 })
	for i := 1; i <= 100; i++ {
		ingestOne(i)
	}
	// The committer hands the next batches over without waiting for the
	// first to be done, and the store makes them durable ...
	poll.Until(t, "a second AppendAsync stored while the first is not done", func() bool {
		_, next, err := g.Bounds(ctx, hub.EventsStream, r.Partition("a"))
		return err == nil && next >= 2 && g.appends.Load() >= 2
	})
	// ... yet no done comes before the store's own done.
	if n := dones(); n != 0 {
		t.Fatalf("%d done callbacks before the store called done", n)
	}
	close(g.gate)
	poll.Until(t, "every done callback", func() bool { return dones() == 101 })
	mu.Lock()
	defer mu.Unlock()
	for i := range order {
		if order[i] != i || errs[i] != nil {
			t.Fatalf("done call %d was for message %d with %v; want Ingest order, nil", i, order[i], errs[i])
		}
	}
	if _, next, err := g.Bounds(ctx, hub.EventsStream, r.Partition("a")); err != nil || next != 101 {
		t.Fatalf("stored %d, %v; want 101", next, err)
	}
}

func TestConnectionStateInRegistry(t *testing.T) {
	r := newRig(t, rigOptions{})
	createDevice(t, r, "a")
	ctx := ctxFor(t, 5*time.Second)
	r.Connected(ctx, identity("a"))
	var d auth.Device
	var err error
	// The registry is written in the background, many devices per write.
	poll.Until(t, "the connected state in the registry", func() bool {
		d, err = r.GetDevice(ctx, "a")
		return err != nil || d.ConnectionState == "Connected"
	})
	if err != nil || !d.ConnectionStateUpdatedTime.Equal(r.clock.Now()) || d.LastActivityTime.IsZero() {
		t.Fatalf("after connect: %+v, %v", d, err)
	}
	if m := r.Metrics(); m.Connections != 1 {
		t.Errorf("Connections = %d", m.Connections)
	}
	r.clock.Advance(time.Minute)
	r.Disconnected(ctx, identity("a"))
	poll.Until(t, "the disconnected state in the registry", func() bool {
		d, err = r.GetDevice(ctx, "a")
		return err != nil || d.ConnectionState == "Disconnected"
	})
	if err != nil || !d.ConnectionStateUpdatedTime.Equal(r.clock.Now()) {
		t.Fatalf("after disconnect: %+v, %v", d, err)
	}
}
