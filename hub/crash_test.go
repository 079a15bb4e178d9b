package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue/pebble"
)

// ackSet records what the hub acknowledged.
type ackSet struct {
	mu  sync.Mutex
	d2c map[string]bool // bodies whose done callback returned nil
	c2d map[string]bool // message ids SendC2D accepted
}

func (a *ackSet) snapshot() (d2c, c2d map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d2c, c2d = map[string]bool{}, map[string]bool{}
	for k := range a.d2c {
		d2c[k] = true
	}
	for k := range a.c2d {
		c2d[k] = true
	}
	return d2c, c2d
}

// TestPowerLossKeepsAcknowledged runs device-to-cloud and cloud-to-device
// traffic through a hub on a crashable in-memory file system, takes a copy
// that keeps only synced data at a random moment, and checks that a hub
// opened on the copy has everything acknowledged before it.
func TestPowerLossKeepsAcknowledged(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			q, err := pebble.Open("db", pebble.Options{FS: fs, Logger: discard()})
			if err != nil {
				t.Fatal(err)
			}
			h, err := hub.New(hub.Config{HostName: testHost, Queue: q, Logger: discard()})
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Start(t.Context()); err != nil {
				t.Fatal(errors.Join(err, h.Close(), q.Close()))
			}
			if _, err := h.CreateDevice(t.Context(), auth.Device{DeviceID: "target"}); err != nil {
				t.Fatal(err)
			}
			acks := &ackSet{d2c: map[string]bool{}, c2d: map[string]bool{}}
			ctx, stop := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					id := identity(fmt.Sprint("dev-", w))
					for i := 0; ctx.Err() == nil; i++ {
						body := fmt.Sprintf("%d-%d", w, i)
						done := make(chan error, 1)
						h.Ingest(ctx, id, &hubkit.Message{Body: []byte(body)}, func(err error) { done <- err })
						if err := <-done; err == nil {
							acks.mu.Lock()
							acks.d2c[body] = true
							acks.mu.Unlock()
						}
					}
				})
			}
			wg.Go(func() {
				for i := 0; ctx.Err() == nil && i < 50; i++ {
					mid := fmt.Sprint("c2d-", i)
					if _, err := h.SendC2D(ctx, "target", &hubkit.Message{System: hubkit.SystemProperties{MessageID: mid}}); err == nil {
						acks.mu.Lock()
						acks.c2d[mid] = true
						acks.mu.Unlock()
					}
				}
			})
			poll.Until(t, "some acknowledgements", func() bool {
				acks.mu.Lock()
				defer acks.mu.Unlock()
				return len(acks.d2c) > 20 && len(acks.c2d) > 2
			})
			d2c, c2d := acks.snapshot() // all of it was durable before the clone
			crashed := fs.CrashClone(vfs.CrashCloneCfg{})
			stop()
			wg.Wait()
			if err := errors.Join(h.Close(), q.Close()); err != nil {
				t.Fatal(err)
			}

			q2, err := pebble.Open("db", pebble.Options{FS: crashed, Logger: discard()})
			if err != nil {
				t.Fatal(err)
			}
			h2, err := hub.New(hub.Config{HostName: testHost, Queue: q2, Logger: discard()})
			if err != nil {
				t.Fatal(err)
			}
			if err := h2.Start(t.Context()); err != nil {
				t.Fatal(errors.Join(err, h2.Close(), q2.Close()))
			}
			defer func() {
				if err := errors.Join(h2.Close(), q2.Close()); err != nil {
					t.Error(err)
				}
			}()
			rctx := ctxFor(t, 20*time.Second)
			for p := range h2.Partitions() {
				_, next, err := q2.Bounds(rctx, hub.EventsStream, p)
				if err != nil {
					t.Fatal(err)
				}
				for seq := uint64(0); seq < next; {
					evs, err := h2.Receive(rctx, hub.DefaultConsumerGroup, p, hub.AtSequence(seq, true), 1000)
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range evs {
						delete(d2c, string(e.Message.Body))
						seq = e.SequenceNumber + 1
					}
				}
			}
			if len(d2c) > 0 {
				t.Errorf("%d acknowledged device-to-cloud messages lost", len(d2c))
			}
			msgs, err := q2.Peek(rctx, "target", 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				delete(c2d, m.System.MessageID)
			}
			if len(c2d) > 0 {
				t.Errorf("acknowledged cloud-to-device messages lost: %v", c2d)
			}
			if _, err := h2.GetDevice(rctx, "target"); err != nil {
				t.Errorf("registry after the crash: %v", err)
			}
		})
	}
}
