package hub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/hub"
)

func identity(device string) auth.Identity {
	return auth.Identity{DeviceID: device, GenerationID: "gen-" + device, Method: auth.AuthMethod{Scope: "device", Type: "sas", Issuer: "iothub"}}
}

// ingest sends n messages from each device and waits until all are done;
// it checks that done calls come in Ingest order.
func ingest(t *testing.T, h *hub.Hub, devices []string, n int) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	var want []string
	var wg sync.WaitGroup
	for i := range n {
		for _, d := range devices {
			id := fmt.Sprintf("%s-%d", d, i)
			want = append(want, id)
			wg.Add(1)
			m := &hubkit.Message{Body: []byte(id), System: hubkit.SystemProperties{MessageID: id, ConnectionDeviceID: "spoofed", MessageSource: "spoofed"}}
			h.Ingest(t.Context(), identity(d), m, func(err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("ingest %s: %v", id, err)
				}
				mu.Lock()
				got = append(got, id)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("done order:\n got %v\nwant %v", got, want)
	}
}

func TestIngestStampsAndOrders(t *testing.T) {
	r := newRig(t, rigOptions{})
	devices := []string{"a", "b", "c", "d", "e"}
	ingest(t, r.Hub, devices, 20)
	for _, d := range devices {
		p := r.Partition(d)
		evs, err := r.Receive(ctxFor(t, 5*time.Second), hub.DefaultConsumerGroup, p, hub.Earliest(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		var i int
		for j, e := range evs {
			if e.Partition != p || e.SequenceNumber != uint64(j) || e.Offset != fmt.Sprint(j) {
				t.Errorf("event %d: partition %d seq %d offset %s", j, e.Partition, e.SequenceNumber, e.Offset)
			}
			s := e.Message.System
			if s.ConnectionDeviceID != d && s.ConnectionDeviceID != "" {
				if r.Partition(s.ConnectionDeviceID) != p {
					t.Errorf("device %s in partition %d, want %d", s.ConnectionDeviceID, p, r.Partition(s.ConnectionDeviceID))
				}
				continue
			}
			if want := fmt.Sprintf("%s-%d", d, i); string(e.Message.Body) != want {
				t.Errorf("device %s event %d is %q, want %q", d, i, e.Message.Body, want)
			}
			i++
			if s.MessageSource != hubkit.SourceTelemetry || s.ConnectionAuthGenerationID != "gen-"+d ||
				s.ConnectionAuthMethod != `{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}` ||
				!s.EnqueuedTime.Equal(r.clock.Now()) || !e.EnqueuedTime.Equal(r.clock.Now()) {
				t.Errorf("stamps of %s: %+v (enqueued %v)", e.Message.Body, s, e.EnqueuedTime)
			}
		}
		if i != 20 {
			t.Errorf("device %s: %d events in partition %d, want 20", d, i, p)
		}
	}
	if got := r.Metrics().D2CIn; got != 100 {
		t.Errorf("D2CIn = %d, want 100", got)
	}
}

func TestIngestRefusesTooLarge(t *testing.T) {
	r := newRig(t, rigOptions{})
	errc := make(chan error, 1)
	r.Ingest(t.Context(), identity("a"), &hubkit.Message{Body: make([]byte, hubkit.MaxD2CSize+1)}, func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, hubkit.ErrMessageTooLarge) {
		t.Fatalf("got %v, want MessageTooLarge", err)
	}
}

func TestPartitionIsStableAndSpread(t *testing.T) {
	r := newRig(t, rigOptions{})
	seen := map[int]bool{}
	for i := range 200 {
		d := fmt.Sprintf("device-%d", i)
		p := r.Partition(d)
		if p < 0 || p >= r.Partitions() {
			t.Fatalf("partition %d out of range", p)
		}
		if r.Partition(d) != p {
			t.Fatalf("partition of %s changed", d)
		}
		seen[p] = true
	}
	if len(seen) != r.Partitions() {
		t.Errorf("200 devices used %d of %d partitions", len(seen), r.Partitions())
	}
	// FNV-1a 32 of "a" is 0xe40c292c; the mapping must never change, or
	// devices would change partition between releases.
	if got, want := r.Partition("a"), int(uint32(0xe40c292c)%4); got != want {
		t.Errorf("Partition(a) = %d, want %d", got, want)
	}
}

func TestReceivePositions(t *testing.T) {
	r := newRig(t, rigOptions{})
	ingest(t, r.Hub, []string{"a"}, 5) // seq 0..4 at t0
	t1 := r.clock.Now().Add(time.Minute)
	r.clock.Advance(time.Minute)
	ingest(t, r.Hub, []string{"a"}, 3) // seq 5..7 at t1
	p := r.Partition("a")
	cases := []struct {
		name string
		pos  hub.EventPosition
		want uint64 // first sequence number
	}{
		{"earliest", hub.Earliest(), 0},
		{"zero value", hub.EventPosition{}, 0},
		{"sequence inclusive", hub.AtSequence(3, true), 3},
		{"sequence exclusive", hub.AtSequence(3, false), 4},
		{"offset inclusive", hub.AtOffset("6", true), 6},
		{"offset exclusive", hub.AtOffset("6", false), 7},
		{"offset -1", hub.AtOffset("-1", false), 0},
		{"enqueued time", hub.AtEnqueuedTime(t1), 5},
		{"enqueued time before all", hub.AtEnqueuedTime(t1.Add(-time.Hour)), 0},
		{"checkpoint absent", hub.FromCheckpoint(), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := r.Receive(ctxFor(t, 5*time.Second), hub.DefaultConsumerGroup, p, c.pos, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].SequenceNumber != c.want {
				t.Fatalf("got %+v, want sequence %d", evs, c.want)
			}
		})
	}
	t.Run("bad offset", func(t *testing.T) {
		_, err := r.Receive(ctxFor(t, 5*time.Second), hub.DefaultConsumerGroup, p, hub.AtOffset("x", true), 1)
		if !errors.Is(err, hubkit.ErrArgumentInvalid) {
			t.Fatalf("got %v, want ArgumentInvalid", err)
		}
	})
	t.Run("bad partition", func(t *testing.T) {
		_, err := r.Receive(ctxFor(t, 5*time.Second), hub.DefaultConsumerGroup, 4, hub.Earliest(), 1)
		if !errors.Is(err, hubkit.ErrArgumentInvalid) {
			t.Fatalf("got %v, want ArgumentInvalid", err)
		}
	})
	for _, pos := range []hub.EventPosition{hub.Latest(), hub.AtOffset("@latest", false), hub.AtSequence(7, false)} {
		t.Run("waits at end", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			defer cancel()
			evs, err := r.Receive(ctx, hub.DefaultConsumerGroup, p, pos, 10)
			if !errors.Is(err, context.DeadlineExceeded) || len(evs) != 0 {
				t.Fatalf("got %v, %v; want DeadlineExceeded and nothing", evs, err)
			}
		})
	}
	t.Run("latest sees new events", func(t *testing.T) {
		got := make(chan []hub.Event, 1)
		go func() {
			evs, err := r.Receive(ctxFor(t, 10*time.Second), hub.DefaultConsumerGroup, p, hub.AtSequence(7, false), 10)
			if err != nil {
				t.Error(err)
			}
			got <- evs
		}()
		ingest(t, r.Hub, []string{"a"}, 1)
		if evs := <-got; len(evs) != 1 || evs[0].SequenceNumber != 8 {
			t.Fatalf("got %+v, want sequence 8", evs)
		}
	})
}

func TestCheckpoints(t *testing.T) {
	r := newRig(t, rigOptions{})
	ingest(t, r.Hub, []string{"a"}, 5)
	p := r.Partition("a")
	ctx := ctxFor(t, 10*time.Second)
	if err := r.Checkpoint(ctx, hub.DefaultConsumerGroup, p, 2); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkpoint(ctx, hub.DefaultConsumerGroup, p, 1); err != nil { // backwards: ignored
		t.Fatal(err)
	}
	next, ok, err := r.CheckpointOf(ctx, hub.DefaultConsumerGroup, p)
	if err != nil || !ok || next != 3 {
		t.Fatalf("CheckpointOf = %d, %v, %v; want 3, true", next, ok, err)
	}
	evs, err := r.Receive(ctx, hub.DefaultConsumerGroup, p, hub.FromCheckpoint(), 10)
	if err != nil || len(evs) != 2 || evs[0].SequenceNumber != 3 {
		t.Fatalf("from checkpoint: %+v, %v; want sequences 3 and 4", evs, err)
	}
	// Another group has its own checkpoints.
	if err := r.CreateConsumerGroup(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.CheckpointOf(ctx, "other", p); ok || err != nil {
		t.Fatalf("new group has a checkpoint: %v, %v", ok, err)
	}
	if err := r.Checkpoint(ctx, "other", p, 4); err != nil {
		t.Fatal(err)
	}
	// Deleting and re-creating a group forgets its checkpoints.
	if err := r.DeleteConsumerGroup(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkpoint(ctx, "other", p, 4); !errors.Is(err, hub.ErrConsumerGroupNotFound) {
		t.Fatalf("checkpoint of deleted group: %v", err)
	}
	if err := r.CreateConsumerGroup(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.CheckpointOf(ctx, "other", p); ok || err != nil {
		t.Fatalf("re-created group kept a checkpoint: %v, %v", ok, err)
	}
}

func TestConsumerGroups(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 10*time.Second)
	cases := []struct {
		name string
		want error
	}{
		{"a", nil},
		{"a", hub.ErrConsumerGroupExists},
		{"Ab-9._x", nil},
		{"", hubkit.ErrArgumentInvalid},
		{strings.Repeat("x", 51), hubkit.ErrArgumentInvalid},
		{strings.Repeat("x", 50), nil},
		{"no/slash", hubkit.ErrArgumentInvalid},
		{"$Default", hubkit.ErrArgumentInvalid},
		{"bad name", hubkit.ErrArgumentInvalid},
	}
	for _, c := range cases {
		if err := r.CreateConsumerGroup(ctx, c.name); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("CreateConsumerGroup(%q) = %v, want %v", c.name, err, c.want)
		}
	}
	names, err := r.ConsumerGroups(ctx)
	if err != nil || strings.Join(names, ",") != "$Default,Ab-9._x,a,"+strings.Repeat("x", 50) {
		t.Fatalf("ConsumerGroups = %v, %v", names, err)
	}
	for i := len(names); i < hub.MaxConsumerGroups; i++ {
		if err := r.CreateConsumerGroup(ctx, fmt.Sprint("g", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.CreateConsumerGroup(ctx, "one-too-many"); !errors.Is(err, hubkit.ErrArgumentInvalid) {
		t.Errorf("group 21: %v", err)
	}
	if err := r.DeleteConsumerGroup(ctx, hub.DefaultConsumerGroup); !errors.Is(err, hubkit.ErrArgumentInvalid) {
		t.Errorf("delete $Default: %v", err)
	}
	if err := r.DeleteConsumerGroup(ctx, "nope"); !errors.Is(err, hub.ErrConsumerGroupNotFound) {
		t.Errorf("delete unknown: %v", err)
	}
	if _, err := r.Receive(ctx, "nope", 0, hub.Earliest(), 1); !errors.Is(err, hub.ErrConsumerGroupNotFound) {
		t.Errorf("receive unknown group: %v", err)
	}
}
