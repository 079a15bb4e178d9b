package endpoint_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/queue"
)

// BenchmarkDelivery measures the engine alone: messages of 256 bytes in 4
// partitions of an in-memory store, read, batched and delivered to an
// in-process Func endpoint, cursor commits included.
func BenchmarkDelivery(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("MaxBatch=%d", batch), func(b *testing.B) {
			s := newStore(b, nil)
			var n atomic.Int64
			all := make(chan struct{})
			ep := endpoint.Func("bench", func(ctx context.Context, msgs []*hubkit.Message) (int, error) {
				if n.Add(int64(len(msgs))) == int64(b.N) {
					close(all)
				}
				return len(msgs), nil
			})
			d, err := endpoint.NewDelivery(endpoint.DeliveryConfig{Name: "bench", Endpoint: ep, Streams: s, Partitions: 4,
				MaxBatch: batch, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			entries := make([]queue.Entry, 0, 1000)
			for i := range cap(entries) {
				entries = append(entries, queue.Entry{Stream: "bench", Partition: i % 4, Message: &hubkit.Message{Body: make([]byte, 256)}})
			}
			// The store is filled first: the benchmark times the engine, not the fake store.
			for sent := 0; sent < b.N; sent += len(entries) {
				if _, err := s.Append(context.Background(), entries[:min(len(entries), b.N-sent)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			done := make(chan error, 1)
			go func() { done <- d.Run(context.Background()) }()
			<-all
			b.StopTimer()
			d.Close()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
