package mqtt_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue/pebble"
)

// BenchmarkD2C measures QoS 1 telemetry through real sockets, 256-byte
// payloads, against a plain mochi-mqtt server (no storage, no hooks but
// allow-all auth) and against hubkit over queue/pebble, where every PUBACK
// follows an fsync, in the same run. b.N messages go to each.
func BenchmarkD2C(b *testing.B) {
	for _, s := range []struct{ devices, inflight int }{{16, 16}, {100, 10}, {1, 64}} {
		b.Run(fmt.Sprintf("%dx%d", s.devices, s.inflight), func(b *testing.B) {
			plain := startPlainMochi(b)
			hub := startPebbleHub(b)
			plainConns := loadClients(b, plain, s.devices)
			hubConns := loadClients(b, hub, s.devices)
			b.ResetTimer()
			// Alternate in rounds, so that both sides see the same load
			// from the rest of the machine.
			const rounds = 10
			var plainTime, hubTime time.Duration
			for r := range rounds {
				n := b.N / rounds
				if r < b.N%rounds {
					n++
				}
				plainTime += drive(b, plainConns, n, s.inflight)
				hubTime += drive(b, hubConns, n, s.inflight)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/plainTime.Seconds(), "mochi-msgs/s")
			b.ReportMetric(float64(b.N)/hubTime.Seconds(), "hubkit-msgs/s")
			b.ReportMetric(plainTime.Seconds()/hubTime.Seconds(), "ratio")
		})
	}
}

func startPlainMochi(b testing.TB) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(new(allowAll), nil); err != nil {
		b.Fatal(err)
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		b.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return addr
}

func startPebbleHub(b testing.TB) string {
	b.Helper()
	q, err := pebble.Open(b.TempDir(), pebble.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	devices := &brokertest.Devices{}
	for i := range 100 {
		devices.Add(fmt.Sprintf("dev-%d", i), "", testKey)
	}
	for i := range 2000 {
		devices.Add(fmt.Sprintf("idle-%d", i), "", testKey)
	}
	hub := brokertest.New(devices, q)
	br, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", HostName: testHost, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(context.Background(), hub); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		br.Close()
		hub.Close()
		q.Close()
	})
	return br.TCPAddr().String()
}

// allowAll is mochi's allow-all auth hook (hooks/auth.AllowHook), written
// out to spare the test its YAML dependency.
type allowAll struct{ mochi.HookBase }

func (h *allowAll) ID() string { return "allow-all" }
func (h *allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (h *allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

// loadConn is a lean MQTT 3.1.1 publisher.
type loadConn struct {
	c     net.Conn
	r     *bufio.Reader
	topic string
}

func loadClients(b *testing.B, addr string, n int) []*loadConn {
	b.Helper()
	conns := make([]*loadConn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		dev := fmt.Sprintf("dev-%d", i)
		lc := &loadConn{c: c, r: bufio.NewReader(c), topic: "devices/" + dev + "/messages/events/"}
		pk := connectPacket(dev, username(dev), token(dev, time.Hour), true)
		pk.ProtocolVersion = 4
		var buf bytesBuffer
		if err := pk.ConnectEncode(&buf.Buffer); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
		ack := make([]byte, 4)
		if _, err := io.ReadFull(lc.r, ack); err != nil || ack[0] != packets.Connack<<4 || ack[3] != 0 {
			b.Fatalf("CONNACK % x, %v", ack, err)
		}
		conns[i] = lc
	}
	return conns
}

// drive publishes total messages spread over conns, each keeping up to
// inflight unacknowledged, and returns how long it took.
func drive(b *testing.B, conns []*loadConn, total, inflight int) time.Duration {
	payload := make([]byte, 256)
	start := time.Now()
	var wg sync.WaitGroup
	for i, lc := range conns {
		n := total / len(conns)
		if i < total%len(conns) {
			n++
		}
		wg.Add(2)
		sem := make(chan struct{}, inflight)
		go func() { // writer
			defer wg.Done()
			for j := range n {
				sem <- struct{}{}
				pk := publishPacket(lc.topic, 1, uint16(j%60000+1), payload)
				pk.ProtocolVersion = 4
				var buf bytesBuffer
				if err := pk.PublishEncode(&buf.Buffer); err != nil {
					b.Error(err)
					return
				}
				if _, err := lc.c.Write(buf.Bytes()); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			ack := make([]byte, 4)
			for range n {
				if _, err := io.ReadFull(lc.r, ack); err != nil || ack[0] != packets.Puback<<4 {
					b.Errorf("PUBACK % x, %v", ack, err)
					return
				}
				<-sem
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkIdleConnection measures the memory each idle connected device
// costs: heap and stack growth after CONNECT of 1,000 raw TCP clients,
// divided by their number, on plain mochi-mqtt (default buffers) and on
// hubkit. The clients live in this process, so their sockets count too.
// Each iteration connects the clients, measures and disconnects them;
// -benchtime 1x is enough. The time per operation is that of connecting
// 1,000 clients and collecting garbage, not a figure of interest.
func BenchmarkIdleConnection(b *testing.B) {
	for _, side := range []struct {
		name  string
		start func(testing.TB) string
	}{{"mochi", startPlainMochi}, {"hubkit", startPebbleHub}} {
		b.Run(side.name, func(b *testing.B) {
			const n = 1000
			addr := side.start(b)
			var heap, stack, goroutines float64
			for range b.N {
				g0 := runtime.NumGoroutine()
				heap0, stack0 := memInUse()
				conns := idleClients(b, addr, n)
				heap1, stack1 := memInUse()
				heap += float64(heap1-heap0) / n / 1024
				stack += float64(stack1-stack0) / n / 1024
				goroutines += float64(runtime.NumGoroutine()-g0) / n
				for _, c := range conns {
					c.Close()
				}
				poll.Until(b, "the connections to end", func() bool { return runtime.NumGoroutine() <= g0 })
			}
			start := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
			metrics.Read(start)
			runs := float64(b.N)
			b.ReportMetric((heap+stack)/runs, "KiB/conn")
			b.ReportMetric(heap/runs, "heap-KiB/conn")
			b.ReportMetric(stack/runs, "stack-KiB/conn")
			b.ReportMetric(goroutines/runs, "goroutines/conn")
			b.ReportMetric(float64(start[0].Value.Uint64())/1024, "start-stack-KiB")
		})
	}
}

// memInUse returns heap and stack bytes in use after a few collections,
// which also shrink the stacks that grew while connecting (the runtime
// halves an idle goroutine's oversized stack at each GC), as happens to a
// device that stays connected.
func memInUse() (heap, stack int64) {
	for range 5 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse), int64(m.StackInuse)
}

// idleClients connects n clients as idle-0, idle-1, ... and leaves them idle.
func idleClients(b testing.TB, addr string, n int) []net.Conn {
	b.Helper()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		dev := fmt.Sprintf("idle-%d", i)
		pk := connectPacket(dev, username(dev), token(dev, time.Hour), true)
		pk.ProtocolVersion = 4
		var buf bytesBuffer
		if err := pk.ConnectEncode(&buf.Buffer); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
		ack := make([]byte, 4)
		if _, err := io.ReadFull(c, ack); err != nil || ack[3] != 0 {
			b.Fatalf("CONNACK % x, %v", ack, err)
		}
		conns = append(conns, c)
	}
	return conns
}
