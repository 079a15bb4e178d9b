package mqtt_test

import (
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/internal/poll"
)

// connack connects device with a valid token and returns the CONNACK.
func connack(t *testing.T, e *env, device string, clean bool) (*raw, packets.Packet) {
	t.Helper()
	r := dial(t, e.b.TCPAddr())
	r.send(connectPacket(device, username(device), token(device, time.Hour), clean))
	ack := r.mustRead(packets.Connack)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}
	return r, ack
}

// TestSessionPresent checks CONNACK's Session Present against the session
// the broker keeps (mqtt.md §2.1, §6.1), after the MQTT engine has
// forgotten the client.
func TestSessionPresent(t *testing.T) {
	e := start(t, mqtt.Options{})
	ctx := ctxT(t)
	r, ack := connack(t, e, "dev-1", false)
	if ack.SessionPresent {
		t.Fatal("Session Present on the first connection")
	}
	r.send(subscribePacket(1, 1, "devices/dev-1/messages/devicebound/#"))
	r.mustRead(packets.Suback)
	r.c.Close()
	poll.Until(t, "the MQTT engine to forget dev-1", func() bool { return !e.b.EngineKnows("dev-1") })

	if err := e.hub.SendC2D(ctx, "dev-1", &hubkit.Message{Body: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	r, ack = connack(t, e, "dev-1", false)
	if !ack.SessionPresent {
		t.Error("Session Present is 0 for a cleanSession=0 reconnect with a stored subscription")
	}
	pk := r.mustRead(packets.Publish) // no SUBSCRIBE sent on this connection
	if string(pk.Payload) != "kept" {
		t.Fatalf("C2D body %q", pk.Payload)
	}
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	poll.Until(t, "the message completed", func() bool { n, _ := e.q.Len(ctx, "dev-1"); return n == 0 })
	r.c.Close()
	poll.Until(t, "the MQTT engine to forget dev-1", func() bool { return !e.b.EngineKnows("dev-1") })

	r, ack = connack(t, e, "dev-1", true)
	if ack.SessionPresent {
		t.Error("Session Present is 1 for cleanSession=1")
	}
	r.c.Close()
	poll.Until(t, "the MQTT engine to forget dev-1", func() bool { return !e.b.EngineKnows("dev-1") })

	// The clean session discarded the subscription.
	if _, ack = connack(t, e, "dev-1", false); ack.SessionPresent {
		t.Error("Session Present is 1 after a clean session discarded the subscription")
	}
}
