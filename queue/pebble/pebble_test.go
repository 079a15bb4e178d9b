package pebble_test

import (
	"testing"
	"time"

	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
	"github.com/hubkit/hubkit/queue/queuetest"
)

func TestConformance(t *testing.T) {
	queuetest.Run(t, queuetest.Harness{
		Persistent: true,
		Open: func(t *testing.T, dir string, now func() time.Time) queue.DurableQueue {
			s, err := pebble.Open(dir, pebble.Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}
