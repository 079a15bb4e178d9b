package hub_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/queue"
)

// BenchmarkIngest measures device-to-cloud throughput through the
// committer onto Pebble on disk: 64 devices with up to 16 messages each in
// flight, 256-byte bodies, each acknowledged only once durable.
func BenchmarkIngest(b *testing.B) {
	r := newRig(b, rigOptions{})
	body := make([]byte, 256)
	const devices, inflight = 64, 16
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/devices + 1
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := identity(fmt.Sprint("dev-", d))
			sem := make(chan struct{}, inflight)
			for range per {
				sem <- struct{}{}
				r.Ingest(b.Context(), id, &hubkit.Message{Body: body}, func(err error) {
					if err != nil {
						b.Error(err)
					}
					<-sem
				})
			}
			for range inflight {
				sem <- struct{}{}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkC2DCycle measures one cloud-to-device message's send, receive
// and complete with positive feedback, on Pebble on disk.
func BenchmarkC2DCycle(b *testing.B) {
	r := newRig(b, rigOptions{})
	createDevice(b, r, "dev")
	ctx := b.Context()
	b.ResetTimer()
	for range b.N {
		if _, err := r.SendC2D(ctx, "dev", &hubkit.Message{Body: []byte("x"), System: hubkit.SystemProperties{MessageID: "m", Ack: hubkit.AckPositive}}); err != nil {
			b.Fatal(err)
		}
		d, err := r.ReceiveC2D(ctx, "dev", queue.ReceiveOptions{Lock: time.Minute, NoWait: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Settle(ctx, "dev", d.LockToken, broker.Complete); err != nil {
			b.Fatal(err)
		}
	}
}
