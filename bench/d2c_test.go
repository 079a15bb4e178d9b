package bench_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/hub"
)

const (
	d2cDevices  = 100 // publishing devices
	d2cInflight = 10  // unacknowledged QoS 1 messages per device
	d2cSize     = 256 // payload bytes
)

// BenchmarkD2C measures device-to-cloud telemetry end to end: 100 devices
// publish 256-byte messages at QoS 1 over MQTT, 10 in flight each, and the
// run ends when every message is acknowledged and read by the consumer.
//
//   - mochi: plain mochi-mqtt, the devices publish and one client
//     subscribed at QoS 1 to their topics receives. mochi drops what
//     overflows a client's outbound buffer, now and then even with the
//     deep buffers given here: it reports those as lost, and its rate
//     counts the messages that arrived, until the last one did.
//   - hubkit: a whole hub on Pebble, which fsyncs before every PUBACK; a
//     consumer reads the $Default consumer group of every partition of the
//     built-in endpoint. It reports its rate as a ratio to mochi's last
//     run, and fails if a message is lost.
//   - hubkit-half-peak: the same, with the devices paced to half the
//     hubkit rate just measured, reporting publish-to-consumer latency.
//
// b.N messages go through in each.
func BenchmarkD2C(b *testing.B) {
	s := newSink()
	var run atomic.Uint64

	maddr := startMochi(b)
	mpubs := make([]*client, d2cDevices)
	for i := range mpubs {
		c, err := dial(maddr, deviceID(i), "", "")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.close)
		mpubs[i] = c
	}
	sub, err := dial(maddr, "subscriber", "", "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sub.close)
	if err := sub.subscribe("devices/+/messages/events/#"); err != nil {
		b.Fatal(err)
	}
	go subscriberLoop(sub, s) // ends when sub closes

	h, haddr := startHub(b, d2cDevices, nil)
	hpubs := connectDevices(b, haddr, d2cDevices)
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() { consumed <- consume(ctx, h, s) }()
	b.Cleanup(func() {
		cancel()
		if err := <-consumed; err != nil {
			b.Errorf("consumer: %v", err)
		}
	})

	var mochiRate, hubRate float64
	b.Run("mochi", func(b *testing.B) {
		mochiRate = drive(b, mpubs, s, run.Add(1), 0, false, true)
		b.ReportMetric(mochiRate, "msgs/s")
	})
	b.Run("hubkit", func(b *testing.B) {
		hubRate = drive(b, hpubs, s, run.Add(1), 0, false, false)
		b.ReportMetric(hubRate, "msgs/s")
		if mochiRate > 0 {
			b.ReportMetric(hubRate/mochiRate, "x-mochi")
		}
	})
	b.Run("hubkit-half-peak", func(b *testing.B) {
		if hubRate == 0 {
			b.Fatal("run the hubkit sub-benchmark first: it measures the peak")
		}
		rate := drive(b, hpubs, s, run.Add(1), hubRate/2, true, false)
		p50, p99 := s.percentiles()
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	})
}

// consume reads every partition of the built-in endpoint from its end on,
// as a consumer of the $Default group that never checkpoints, until ctx
// ends.
func consume(ctx context.Context, h *hub.Hub, s *sink) error {
	opts := hub.ProcessOptions{Start: hub.Latest(), MaxBatch: 1024, NoCheckpoint: true}
	return h.Process(ctx, hub.DefaultConsumerGroup, opts, func(_ context.Context, _ int, evs []hub.Event) error {
		for _, ev := range evs {
			s.take(ev.Message.Body)
		}
		return nil
	})
}

// subscriberLoop receives QoS 1 messages, acknowledging those read
// together in one write, until the connection closes.
func subscriberLoop(c *client, s *sink) {
	var acks []byte
	for {
		typ, flags, body, err := c.read()
		if err != nil {
			return
		}
		if typ != packets.Publish {
			continue
		}
		_, pid, payload, err := publishBody(flags, body)
		if err != nil {
			return
		}
		s.take(payload)
		acks = append(acks, puback(pid)...)
		if c.r.Buffered() == 0 {
			if c.write(acks) != nil {
				return
			}
			acks = acks[:0]
		}
	}
}

// drive sends b.N messages spread over pubs, each keeping d2cInflight
// unacknowledged, at rate messages per second in all (0: as fast as
// acknowledgements allow), and returns the end-to-end rate: messages per
// second from the first send until the consumer saw the last. It fails
// the benchmark if a message is lost, unless mayLose: then it reports the
// lost messages and the rate of those that arrived.
func drive(b *testing.B, pubs []*client, s *sink, run uint64, rate float64, latencies, mayLose bool) float64 {
	b.Helper()
	n := b.N
	done := s.reset(run, n, latencies)
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(len(pubs)) / rate * float64(time.Second))
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for k, c := range pubs {
		count := n / len(pubs)
		if k < n%len(pubs) {
			count++
		}
		if count == 0 {
			continue
		}
		topic := "devices/" + deviceID(k) + "/messages/events/"
		window := make(chan struct{}, d2cInflight)
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			payload := make([]byte, d2cSize)
			var buf []byte
			var tick *time.Ticker
			if interval > 0 {
				time.Sleep(interval * time.Duration(k) / time.Duration(len(pubs))) // spread the devices over the interval
				tick = time.NewTicker(interval)
				defer tick.Stop()
			}
			for j := range count {
				if tick != nil {
					<-tick.C
				}
				window <- struct{}{}
				s.payload(payload, run, j*len(pubs)+k)
				buf = appendPublish(buf[:0], topic, uint16(j%65535+1), payload)
				if err := c.write(buf); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			for range count {
				typ, _, _, err := c.read()
				if err != nil || typ != packets.Puback {
					b.Errorf("PUBACK: packet type %d, %v", typ, err)
					return
				}
				<-window
			}
		}()
	}
	wg.Wait()
	wait := 30 * time.Second
	if mayLose {
		wait = 2 * time.Second // what is still on its way arrives by then
	}
	select {
	case <-done:
	case <-time.After(wait):
	}
	b.StopTimer()
	unique, dups, last := s.result()
	elapsed := last.Sub(start)
	switch {
	case unique == n:
	case mayLose:
		b.ReportMetric(float64(n-unique), "lost")
	default:
		b.Fatalf("the consumer saw %d of %d acknowledged messages (%d duplicates)", unique, n, dups)
	}
	if dups > 0 {
		b.ReportMetric(float64(dups), "dups")
	}
	return float64(unique) / elapsed.Seconds()
}
