package mqtt_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/queue/memory"
)

const testHost = "hub.example"

var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// env is a started broker over a brokertest.Hub.
type env struct {
	b   *mqtt.Broker
	hub *brokertest.Hub
	q   *memory.Store
}

// start starts a broker with opts (plain TCP on 127.0.0.1:0 unless opts
// names listeners) that knows devices dev-1 to dev-3 and module dev-1/mod.
func start(t testing.TB, opts mqtt.Options) *env {
	t.Helper()
	if opts.TCPAddr == "" && opts.TLSAddr == "" && opts.WebSocketAddr == "" {
		opts.TCPAddr = "127.0.0.1:0"
	}
	if opts.HostName == "" {
		opts.HostName = testHost
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	devices := &brokertest.Devices{}
	for _, d := range []string{"dev-1", "dev-2", "dev-3"} {
		devices.Add(d, "", testKey)
	}
	devices.Add("dev-1", "mod", testKey)
	q := memory.New(memory.Options{})
	hub := brokertest.New(devices, q)
	b, err := mqtt.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), hub); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
		hub.Close()
		q.Close()
	})
	return &env{b: b, hub: hub, q: q}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func username(device string) string {
	return testHost + "/" + device + "/?api-version=2021-04-12"
}

func token(device string, valid time.Duration) string {
	return brokertest.Token(testHost, device, "", testKey, time.Now().Add(valid))
}

// raw is a hand-driven MQTT client: it sends exactly the packets a test
// builds and reads exactly what the broker writes.
type raw struct {
	t       testing.TB
	c       net.Conn
	r       *bufio.Reader
	version byte
}

func dial(t testing.TB, addr net.Addr) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, r: bufio.NewReader(c), version: 4}
}

func (r *raw) send(pk packets.Packet) {
	r.t.Helper()
	pk.ProtocolVersion = r.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.c.Write(buf.Bytes()); err != nil {
		r.t.Fatal(err)
	}
}

// read reads one packet, or returns the read error (io.EOF once the
// broker closed the connection).
func (r *raw) read() (packets.Packet, error) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := r.r.ReadByte()
	if err != nil {
		return packets.Packet{}, err
	}
	var fh packets.FixedHeader
	if err := fh.Decode(b); err != nil {
		r.t.Fatal(err)
	}
	n, _, err := packets.DecodeLength(r.r)
	if err != nil {
		return packets.Packet{}, err
	}
	fh.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return packets.Packet{}, err
	}
	pk := packets.Packet{FixedHeader: fh, ProtocolVersion: r.version}
	switch fh.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return pk, nil
}

func (r *raw) mustRead(typ byte) packets.Packet {
	r.t.Helper()
	pk, err := r.read()
	if err != nil {
		r.t.Fatalf("reading packet type %d: %v", typ, err)
	}
	if pk.FixedHeader.Type != typ {
		r.t.Fatalf("got packet type %d, want %d", pk.FixedHeader.Type, typ)
	}
	return pk
}

// closed checks that the broker closes the connection, with nothing but
// perhaps an MQTT 5 DISCONNECT before.
func (r *raw) closed() {
	r.t.Helper()
	for {
		pk, err := r.read()
		if err != nil {
			return
		}
		if pk.FixedHeader.Type != packets.Disconnect {
			r.t.Fatalf("got packet type %d, want the connection closed", pk.FixedHeader.Type)
		}
	}
}

func connectPacket(clientID, user, password string, clean bool) packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{
			ProtocolName:     []byte("MQTT"),
			Clean:            clean,
			Keepalive:        60,
			ClientIdentifier: clientID,
			UsernameFlag:     true,
			Username:         []byte(user),
			PasswordFlag:     true,
			Password:         []byte(password),
		},
	}
}

// connect connects device with a valid token and returns the CONNACK code.
func (r *raw) connect(pk packets.Packet) byte {
	r.t.Helper()
	r.send(pk)
	return r.mustRead(packets.Connack).ReasonCode
}

func connectRaw(t testing.TB, e *env, device string, clean bool) *raw {
	t.Helper()
	r := dial(t, e.b.TCPAddr())
	if rc := r.connect(connectPacket(device, username(device), token(device, time.Hour), clean)); rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	return r
}

func publishPacket(topic string, qos byte, id uint16, payload []byte) packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName:   topic,
		PacketID:    id,
		Payload:     payload,
	}
}

func subscribePacket(id uint16, qos byte, filters ...string) packets.Packet {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: qos})
	}
	return pk
}

func brokertestTokenFor(device, module string, valid time.Duration) string {
	return brokertest.Token(testHost, device, module, testKey, time.Now().Add(valid))
}

func brokertestTokenKey(device, key string) string {
	return brokertest.Token(testHost, device, "", key, time.Now().Add(time.Hour))
}

type bytesBuffer struct{ bytes.Buffer }
