package hub_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/queue"
)

// BenchmarkIngest measures device-to-cloud throughput through the
// committer onto Pebble on disk: 64 devices with up to 16 messages each in
// flight, 256-byte bodies, each acknowledged only once durable.
func BenchmarkIngest(b *testing.B) {
	r := newRig(b, rigOptions{})
	b.SetBytes(256)
	b.ResetTimer()
	ingestLoad(b, r.Hub)
}

// ingestLoad sends b.N messages or a few more, 256-byte bodies, from 64
// devices keeping up to 16 in flight each, and returns how many it sent
// once all are acknowledged.
func ingestLoad(b *testing.B, h *hub.Hub) int {
	body := make([]byte, 256)
	const devices, inflight = 64, 16
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
				h.Ingest(b.Context(), id, &hubkit.Message{Body: body}, func(err error) {
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
	return per * devices
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
