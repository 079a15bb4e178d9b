package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/groupcommit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
	"github.com/hubkit/hubkit/queue/pebble"
)

// syncOnly hides a store's AppendAsync, so that the plain Append path runs.
type syncOnly struct{ queue.Streams }

// counting counts Append calls.
type counting struct {
	queue.Streams
	mu    sync.Mutex
	calls int
}

func (c *counting) Append(ctx context.Context, e []queue.Entry) ([]queue.Position, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.Streams.Append(ctx, e)
}

func stores(t *testing.T) map[string]queue.Streams {
	p, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := memory.New(memory.Options{})
	t.Cleanup(func() { p.Close(); m.Close() })
	return map[string]queue.Streams{"pebble": p, "pebble-sync": syncOnly{p}, "memory": m}
}

// TestOrderAndDurability submits from many goroutines: every callback is
// called once, in Submit order per goroutine, and only once its entry can
// be read back.
func TestOrderAndDurability(t *testing.T) {
	for name, q := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := groupcommit.New(q, groupcommit.Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			run := make(chan error, 1)
			go func() { run <- c.Run(ctx) }()
			const writers, each = 8, 200
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					next := 0
					var mu sync.Mutex
					var done sync.WaitGroup
					for i := range each {
						done.Add(1)
						m := &hubkit.Message{Body: []byte(fmt.Sprint(w, i))}
						c.Submit(ctx, []queue.Entry{{Stream: "s", Partition: w, Message: m}}, func(err error) {
							defer done.Done()
							mu.Lock()
							defer mu.Unlock()
							if err != nil || next != i {
								t.Errorf("writer %d: callback %d (err %v), want %d", w, i, err, next)
							}
							next++
						})
					}
					done.Wait()
					recs, err := q.Read(ctx, "s", w, 0, each, nil)
					if err != nil || len(recs) != each {
						t.Errorf("writer %d: read %d records (%v), want %d", w, len(recs), err, each)
					}
				}()
			}
			wg.Wait()
			c.Stop()
			if err := <-run; err != nil {
				t.Fatal(err)
			}
			c.Submit(ctx, nil, func(err error) {
				if !errors.Is(err, hubkit.ErrClosed) {
					t.Errorf("Submit after Stop: %v, want ErrClosed", err)
				}
			})
		})
	}
}

// TestGroups checks that waiting submissions share writes.
func TestGroups(t *testing.T) {
	q := &counting{Streams: memory.New(memory.Options{})}
	c := groupcommit.New(q, groupcommit.Options{})
	var wg sync.WaitGroup
	for i := range 100 { // all waiting before Run starts
		wg.Add(1)
		c.Submit(context.Background(), []queue.Entry{{Stream: "s", Message: &hubkit.Message{Body: []byte{byte(i)}}}}, func(error) { wg.Done() })
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	wg.Wait()
	if q.calls != 1 {
		t.Errorf("100 waiting submissions took %d Appends, want 1", q.calls)
	}
}

// TestRunGone: once Run returned, Submit ends at once with ErrClosed; a
// Submit that was blocked on a full backlog while Run returned ends either
// so, through Fail, or with Run's ctx error when Run took it.
func TestRunGone(t *testing.T) {
	c := groupcommit.New(memory.New(memory.Options{}), groupcommit.Options{Backlog: 1})
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	c.Submit(ctx, nil, func(err error) { left <- err }) // fills the backlog
	blocked := make(chan error, 1)
	go c.Submit(context.Background(), nil, func(err error) { blocked <- err })
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	after := make(chan error, 1)
	c.Submit(context.Background(), nil, func(err error) { after <- err })
	select {
	case err := <-after:
		if !errors.Is(err, hubkit.ErrClosed) {
			t.Errorf("Submit after Run returned: %v, want ErrClosed", err)
		}
	default:
		t.Error("Submit after Run returned did not end at once")
	}
	c.Stop()
	c.Fail(hubkit.ErrClosed)
	for name, ch := range map[string]chan error{"blocked": blocked, "left": left} {
		select {
		case err := <-ch:
			if err != nil && !errors.Is(err, hubkit.ErrClosed) && !errors.Is(err, context.Canceled) {
				t.Errorf("%s submission: %v, want nil, ErrClosed or Run's ctx error", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s submission never ended after Run returned, Stop and Fail", name)
		}
	}
}
