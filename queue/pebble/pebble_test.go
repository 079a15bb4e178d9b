package pebble_test

import (
	"testing"
	"time"

	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
	"github.com/hubkit/hubkit/queue/queuetest"
)

// TestConformance runs the suite with device-queue messages kept in memory
// (the default), with none kept, so that every delivery reads its message
// back from Pebble, and with room for only some of them.
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name   string
		memory int64
	}{{"default", 0}, {"no-queue-memory", -1}, {"tiny-queue-memory", 150}} {
		t.Run(c.name, func(t *testing.T) {
			queuetest.Run(t, queuetest.Harness{
				Persistent: true,
				Open: func(t *testing.T, dir string, now func() time.Time) queue.DurableQueue {
					s, err := pebble.Open(dir, pebble.Options{Now: now, QueueMemory: c.memory})
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
			})
		})
	}
}
