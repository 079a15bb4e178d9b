package bench_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/sync/errgroup"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/hub"
)

// benchHost is the host name of the hubs under test.
const benchHost = "bench.hubkit.example"

// benchKey is the symmetric key of every device.
var benchKey = base64.StdEncoding.EncodeToString([]byte("hubkit benchmark device key 32 b"))

func deviceID(i int) string { return fmt.Sprintf("dev-%04d", i) }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startHub starts a whole hub as a user runs it: Pebble in a temporary
// directory (every PUBACK follows an fsync), MQTT on 127.0.0.1:0, the
// default router and authenticator, with n devices registered. edit may
// change the configuration. Cleanup closes it.
func startHub(b *testing.B, n int, edit func(*hub.Config)) (*hub.Hub, string) {
	b.Helper()
	mq, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", HostName: benchHost, Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	cfg := hub.Config{HostName: benchHost, Dir: b.TempDir(), Brokers: []broker.Broker{mq}, Logger: discard()}
	if edit != nil {
		edit(&cfg)
	}
	h, err := hub.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		b.Fatal(err, h.Close())
	}
	b.Cleanup(func() {
		if err := h.Close(); err != nil {
			b.Error(err)
		}
	})
	var g errgroup.Group
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			_, err := h.CreateDevice(ctx, auth.Device{DeviceID: deviceID(i), Status: auth.StatusEnabled,
				Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: benchKey, SecondaryKey: benchKey}}})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return h, mq.TCPAddr().String()
}

// connectDevices connects n devices to a hub, 32 at a time.
func connectDevices(b *testing.B, addr string, n int) []*client {
	b.Helper()
	clients := make([]*client, n)
	var g errgroup.Group
	g.SetLimit(32)
	for i := range clients {
		g.Go(func() error {
			c, err := dialDevice(addr, benchHost, deviceID(i), benchKey)
			clients[i] = c
			return err
		})
	}
	err := g.Wait()
	b.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return clients
}

// startMochi starts plain mochi-mqtt with its allow-all authentication
// and nothing else: no storage, no hooks.
func startMochi(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// Deep enough buffers that plain mochi keeps every message for a
	// subscriber that falls behind, instead of dropping it: a baseline
	// that loses messages measures nothing.
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 1 << 20
	caps.MaximumInflight = 65535
	s := mochi.New(&mochi.Options{Logger: discard(), Capabilities: caps})
	if err := s.AddHook(new(allowAll), nil); err != nil {
		b.Fatal(err)
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		b.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return addr
}

// allowAll is mochi's allow-all hook (hooks/auth.AllowHook), written out
// to spare the benchmark its YAML dependency.
type allowAll struct{ mochi.HookBase }

func (h *allowAll) ID() string { return "allow-all" }
func (h *allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (h *allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

// A sink counts the messages of one run as the consumer sees them. The
// payload of each starts with the run number, the message's index in the
// run and its send time, little-endian.
type sink struct {
	base time.Time // send times are durations since base

	mu     sync.Mutex // guards the fields below
	run    uint64
	seen   []bool
	unique int
	dups   int
	last   time.Duration   // since base, when the newest unique message was seen
	lat    []time.Duration // nil unless latencies are recorded
	done   chan struct{}   // closed when every message of the run was seen
}

func newSink() *sink { return &sink{base: time.Now()} }

// reset starts run, of n messages.
func (s *sink) reset(run uint64, n int, latencies bool) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run, s.seen, s.unique, s.dups = run, make([]bool, n), 0, 0
	s.lat = nil
	if latencies {
		s.lat = make([]time.Duration, 0, n)
	}
	s.done = make(chan struct{})
	return s.done
}

func (s *sink) payload(dst []byte, run uint64, i int) {
	binary.LittleEndian.PutUint64(dst[0:], run)
	binary.LittleEndian.PutUint64(dst[8:], uint64(i))
	binary.LittleEndian.PutUint64(dst[16:], uint64(time.Since(s.base)))
}

// take records a message the consumer received.
func (s *sink) take(p []byte) {
	if len(p) < 24 {
		return
	}
	now := time.Since(s.base)
	run, i, sent := binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:]), time.Duration(binary.LittleEndian.Uint64(p[16:]))
	s.mu.Lock()
	defer s.mu.Unlock()
	if run != s.run || i >= uint64(len(s.seen)) {
		return // a duplicate of an earlier run
	}
	if s.seen[i] {
		s.dups++
		return
	}
	s.seen[i] = true
	s.unique++
	s.last = now
	if s.lat != nil {
		s.lat = append(s.lat, now-sent)
	}
	if s.unique == len(s.seen) {
		close(s.done)
	}
}

// result returns how many messages were seen, the duplicates, and when
// the last one was seen.
func (s *sink) result() (unique, dups int, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unique, s.dups, s.base.Add(s.last)
}

// percentiles returns the p50 and p99 latencies of the run.
func (s *sink) percentiles() (p50, p99 time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0, 0
	}
	l := slices.Clone(s.lat)
	slices.Sort(l)
	return l[len(l)/2], l[len(l)*99/100]
}
