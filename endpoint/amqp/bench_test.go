package amqp_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint/amqp"
)

// BenchmarkSend measures unsettled, pipelined sends of 256-byte messages
// to a queue of the broker at AMQP_TEST_URL, by batch size. Keep b.N
// modest (-benchtime 20000x): the queue keeps what it is sent.
func BenchmarkSend(b *testing.B) {
	url := brokerURL(b)
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("Batch=%d", size), func(b *testing.B) {
			ep := newEndpoint(b, amqp.Options{URL: url, Address: queueName()})
			batch := make([]*hubkit.Message, size)
			for i := range batch {
				batch[i] = &hubkit.Message{Body: make([]byte, 256), System: hubkit.SystemProperties{MessageID: "m", ConnectionDeviceID: "dev-1"}}
			}
			if _, err := ep.Send(context.Background(), batch[:1]); err != nil { // connect outside the timing
				b.Fatal(err)
			}
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				n, err := ep.Send(context.Background(), batch[:min(len(batch), b.N-sent)])
				if err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
