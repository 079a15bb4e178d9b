package mqtt_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/queue/memory"
)

// gatedHub holds every Ingest's done callback until gate is closed.
type gatedHub struct {
	*brokertest.Hub
	gate    chan struct{}
	ingests atomic.Int64
}

func (h *gatedHub) Ingest(ctx context.Context, id auth.Identity, msg *hubkit.Message, done func(error)) {
	h.ingests.Add(1)
	h.Hub.Ingest(ctx, id, msg, func(err error) {
		go func() {
			<-h.gate
			done(err)
		}()
	})
}

func TestShutdownWaitsForPendingPubacks(t *testing.T) {
	devices := &brokertest.Devices{}
	devices.Add("dev-1", "", testKey)
	store := memory.New(memory.Options{})
	defer store.Close()
	bh := brokertest.New(devices, store)
	defer bh.Close()
	hub := &gatedHub{Hub: bh, gate: make(chan struct{})}
	b, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", HostName: testHost, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), hub); err != nil {
		t.Fatal(err)
	}
	addr := b.TCPAddr()
	r := connectRaw(t, &env{b: b}, "dev-1", true)
	r.send(publishPacket("devices/dev-1/messages/events/", 1, 5, []byte("pending")))
	poll(t, "the message handed to the hub", func() bool { return hub.ingests.Load() == 1 })

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- b.Shutdown(ctx)
	}()
	poll(t, "the listener closed", func() bool {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(hub.gate) // the message becomes durable only now
	if pk := r.mustRead(packets.Puback); pk.PacketID != 5 {
		t.Fatalf("PUBACK for %d", pk.PacketID)
	}
	r.closed()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := b.Start(context.Background(), hub); err != hubkit.ErrClosed {
		t.Fatalf("Start after Shutdown: %v", err)
	}
}
