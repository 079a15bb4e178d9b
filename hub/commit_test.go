package hub_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/hub"
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

func TestConnectionStateInRegistry(t *testing.T) {
	r := newRig(t, rigOptions{})
	createDevice(t, r, "a")
	ctx := ctxFor(t, 5*time.Second)
	r.Connected(ctx, identity("a"))
	d, err := r.GetDevice(ctx, "a")
	if err != nil || d.ConnectionState != "Connected" || !d.ConnectionStateUpdatedTime.Equal(r.clock.Now()) || d.LastActivityTime.IsZero() {
		t.Fatalf("after connect: %+v, %v", d, err)
	}
	if m := r.Metrics(); m.Connections != 1 {
		t.Errorf("Connections = %d", m.Connections)
	}
	r.clock.Advance(time.Minute)
	r.Disconnected(ctx, identity("a"))
	d, err = r.GetDevice(ctx, "a")
	if err != nil || d.ConnectionState != "Disconnected" || !d.ConnectionStateUpdatedTime.Equal(r.clock.Now()) {
		t.Fatalf("after disconnect: %+v, %v", d, err)
	}
}
