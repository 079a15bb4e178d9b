package hub_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
)

// processDevices are devices whose partitions cover all 4 of a test hub.
var processDevices = []string{"a", "b", "c", "d"}

// collector records what a Process handler was given, per partition.
type collector struct {
	mu     sync.Mutex // guards the fields below
	events map[int][]hub.Event
	calls  int
}

func newCollector() *collector { return &collector{events: map[int][]hub.Event{}} }

func (c *collector) add(p int, events []hub.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events[p] = append(c.events[p], events...)
	c.calls++
}

// count returns the number of events recorded.
func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, evs := range c.events {
		n += len(evs)
	}
	return n
}

// bodies returns the bodies recorded.
func (c *collector) bodies() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]bool{}
	for _, evs := range c.events {
		for _, e := range evs {
			m[string(e.Message.Body)] = true
		}
	}
	return m
}

// process runs h.Process in the background and returns a function that
// waits for its result.
func process(t *testing.T, ctx context.Context, h *hub.Hub, group string, opts hub.ProcessOptions, handle func(context.Context, int, []hub.Event) error) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.Process(ctx, group, opts, handle) }()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(poll.Timeout):
			t.Error("Process still runs at the end of the test")
		}
	})
	return func() error {
		select {
		case err := <-done:
			done <- err // for Cleanup
			return err
		case <-time.After(poll.Timeout):
			t.Fatal("Process did not return")
			return nil
		}
	}
}

func TestProcessReadsEveryPartitionInOrder(t *testing.T) {
	r := newRig(t, rigOptions{})
	const per = 30
	ingest(t, r.Hub, processDevices, per)
	covered := map[int]bool{}
	for _, d := range processDevices {
		covered[r.Partition(d)] = true
	}
	if len(covered) != r.Partitions() {
		t.Fatalf("test devices cover partitions %v of %d", covered, r.Partitions())
	}

	c := newCollector()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := process(t, ctx, r.Hub, hub.DefaultConsumerGroup, hub.ProcessOptions{MaxBatch: 7}, func(_ context.Context, p int, evs []hub.Event) error {
		if len(evs) < 1 || len(evs) > 7 {
			t.Errorf("partition %d: a batch of %d events, want 1 to 7", p, len(evs))
		}
		c.add(p, evs)
		return nil
	})
	total := per * len(processDevices)
	poll.Until(t, "every event handled", func() bool { return c.count() >= total })
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Process after cancel = %v, want nil", err)
	}

	if n := c.count(); n != total {
		t.Errorf("%d events handled, want %d", n, total)
	}
	for p := range r.Partitions() {
		evs := c.events[p]
		if len(evs) == 0 {
			t.Errorf("partition %d: nothing handled", p)
		}
		next := map[string]int{} // device -> next body number
		for i, e := range evs {
			if e.Partition != p || e.SequenceNumber != uint64(i) {
				t.Fatalf("partition %d, event %d: partition %d sequence %d", p, i, e.Partition, e.SequenceNumber)
			}
			d, _, _ := strings.Cut(string(e.Message.Body), "-")
			if want := fmt.Sprintf("%s-%d", d, next[d]); string(e.Message.Body) != want {
				t.Fatalf("partition %d, event %d: %q, want %q", p, i, e.Message.Body, want)
			}
			next[d]++
		}
		got, ok, err := r.CheckpointOf(t.Context(), hub.DefaultConsumerGroup, p)
		if err != nil || !ok || got != uint64(len(evs)) {
			t.Errorf("partition %d: checkpoint %d, %v, %v; want %d", p, got, ok, err, len(evs))
		}
	}
}

func TestProcessCheckpointsSurviveRestart(t *testing.T) {
	o := rigOptions{}
	r := newRig(t, o)
	if err := r.CreateConsumerGroup(t.Context(), "g"); err != nil {
		t.Fatal(err)
	}
	const per = 10
	ingest(t, r.Hub, processDevices, per)

	// One event at a time; the handler fails on b-5.
	errBoom := errors.New("boom")
	first := newCollector()
	err := process(t, t.Context(), r.Hub, "g", hub.ProcessOptions{MaxBatch: 1}, func(_ context.Context, p int, evs []hub.Event) error {
		if string(evs[0].Message.Body) == "b-5" {
			return errBoom
		}
		first.add(p, evs)
		return nil
	})()
	if !errors.Is(err, errBoom) {
		t.Fatalf("Process = %v, want the handler's error", err)
	}
	handled := first.bodies()
	if handled["b-5"] || handled["b-6"] {
		t.Fatalf("b-5 failed, yet the handler saw %v", handled)
	}

	r = r.restart(t, o)
	ingest(t, r.Hub, []string{"e"}, 3) // new events are read as well
	second := newCollector()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := process(t, ctx, r.Hub, "g", hub.ProcessOptions{}, func(_ context.Context, p int, evs []hub.Event) error {
		second.add(p, evs)
		return nil
	})
	want := per*len(processDevices) + 3 - len(handled)
	poll.Until(t, "the events not handled before the restart", func() bool { return second.count() >= want })
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Process after cancel = %v, want nil", err)
	}
	again := second.bodies()
	for b := range again {
		if handled[b] {
			t.Errorf("%s was handled before the restart, and again after it", b)
		}
	}
	if !again["b-5"] || !again["e-2"] || len(again) != want {
		t.Errorf("after the restart %d events were handled (b-5: %v, e-2: %v), want %d", len(again), again["b-5"], again["e-2"], want)
	}
}

func TestProcessLatestWithoutCheckpoints(t *testing.T) {
	r := newRig(t, rigOptions{})
	ingest(t, r.Hub, []string{"a"}, 3) // before Process: not read
	p := r.Partition("a")
	c := newCollector()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := process(t, ctx, r.Hub, hub.DefaultConsumerGroup, hub.ProcessOptions{Start: hub.Latest(), NoCheckpoint: true}, func(_ context.Context, p int, evs []hub.Event) error {
		c.add(p, evs)
		return nil
	})
	// Process's start is not observable: send until something arrives.
	poll.Until(t, "an event sent after Process started", func() bool {
		ingest(t, r.Hub, []string{"a"}, 1)
		return c.count() > 0
	})
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Process after cancel = %v, want nil", err)
	}
	for _, e := range c.events[p] {
		if e.SequenceNumber < 3 {
			t.Errorf("event %d, sent before Process started, was handled", e.SequenceNumber)
		}
	}
	if _, ok, err := r.CheckpointOf(t.Context(), hub.DefaultConsumerGroup, p); ok || err != nil {
		t.Errorf("CheckpointOf = %v, %v with NoCheckpoint; want none", ok, err)
	}
}

func TestProcessRefusesBadArguments(t *testing.T) {
	r := newRig(t, rigOptions{})
	ok := func(context.Context, int, []hub.Event) error { return nil }
	cases := []struct {
		name   string
		group  string
		opts   hub.ProcessOptions
		handle func(context.Context, int, []hub.Event) error
		want   error
	}{
		{"unknown group", "nope", hub.ProcessOptions{}, ok, hub.ErrConsumerGroupNotFound},
		{"nil handle", hub.DefaultConsumerGroup, hub.ProcessOptions{}, nil, hubkit.ErrArgumentInvalid},
		{"negative MaxBatch", hub.DefaultConsumerGroup, hub.ProcessOptions{MaxBatch: -1}, ok, hubkit.ErrArgumentInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := r.Process(ctxFor(t, 10*time.Second), c.group, c.opts, c.handle); !errors.Is(err, c.want) {
				t.Fatalf("Process = %v, want %v", err, c.want)
			}
		})
	}
	t.Run("ctx ended before the start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.Process(ctx, "devhub-or-any", hub.ProcessOptions{}, ok); err != nil {
			t.Fatalf("Process with an ended ctx = %v, want nil", err)
		}
	})
	t.Run("closed hub", func(t *testing.T) {
		r.close(t)
		if err := r.Process(ctxFor(t, 10*time.Second), hub.DefaultConsumerGroup, hub.ProcessOptions{}, ok); !errors.Is(err, hubkit.ErrClosed) {
			t.Fatalf("Process = %v, want ErrClosed", err)
		}
	})
}

func TestProcessEndsWhenTheHubCloses(t *testing.T) {
	r := newRig(t, rigOptions{})
	wait := process(t, t.Context(), r.Hub, hub.DefaultConsumerGroup, hub.ProcessOptions{}, func(context.Context, int, []hub.Event) error { return nil })
	r.close(t)
	if err := wait(); !errors.Is(err, hubkit.ErrClosed) {
		t.Fatalf("Process = %v, want ErrClosed", err)
	}
}

// Process reads every partition as a consumer group and checkpoints what
// the handler accepted, so that a restart goes on where it stopped.
func ExampleHub_Process() {
	dir, err := os.MkdirTemp("", "hubkit-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	h, err := hub.New(hub.Config{HostName: "myhub.example.com", Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := h.Start(context.Background()); err != nil {
		fmt.Println(err, h.Close())
		return
	}
	defer h.Close()

	id := auth.Identity{DeviceID: "thermostat"}
	for _, body := range []string{"21.5", "21.7", "22.0"} {
		done := make(chan error, 1)
		h.Ingest(context.Background(), id, &hubkit.Message{Body: []byte(body)}, func(err error) { done <- err })
		if err := <-done; err != nil {
			fmt.Println(err)
			return
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := 0
	err = h.Process(ctx, hub.DefaultConsumerGroup, hub.ProcessOptions{}, func(ctx context.Context, partition int, events []hub.Event) error {
		mu.Lock() // handle runs on one goroutine per partition
		defer mu.Unlock()
		for _, e := range events {
			fmt.Println(e.SequenceNumber, e.Message.System.ConnectionDeviceID, string(e.Message.Body))
			if seen++; seen == 3 {
				cancel() // enough: Process returns nil
			}
		}
		return nil
	})
	fmt.Println("process:", err)
	next, _, err := h.CheckpointOf(context.Background(), hub.DefaultConsumerGroup, h.Partition("thermostat"))
	fmt.Println("checkpoint:", next, err)
	// Output:
	// 0 thermostat 21.5
	// 1 thermostat 21.7
	// 2 thermostat 22.0
	// process: <nil>
	// checkpoint: 3 <nil>
}
