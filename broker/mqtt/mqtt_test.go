package mqtt_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/internal/poll"
)

func pahoClient(t testing.TB, broker, device string, clean bool) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(device).
		SetUsername(username(device) + "&model-id=dtmi:com:example:Thermostat;1").SetPassword(token(device, time.Hour)).
		SetCleanSession(clean).SetAutoReconnect(false).SetProtocolVersion(4).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestD2CWithPaho(t *testing.T) {
	e := start(t, mqtt.Options{})
	c := pahoClient(t, "tcp://"+e.b.TCPAddr().String(), "dev-1", true)
	topic := "devices/dev-1/messages/events/%24.mid=m-1&%24.ct=application%2Fjson&%24.ce=utf-8&note=a%26b%20%2B&bare"
	if tok := c.Publish(topic, 1, false, []byte(`{"t":21}`)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	// The PUBACK came, so the message must already be stored.
	msgs, err := e.hub.Messages(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if string(m.Body) != `{"t":21}` {
		t.Errorf("body %q", m.Body)
	}
	s := m.System
	if s.MessageID != "m-1" || s.ContentType != "application/json" || s.ContentEncoding != "utf-8" {
		t.Errorf("system properties %+v", s)
	}
	if s.ConnectionDeviceID != "dev-1" || s.DataSchema != "dtmi:com:example:Thermostat;1" || s.MessageSource != "Telemetry" {
		t.Errorf("hub-stamped properties %+v", s)
	}
	want := hubkit.Properties{{Name: "note", Value: "a&b +"}, {Name: "bare", Null: true}}
	if fmt.Sprint(m.Properties) != fmt.Sprint(want) {
		t.Errorf("properties %+v, want %+v", m.Properties, want)
	}
}

// TestHostNameWithPort connects as the SDKs do when the connection
// string's HostName carries a port: the port is in the username and in the
// token's resource.
func TestHostNameWithPort(t *testing.T) {
	e := start(t, mqtt.Options{})
	host := testHost + ":8883"
	o := paho.NewClientOptions().AddBroker("tcp://" + e.b.TCPAddr().String()).SetClientID("dev-1").
		SetUsername(host + "/dev-1/?api-version=2021-04-12").
		SetPassword(brokertest.Token(host, "dev-1", "", testKey, time.Now().Add(time.Hour))).
		SetAutoReconnect(false).SetProtocolVersion(4).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect with %s in username and token: %v", host, tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish("devices/dev-1/messages/events/", 1, false, []byte("port")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	if _, err := e.hub.Messages(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
}

func TestD2CFlagsAndTopicShapes(t *testing.T) {
	e := start(t, mqtt.Options{})
	r := connectRaw(t, e, "dev-1", true)
	topics := []string{
		"devices/dev-1/messages/events",
		"devices/dev-1/messages/events/",
		"devices/dev-1/messages/events/a=1",
		"devices/dev-1/messages/events/a=2/",
	}
	for i, topic := range topics {
		pk := publishPacket(topic, 1, uint16(i+1), []byte("x"))
		pk.FixedHeader.Retain = i == 0
		pk.FixedHeader.Dup = i == 1
		r.send(pk)
	}
	for i := range topics {
		if ack := r.mustRead(packets.Puback); ack.PacketID != uint16(i+1) {
			t.Fatalf("PUBACK %d for packet %d: acks must follow PUBLISH order", ack.PacketID, i+1)
		}
	}
	msgs, err := e.hub.Messages(ctxT(t), len(topics))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"[{mqtt-retain true false}]", "[{mqtt-dup true false}]", "[{a 1 false}]", "[{a 2 false}]"} {
		if got := fmt.Sprint(msgs[i].Properties); got != want {
			t.Errorf("message %d properties %s, want %s", i, got, want)
		}
	}
}

// TestD2CUnreadableExpiry checks that a $.exp that is no time keeps the
// connection and the message (mqtt.md §4 rule 5: only structure is
// malformed); the expiry is ignored.
func TestD2CUnreadableExpiry(t *testing.T) {
	e := start(t, mqtt.Options{})
	r := connectRaw(t, e, "dev-1", true)
	r.send(publishPacket("devices/dev-1/messages/events/%24.exp=tomorrow&k=v", 1, 4, []byte("x")))
	if pk := r.mustRead(packets.Puback); pk.PacketID != 4 {
		t.Fatalf("PUBACK for %d", pk.PacketID)
	}
	msgs, err := e.hub.Messages(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := msgs[0].Properties.Get("k"); v != "v" || !msgs[0].System.ExpiryTime.IsZero() {
		t.Errorf("message %+v", msgs[0])
	}
}

func TestModuleTelemetry(t *testing.T) {
	e := start(t, mqtt.Options{})
	r := dial(t, e.b.TCPAddr())
	tok := brokertestToken("dev-1", "mod")
	if rc := r.connect(connectPacket("dev-1/mod", testHost+"/dev-1/mod/?api-version=2021-04-12", tok, true)); rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	r.send(publishPacket("devices/dev-1/modules/mod/messages/events/", 1, 7, []byte("m")))
	r.mustRead(packets.Puback)
	msgs, err := e.hub.Messages(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].System.ConnectionModuleID != "mod" {
		t.Errorf("module id %q", msgs[0].System.ConnectionModuleID)
	}
}

func TestC2DWithPaho(t *testing.T) {
	e := start(t, mqtt.Options{})
	ctx := ctxT(t)
	msg := &hubkit.Message{
		Body:       []byte("hello"),
		System:     hubkit.SystemProperties{MessageID: "c2d-1", CorrelationID: "corr", Ack: hubkit.AckFull},
		Properties: hubkit.Properties{{Name: "cprop", Value: "x y/z"}},
	}
	if err := e.hub.SendC2D(ctx, "dev-2", msg); err != nil {
		t.Fatal(err)
	}
	c := pahoClient(t, "tcp://"+e.b.TCPAddr().String(), "dev-2", true)
	got := make(chan paho.Message, 1)
	if tok := c.Subscribe("devices/dev-2/messages/devicebound/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case m := <-got:
		want := "devices/dev-2/messages/devicebound/iothub-ack=full&%24.mid=c2d-1&%24.cid=corr&%24.to=%2Fdevices%2Fdev-2%2Fmessages%2FdeviceBound&cprop=x%20y%2Fz"
		if m.Topic() != want || string(m.Payload()) != "hello" || m.Qos() != 1 || m.Duplicate() {
			t.Errorf("got %s %q qos %d dup %v\nwant topic %s", m.Topic(), m.Payload(), m.Qos(), m.Duplicate(), want)
		}
	case <-ctx.Done():
		t.Fatal("no C2D message")
	}
	poll.Until(t, "the PUBACK to complete the message", func() bool { n, _ := e.q.Len(ctx, "dev-2"); return n == 0 })
}

func TestC2DRedeliveredAfterReconnect(t *testing.T) {
	e := start(t, mqtt.Options{})
	ctx := ctxT(t)
	for i := range 3 {
		if err := e.hub.SendC2D(ctx, "dev-3", &hubkit.Message{Body: []byte{byte('a' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	r := connectRaw(t, e, "dev-3", false)
	r.send(subscribePacket(1, 1, "devices/dev-3/messages/devicebound/#"))
	if sa := r.mustRead(packets.Suback); !bytes.Equal(sa.ReasonCodes, []byte{1}) {
		t.Fatalf("SUBACK %v", sa.ReasonCodes)
	}
	first := r.mustRead(packets.Publish)
	if first.FixedHeader.Dup || string(first.Payload) != "a" {
		t.Fatalf("first delivery dup=%v body %q", first.FixedHeader.Dup, first.Payload)
	}
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: first.PacketID})
	second := r.mustRead(packets.Publish)
	third := r.mustRead(packets.Publish)
	if string(second.Payload)+string(third.Payload) != "bc" {
		t.Fatalf("deliveries out of order: %q %q", second.Payload, third.Payload)
	}
	poll.Until(t, "the first message completed", func() bool { n, _ := e.q.Len(ctx, "dev-3"); return n == 2 })
	r.c.Close() // b and c never acknowledged

	// A persistent session: no new SUBSCRIBE, delivery resumes with DUP.
	r = connectRaw(t, e, "dev-3", false)
	for _, want := range []string{"b", "c"} {
		pk := r.mustRead(packets.Publish)
		if !pk.FixedHeader.Dup || string(pk.Payload) != want {
			t.Fatalf("redelivery dup=%v body %q, want DUP and %q", pk.FixedHeader.Dup, pk.Payload, want)
		}
		r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	}
	poll.Until(t, "all messages completed", func() bool { n, _ := e.q.Len(ctx, "dev-3"); return n == 0 })

	// A clean session forgets the subscription: nothing is delivered.
	r.c.Close()
	if err := e.hub.SendC2D(ctx, "dev-3", &hubkit.Message{Body: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	r = connectRaw(t, e, "dev-3", true)
	r.send(publishPacket("devices/dev-3/messages/events/", 1, 9, nil))
	if pk := r.mustRead(packets.Puback); pk.PacketID != 9 {
		t.Fatalf("got %+v", pk)
	}
}

func TestC2DQoS0CompletesWhenWritten(t *testing.T) {
	e := start(t, mqtt.Options{})
	ctx := ctxT(t)
	if err := e.hub.SendC2D(ctx, "dev-1", &hubkit.Message{Body: []byte("q0")}); err != nil {
		t.Fatal(err)
	}
	r := connectRaw(t, e, "dev-1", true)
	r.send(subscribePacket(1, 0, "devices/dev-1/messages/devicebound/#"))
	r.mustRead(packets.Suback)
	if pk := r.mustRead(packets.Publish); pk.FixedHeader.Qos != 0 || string(pk.Payload) != "q0" {
		t.Fatalf("got qos %d %q", pk.FixedHeader.Qos, pk.Payload)
	}
	poll.Until(t, "the message completed", func() bool { n, _ := e.q.Len(ctx, "dev-1"); return n == 0 })
}

func brokertestToken(device, module string) string {
	return brokertestTokenFor(device, module, time.Hour)
}

func TestConnackCodes(t *testing.T) {
	e := start(t, mqtt.Options{})
	good := token("dev-1", time.Hour)
	tests := []struct {
		name    string
		version byte
		pk      packets.Packet
		want    byte
	}{
		{"wrong key", 4, connectPacket("dev-1", username("dev-1"), brokertestTokenKey("dev-1", "d3Jvbmc="), true), 0x05},
		{"expired token", 4, connectPacket("dev-1", username("dev-1"), token("dev-1", -time.Minute), true), 0x05},
		{"unknown device", 4, connectPacket("dev-9", username("dev-9"), token("dev-9", time.Hour), true), 0x05},
		{"username names another device", 4, connectPacket("dev-1", username("dev-2"), good, true), 0x05},
		{"username names another host", 4, connectPacket("dev-1", "other/dev-1/?api-version=2021-04-12", good, true), 0x05},
		{"username names another host with a port", 4, connectPacket("dev-1", "other:8883/dev-1/?api-version=2021-04-12", good, true), 0x05},
		{"no api-version", 4, connectPacket("dev-1", testHost+"/dev-1/", good, true), 0x05},
		{"bad client id", 4, connectPacket("a/b/c", username("a"), good, true), 0x02},
		{"MQTT 3.1", 3, connectPacket("dev-1", username("dev-1"), good, true), 0x01},
		{"MQTT 5 wrong key", 5, connectPacket("dev-1", username("dev-1"), brokertestTokenKey("dev-1", "d3Jvbmc="), true), 0x87},
		{"MQTT 5 accepted", 5, connectPacket("dev-1", username("dev-1"), good, true), 0x00},
		{"legacy username", 4, connectPacket("dev-1", testHost+"/dev-1/api-version=2016-11-14&DeviceClientType=c", good, true), 0x00},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dial(t, e.b.TCPAddr())
			r.version = tt.version
			pk := tt.pk
			if tt.version == 3 {
				pk.Connect.ProtocolName = []byte("MQIsdp")
				r.send(pk)
				if got := r.mustRead(packets.Connack).ReasonCode; got != tt.want {
					t.Fatalf("CONNACK %#x, want %#x", got, tt.want)
				}
			} else if got := r.connect(pk); got != tt.want {
				t.Fatalf("CONNACK %#x, want %#x", got, tt.want)
			}
			if tt.want != 0 {
				r.closed()
			}
			// The hub still serves others.
			other := connectRaw(t, e, "dev-2", true)
			other.send(publishPacket("devices/dev-2/messages/events/", 1, 1, nil))
			other.mustRead(packets.Puback)
		})
	}
}

func TestViolationsCloseTheConnection(t *testing.T) {
	e := start(t, mqtt.Options{})
	ctx := ctxT(t)
	big := bytes.Repeat([]byte("x"), hubkit.MaxD2CSize+1)
	tests := []struct {
		name string
		do   func(r *raw)
	}{
		{"another device's topic", func(r *raw) { r.send(publishPacket("devices/dev-2/messages/events/", 1, 1, nil)) }},
		{"unknown topic", func(r *raw) { r.send(publishPacket("devices/dev-1/messages/other", 1, 1, nil)) }},
		{"unlisted $iothub topic", func(r *raw) { r.send(publishPacket("$iothub/other", 1, 1, nil)) }},
		{"QoS 2", func(r *raw) { r.send(publishPacket("devices/dev-1/messages/events/", 2, 1, nil)) }},
		{"oversized payload", func(r *raw) { r.send(publishPacket("devices/dev-1/messages/events/", 1, 1, big)) }},
		{"malformed property bag", func(r *raw) { r.send(publishPacket("devices/dev-1/messages/events/a=%zz", 1, 1, nil)) }},
		{"another device's filter", func(r *raw) { r.send(subscribePacket(1, 1, "devices/dev-2/messages/devicebound/#")) }},
		{"wildcard filter", func(r *raw) { r.send(subscribePacket(1, 1, "devices/+/messages/devicebound/#")) }},
		{"second CONNECT", func(r *raw) { r.send(connectPacket("dev-1", username("dev-1"), token("dev-1", time.Hour), true)) }},
		{"module filter after four good ones", func(r *raw) {
			r.send(subscribePacket(1, 0, "$iothub/twin/res/#", "$iothub/methods/POST/#", "$iothub/twin/PATCH/properties/desired/#", "devices/dev-1/messages/devicebound/#"))
			r.mustRead(packets.Suback)
			r.send(subscribePacket(2, 0, "devices/dev-1/modules/m/#"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := connectRaw(t, e, "dev-1", true)
			tt.do(r)
			r.closed()
			other := connectRaw(t, e, "dev-2", true)
			other.send(publishPacket("devices/dev-2/messages/events/", 1, 1, nil))
			other.mustRead(packets.Puback)
		})
	}
	// Only the other device's messages were stored.
	msgs, err := e.hub.Messages(ctx, len(tests))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.System.ConnectionDeviceID != "dev-2" {
			t.Errorf("stored a message of %s", m.System.ConnectionDeviceID)
		}
	}
}

func TestGarbageAndSilence(t *testing.T) {
	e := start(t, mqtt.Options{ConnectTimeout: 300 * time.Millisecond})
	t.Run("garbage instead of CONNECT", func(t *testing.T) {
		r := dial(t, e.b.TCPAddr())
		r.c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		r.closed()
	})
	t.Run("no CONNECT", func(t *testing.T) {
		r := dial(t, e.b.TCPAddr())
		start := time.Now()
		r.closed()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("closed after %v", d)
		}
	})
	t.Run("still serving", func(t *testing.T) {
		r := connectRaw(t, e, "dev-2", true)
		r.send(publishPacket("devices/dev-2/messages/events/", 1, 1, nil))
		r.mustRead(packets.Puback)
	})
}

func TestTakeoverAndEvents(t *testing.T) {
	e := start(t, mqtt.Options{})
	first := connectRaw(t, e, "dev-1", false)
	second := connectRaw(t, e, "dev-1", false)
	first.closed()
	second.send(publishPacket("devices/dev-1/messages/events/", 1, 1, nil))
	second.mustRead(packets.Puback)
	ev, err := e.hub.WaitEvents(ctxT(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !ev[0].Connected || ev[1].Connected || !ev[2].Connected {
		t.Fatalf("events %+v: want connected, disconnected, connected", ev)
	}
}

func TestSASExpiryEndsTheConnection(t *testing.T) {
	e := start(t, mqtt.Options{})
	r := dial(t, e.b.TCPAddr())
	if rc := r.connect(connectPacket("dev-1", username("dev-1"), token("dev-1", 1500*time.Millisecond), true)); rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	r.closed()
}

func TestDisconnect(t *testing.T) {
	e := start(t, mqtt.Options{})
	connectModule := func() *raw {
		r := dial(t, e.b.TCPAddr())
		if rc := r.connect(connectPacket("dev-1/mod", testHost+"/dev-1/mod/?api-version=2021-04-12", brokertestToken("dev-1", "mod"), true)); rc != 0 {
			t.Fatalf("module CONNACK %#x", rc)
		}
		return r
	}
	alive := func(r *raw, topic string, id uint16) {
		t.Helper()
		r.send(publishPacket(topic, 1, id, nil))
		if pk := r.mustRead(packets.Puback); pk.PacketID != id {
			t.Fatalf("PUBACK %d, want %d", pk.PacketID, id)
		}
	}
	const devTopic, modTopic = "devices/dev-1/messages/events/", "devices/dev-1/modules/mod/messages/events/"

	// A module alone: its device and other devices stay connected.
	dev, mod, other := connectRaw(t, e, "dev-1", true), connectModule(), connectRaw(t, e, "dev-2", true)
	e.b.Disconnect("dev-1", "mod")
	mod.closed()
	alive(dev, devTopic, 1)
	alive(other, "devices/dev-2/messages/events/", 1)

	// A device takes its modules with it, and only them.
	mod = connectModule()
	alive(mod, modTopic, 2)
	e.b.Disconnect("dev-1", "")
	dev.closed()
	mod.closed()
	alive(other, "devices/dev-2/messages/events/", 2)
}

func TestWebSocketWithPaho(t *testing.T) {
	e := start(t, mqtt.Options{WebSocketAddr: "127.0.0.1:0"})
	c := pahoClient(t, "ws://"+e.b.WebSocketAddr().String()+mqtt.WebSocketPath, "dev-1", true)
	if tok := c.Publish("devices/dev-1/messages/events/k=v", 1, false, []byte("ws")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	msgs, err := e.hub.Messages(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(msgs[0].Body) != "ws" {
		t.Errorf("body %q", msgs[0].Body)
	}
}

// TestSecureWebSocketWithPaho connects paho over wss:// to
// /$iothub/websocket, as the SDKs' WebSocket transports do, and sends
// telemetry and receives a C2D message.
func TestSecureWebSocketWithPaho(t *testing.T) {
	serverTLS, caPath := testTLS(t)
	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	e := start(t, mqtt.Options{WebSocketAddr: "127.0.0.1:0", TLSConfig: serverTLS})
	ctx := ctxT(t)
	if err := e.hub.SendC2D(ctx, "dev-1", &hubkit.Message{Body: []byte("to wss")}); err != nil {
		t.Fatal(err)
	}
	o := paho.NewClientOptions().AddBroker("wss://" + e.b.WebSocketAddr().String() + mqtt.WebSocketPath).SetClientID("dev-1").
		SetUsername(username("dev-1")).SetPassword(token("dev-1", time.Hour)).
		SetTLSConfig(&tls.Config{RootCAs: roots, ServerName: "localhost"}).
		SetAutoReconnect(false).SetProtocolVersion(4).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect over wss: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish("devices/dev-1/messages/events/k=v", 1, false, []byte("from wss")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	msgs, err := e.hub.Messages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := msgs[0].Properties.Get("k"); string(msgs[0].Body) != "from wss" || v != "v" {
		t.Errorf("D2C message %+v", msgs[0])
	}
	got := make(chan paho.Message, 1)
	if tok := c.Subscribe("devices/dev-1/messages/devicebound/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case m := <-got:
		if string(m.Payload()) != "to wss" || !strings.HasPrefix(m.Topic(), "devices/dev-1/messages/devicebound/") {
			t.Errorf("C2D %s %q", m.Topic(), m.Payload())
		}
	case <-ctx.Done():
		t.Fatal("no C2D message over wss")
	}
	poll.Until(t, "the PUBACK to complete the message", func() bool { n, _ := e.q.Len(ctx, "dev-1"); return n == 0 })
}

func TestMQTT5Publish(t *testing.T) {
	e := start(t, mqtt.Options{})
	r := dial(t, e.b.TCPAddr())
	r.version = 5
	if rc := r.connect(connectPacket("dev-1", username("dev-1"), token("dev-1", time.Hour), true)); rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	r.send(publishPacket("devices/dev-1/messages/events/a=b", 1, 3, []byte("v5")))
	if pk := r.mustRead(packets.Puback); pk.PacketID != 3 || pk.ReasonCode != 0 {
		t.Fatalf("PUBACK %+v", pk)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	b, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, mqtt.Options{})
	if err := b.Start(context.Background(), e.hub); err != nil {
		t.Fatal(err)
	}
	addr := b.TCPAddr().String()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), e.hub); err != hubkit.ErrClosed {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("listener still accepting after Shutdown")
	}
}

func TestInvalidOptions(t *testing.T) {
	_, err := mqtt.New(mqtt.Options{TLSAddr: ":0", MaxInflight: -1})
	if err == nil || !strings.Contains(err.Error(), "TLSConfig") || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("New = %v, want both problems reported", err)
	}
}

var _ = context.Background

func TestWillSentAsTelemetry(t *testing.T) {
	e := start(t, mqtt.Options{})
	r := dial(t, e.b.TCPAddr())
	pk := connectPacket("dev-1", username("dev-1"), token("dev-1", time.Hour), true)
	pk.Connect.WillFlag = true
	pk.Connect.WillTopic = "devices/dev-1/messages/events/why=gone"
	pk.Connect.WillPayload = []byte("bye")
	if rc := r.connect(pk); rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	r.c.Close() // network loss, no DISCONNECT
	msgs, err := e.hub.Messages(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := msgs[0].Properties.Get("iothub-MessageType"); v != "Will" || string(msgs[0].Body) != "bye" {
		t.Errorf("will message %+v", msgs[0])
	}
	if v, _ := msgs[0].Properties.Get("why"); v != "gone" {
		t.Errorf("will properties %+v", msgs[0].Properties)
	}

	// A will on another topic is refused at CONNECT.
	r = dial(t, e.b.TCPAddr())
	pk.Connect.WillTopic = "devices/dev-2/messages/events/"
	if rc := r.connect(pk); rc != 0x05 {
		t.Fatalf("CONNACK %#x, want 0x05", rc)
	}
}
