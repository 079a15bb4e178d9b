package mqtt_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue/memory"
)

// TestPubacksWaitForDurability sends more QoS 1 messages on one connection
// than may await their PUBACK while the hub holds every commit: no PUBACK
// may go out before the messages are durable, the read loop must go on
// handing messages to the hub up to MaxInflight while commits are pending,
// stop there, and once the commits end every PUBACK must arrive in PUBLISH
// order.
func TestPubacksWaitForDurability(t *testing.T) {
	const maxInflight, sent = 64, 66
	devices := &brokertest.Devices{}
	devices.Add("dev-1", "", testKey)
	store := memory.New(memory.Options{})
	t.Cleanup(func() { store.Close() })
	bh := brokertest.New(devices, store)
	t.Cleanup(func() { bh.Close() })
	hub := &gatedHub{Hub: bh, gate: make(chan struct{})}
	b, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", HostName: testHost, MaxInflight: maxInflight, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), hub); err != nil {
		t.Fatal(err)
	}
	released := false
	t.Cleanup(func() {
		if !released {
			close(hub.gate)
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})

	r := connectRaw(t, &env{b: b}, "dev-1", true)
	for i := range sent {
		r.send(publishPacket("devices/dev-1/messages/events/", 1, uint16(i+1), []byte{byte(i)}))
	}
	poll.Until(t, "MaxInflight messages handed to the hub", func() bool { return hub.ingests.Load() == maxInflight })

	// Nothing is durable yet: no PUBACK may arrive.
	r.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read before the commits ended: %v, want a timeout (a PUBACK went out too early)", err)
	}
	if n := hub.ingests.Load(); n != maxInflight {
		t.Fatalf("%d messages handed to the hub with no PUBACK freed, want %d", n, maxInflight)
	}

	close(hub.gate)
	released = true
	for i := range sent {
		if pk := r.mustRead(packets.Puback); pk.PacketID != uint16(i+1) {
			t.Fatalf("PUBACK %d is for packet %d, want %d: PUBACKs must follow PUBLISH order", i, pk.PacketID, i+1)
		}
	}
	if n := hub.ingests.Load(); n != sent {
		t.Fatalf("%d messages handed to the hub, want %d", n, sent)
	}
}
