package memory_test

import (
	"testing"
	"time"

	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
	"github.com/hubkit/hubkit/queue/queuetest"
)

func TestConformance(t *testing.T) {
	queuetest.Run(t, queuetest.Harness{
		Open: func(t *testing.T, dir string, now func() time.Time) queue.DurableQueue {
			return memory.New(memory.Options{Now: now})
		},
	})
}
