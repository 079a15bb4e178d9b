package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
	"github.com/hubkit/hubkit/queue/queuetest"
)

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name  string
		sweep time.Duration
	}{{"BackgroundSweep", 10 * time.Millisecond}, {"NoBackgroundSweep", -1}} {
		t.Run(c.name, func(t *testing.T) {
			queuetest.Run(t, queuetest.Harness{
				Open: func(t *testing.T, dir string, now func() time.Time) queue.DurableQueue {
					return memory.New(memory.Options{Now: now, SweepInterval: c.sweep})
				},
			})
		})
	}
}

func BenchmarkAppendRead(b *testing.B) {
	ctx := context.Background()
	s := memory.New(memory.Options{})
	defer s.Close()
	entries := make([]queue.Entry, 16)
	for i := range entries {
		entries[i] = queue.Entry{Stream: "s", Message: &hubkit.Message{Body: make([]byte, 256)}}
	}
	var recs []queue.Record
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(ctx, entries); err != nil {
			b.Fatal(err)
		}
		var err error
		if recs, err = s.Read(ctx, "s", 0, uint64(i*len(entries)), len(entries), recs[:0]); err != nil || len(recs) != len(entries) {
			b.Fatal(len(recs), err)
		}
	}
	b.ReportMetric(float64(b.N*len(entries))/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkEnqueueReceiveComplete(b *testing.B) {
	ctx := context.Background()
	s := memory.New(memory.Options{})
	defer s.Close()
	m := &hubkit.Message{Body: make([]byte, 256)}
	opts := queue.ReceiveOptions{Lock: time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Enqueue(ctx, "d", m, queue.EnqueueOptions{Journal: true}); err != nil {
			b.Fatal(err)
		}
		d, err := s.Receive(ctx, "d", opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Complete(ctx, "d", d.LockToken); err != nil {
			b.Fatal(err)
		}
	}
}
