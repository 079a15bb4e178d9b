package mqtt_test

import (
	"context"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/internal/poll"
)

// connect5 connects device over MQTT 5 with a token valid for valid and
// the given keep-alive, and returns the CONNACK.
func connect5(t *testing.T, e *env, device string, valid time.Duration, keepalive uint16) (*raw, packets.Packet) {
	t.Helper()
	r := dial(t, e.b.TCPAddr())
	r.version = 5
	pk := connectPacket(device, username(device), token(device, valid), true)
	pk.Connect.Keepalive = keepalive
	r.send(pk)
	ack := r.mustRead(packets.Connack)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}
	return r, ack
}

func TestMQTT5C2D(t *testing.T) {
	e := start(t, mqtt.Options{})
	ctx := ctxT(t)
	msg := &hubkit.Message{Body: []byte("v5"), System: hubkit.SystemProperties{MessageID: "m5"}}
	if err := e.hub.SendC2D(ctx, "dev-1", msg); err != nil {
		t.Fatal(err)
	}
	r, _ := connect5(t, e, "dev-1", time.Hour, 60)
	r.send(subscribePacket(1, 1, "devices/dev-1/messages/devicebound/#"))
	if sa := r.mustRead(packets.Suback); len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != 1 {
		t.Fatalf("SUBACK %v", sa.ReasonCodes)
	}
	pk := r.mustRead(packets.Publish) // decoded as MQTT 5: a property list after the packet id
	want := "devices/dev-1/messages/devicebound/iothub-ack=none&%24.mid=m5&%24.to=%2Fdevices%2Fdev-1%2Fmessages%2FdeviceBound"
	if pk.TopicName != want || string(pk.Payload) != "v5" || pk.FixedHeader.Qos != 1 || pk.FixedHeader.Dup {
		t.Fatalf("PUBLISH %s %q qos %d dup %v, want topic %s", pk.TopicName, pk.Payload, pk.FixedHeader.Qos, pk.FixedHeader.Dup, want)
	}
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	poll.Until(t, "the MQTT 5 PUBACK to complete the message", func() bool { n, _ := e.q.Len(ctx, "dev-1"); return n == 0 })
}

// TestMQTT5DisconnectReasons checks that an MQTT 5 client learns why the
// hub closes its connection.
func TestMQTT5DisconnectReasons(t *testing.T) {
	tests := []struct {
		name string
		want packets.Code
		do   func(t *testing.T, e *env) *raw
	}{
		{"takeover", packets.ErrSessionTakenOver, func(t *testing.T, e *env) *raw {
			r, _ := connect5(t, e, "dev-1", time.Hour, 60)
			connect5(t, e, "dev-1", time.Hour, 60)
			return r
		}},
		{"token expiry", packets.ErrNotAuthorized, func(t *testing.T, e *env) *raw {
			r, _ := connect5(t, e, "dev-1", 1500*time.Millisecond, 60)
			return r
		}},
		{"shutdown", packets.ErrServerShuttingDown, func(t *testing.T, e *env) *raw {
			r, _ := connect5(t, e, "dev-1", time.Hour, 60)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.b.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, mqtt.Options{})
			r := tt.do(t, e)
			if pk := r.mustRead(packets.Disconnect); pk.ReasonCode != tt.want.Code {
				t.Fatalf("DISCONNECT reason %#x, want %#x (%s)", pk.ReasonCode, tt.want.Code, tt.want.Reason)
			}
			r.closed()
		})
	}
}

// TestKeepAliveTimeout checks the 1.5 x rule (mqtt.md §2.2): a silent
// client with keep-alive 2 s is closed after about 3 s, not before 2 s.
func TestKeepAliveTimeout(t *testing.T) {
	e := start(t, mqtt.Options{})
	for _, v := range []byte{4, 5} {
		r := dial(t, e.b.TCPAddr())
		r.version = v
		pk := connectPacket("dev-1", username("dev-1"), token("dev-1", time.Hour), true)
		pk.Connect.Keepalive = 2
		if rc := r.connect(pk); rc != 0 {
			t.Fatalf("MQTT %d: CONNACK %#x", v, rc)
		}
		connected := time.Now()
		r.closed() // reads until the broker closes, for at most 10 s
		if d := time.Since(connected); d < 2*time.Second || d > 8*time.Second {
			t.Errorf("MQTT %d: keep-alive 2 s closed after %v, want about 3 s", v, d)
		}
	}
}

// TestServerKeepAlive checks that an MQTT 5 client asking for no
// keep-alive, or one longer than the hub allows, is told the hub's value
// (1178 s, whose 1.5 x is the 1767 s limit) in the CONNACK.
func TestServerKeepAlive(t *testing.T) {
	e := start(t, mqtt.Options{})
	tests := []struct {
		keepalive uint16
		told      bool
	}{
		{0, true},
		{1178, false},
		{1179, true},
		{65535, true},
		{60, false},
	}
	for _, tt := range tests {
		_, ack := connect5(t, e, "dev-1", time.Hour, tt.keepalive)
		p := ack.Properties
		if p.ServerKeepAliveFlag != tt.told || (tt.told && p.ServerKeepAlive != 1178) {
			t.Errorf("keep-alive %d: CONNACK Server Keep Alive %v %d, want told=%v 1178", tt.keepalive, p.ServerKeepAliveFlag, p.ServerKeepAlive, tt.told)
		}
	}
}
