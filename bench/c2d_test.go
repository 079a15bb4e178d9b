package bench_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/hub"
)

const (
	c2dDevices = 1000 // connected devices
	c2dSenders = 1000 // service goroutines calling SendC2D
)

// BenchmarkC2D measures cloud-to-device messages with feedback: 1,000
// devices are connected over MQTT and subscribed at QoS 1; 1,000
// goroutines (c2dSenders) call SendC2D with ack=positive, round robin over
// the devices; the devices acknowledge each message at once, which
// completes it; a service goroutine reads the feedback. It reports sent, delivered and completed
// (Success feedback read) messages per second, each counted from the
// first send, and fails unless every message is delivered and completed.
// A send refused because the device queue is full (403004) is retried.
//
// The hub runs with FeedbackBatchDelay = 10 ms instead of the default 15 s.
// Under load, feedback batches fill to FeedbackBatchSize (64 records) long
// before either delay; only the last, partial batch of a run waits for it,
// and with 15 s completed/s would measure that wait, not the hub.
func BenchmarkC2D(b *testing.B) {
	h, addr := startHub(b, c2dDevices, func(c *hub.Config) { c.FeedbackBatchDelay = 10 * time.Millisecond })
	devices := connectDevices(b, addr, c2dDevices)
	var delivered, completed atomic.Int64
	for i, c := range devices {
		if err := c.subscribe("devices/" + deviceID(i) + "/messages/devicebound/#"); err != nil {
			b.Fatal(err)
		}
		go deviceLoop(c, &delivered) // ends when the connection closes
	}
	ctx, cancel := context.WithCancel(context.Background())
	feedbackDone := make(chan struct{})
	go func() {
		defer close(feedbackDone)
		for {
			fb, err := h.ReceiveFeedback(ctx, false)
			if err != nil {
				return
			}
			for _, r := range fb.Records {
				if r.StatusCode == "Success" {
					completed.Add(1)
				}
			}
			if err := h.CompleteFeedback(ctx, fb.LockToken); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-feedbackDone })

	var run atomic.Int64
	b.Run("1000-devices", func(b *testing.B) {
		run := run.Add(1)
		n := int64(b.N)
		delivered.Store(0)
		completed.Store(0)
		var full, next atomic.Int64
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range c2dSenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k := next.Add(1) - 1
					if k >= n {
						return
					}
					id := "m-" + strconv.FormatInt(run, 10) + "-" + strconv.FormatInt(k, 10)
					m := &hubkit.Message{Body: []byte(id), System: hubkit.SystemProperties{MessageID: id, Ack: hubkit.AckPositive}}
					for {
						_, err := h.SendC2D(ctx, deviceID(int(k%c2dDevices)), m)
						if err == nil {
							break
						}
						if !errors.Is(err, hubkit.ErrDeviceMaximumQueueDepthExceeded) {
							b.Error(err)
							return
						}
						full.Add(1)
						time.Sleep(time.Millisecond) // the device's queue is full: let it drain
					}
				}
			}()
		}
		wg.Wait()
		sent := time.Since(start)
		deliveredAt := waitCount(&delivered, n, start)
		completedAt := waitCount(&completed, n, start)
		b.StopTimer()
		if d, c := delivered.Load(), completed.Load(); d < n || c < n {
			b.Fatalf("of %d messages sent, %d delivered and %d completed", n, d, c)
		}
		b.ReportMetric(float64(n)/sent.Seconds(), "sent/s")
		b.ReportMetric(float64(n)/deliveredAt.Seconds(), "delivered/s")
		b.ReportMetric(float64(n)/completedAt.Seconds(), "completed/s")
		b.ReportMetric(float64(full.Load()), "queue-full-retries")
	})
}

// waitCount waits until c reaches n, at most 60 s, and returns the time
// since start then.
func waitCount(c *atomic.Int64, n int64, start time.Time) time.Duration {
	deadline := time.Now().Add(60 * time.Second)
	for c.Load() < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	return time.Since(start)
}

// deviceLoop acknowledges every cloud-to-device message at once and
// counts it, until the connection closes.
func deviceLoop(c *client, delivered *atomic.Int64) {
	for {
		typ, flags, body, err := c.read()
		if err != nil {
			return
		}
		if typ != packets.Publish {
			continue
		}
		_, pid, _, err := publishBody(flags, body)
		if err != nil {
			return
		}
		delivered.Add(1)
		if c.write(puback(pid)) != nil {
			return
		}
	}
}
