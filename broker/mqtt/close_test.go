package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/queue/memory"
)

// TestCloseDeviceNotReading closes the broker while an MQTT 5 device has
// stopped reading. The connection runs over net.Pipe, whose writes wait
// for the reader, so the DISCONNECT that Close writes to MQTT 5 devices
// cannot go out: Close must give up on it after closeWriteTimeout rather
// than wait for the keep-alive deadline.
func TestCloseDeviceNotReading(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	devices := &brokertest.Devices{}
	devices.Add("dev-1", "", key)
	store := memory.New(memory.Options{})
	defer store.Close()
	hub := brokertest.New(devices, store)
	defer hub.Close()
	b, err := New(Options{TCPAddr: "127.0.0.1:0", HostName: "hub.example", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), hub); err != nil {
		t.Fatal(err)
	}
	srv, dev := net.Pipe()
	defer dev.Close()
	l := b.listeners[0]
	if !l.track(srv) {
		t.Fatal("listener closed")
	}
	go l.establish(b.server.EstablishConnection, srv)

	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 5,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60,
			ClientIdentifier: "dev-1",
			UsernameFlag:     true, Username: []byte("hub.example/dev-1/?api-version=2021-04-12"),
			PasswordFlag: true, Password: []byte(brokertest.Token("hub.example", "dev-1", "", key, time.Now().Add(time.Hour))),
		},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	_ = dev.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := dev.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(dev)
	if h, err := r.ReadByte(); err != nil || h != packets.Connack<<4 {
		t.Fatalf("CONNACK header %#x, %v", h, err)
	}
	n, _ := r.ReadByte()
	if _, err := r.Discard(int(n)); err != nil {
		t.Fatal(err)
	}
	// From here on the device reads nothing.

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s while an MQTT 5 device was not reading")
	}
}
