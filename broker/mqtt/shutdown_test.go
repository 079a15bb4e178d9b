package mqtt_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/internal/poll"
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
	poll.Until(t, "the message handed to the hub", func() bool { return hub.ingests.Load() == 1 })

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- b.Shutdown(ctx)
	}()
	poll.Until(t, "the listener closed", func() bool {
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

// stallingHub makes the authentication of devices named stall-* wait
// until its context ends and then succeed, as an authentication that
// completes just as Close begins.
type stallingHub struct {
	*brokertest.Hub
	stalled atomic.Int64
}

func (h *stallingHub) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	if strings.HasPrefix(c.DeviceID, "stall-") {
		h.stalled.Add(1)
		<-ctx.Done()
		return h.Hub.Authenticate(context.Background(), c)
	}
	return h.Hub.Authenticate(ctx, c)
}

// TestCloseWhileConnecting closes the broker while 200 clients are at
// every stage of connecting: silent sockets, half a CONNECT, mid TLS
// handshake, TLS or WebSocket up without CONNECT, authentication in
// progress, and connected over MQTT 3.1.1 and 5. Close must return
// promptly (well within the 60 s connect timeout), every client must see
// its connection closed, every Connected must be matched by a
// Disconnected, and no goroutine may be left behind.
func TestCloseWhileConnecting(t *testing.T) {
	g0 := runtime.NumGoroutine()
	serverTLS, caPath := testTLS(t)
	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	clientTLS := &tls.Config{RootCAs: roots, ServerName: "localhost"}

	const stalls, connected = 30, 40
	devices := &brokertest.Devices{}
	for i := range stalls {
		devices.Add(fmt.Sprintf("stall-%d", i), "", testKey)
	}
	for i := range connected {
		devices.Add(fmt.Sprintf("conn-%d", i), "", testKey)
	}
	store := memory.New(memory.Options{})
	bh := brokertest.New(devices, store)
	hub := &stallingHub{Hub: bh}
	b, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0", WebSocketAddr: "127.0.0.1:0",
		TLSConfig: serverTLS, HostName: testHost, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), hub); err != nil {
		t.Fatal(err)
	}

	var clients []net.Conn // each must end closed by the broker
	add := func(c net.Conn, err error) net.Conn {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		return c
	}
	tcp, tlsAddr := b.TCPAddr().String(), b.TLSAddr().String()
	for range 40 { // silent
		add(net.Dial("tcp", tcp))
	}
	for i := range 30 { // half a CONNECT
		c := add(net.Dial("tcp", tcp))
		pk := encode(t, connectPacket("conn-0", username("conn-0"), "x", true), 4)
		if _, err := c.Write(pk[:len(pk)/2+i%3]); err != nil {
			t.Fatal(err)
		}
	}
	for range 30 { // TLS handshake not begun
		add(net.Dial("tcp", tlsAddr))
	}
	for range 20 { // TLS up, no CONNECT
		add(tls.Dial("tcp", tlsAddr, clientTLS))
	}
	ws := websocket.Dialer{TLSClientConfig: clientTLS, Subprotocols: []string{"mqtt"}}
	for range 10 { // WebSocket up, no CONNECT
		c, _, err := ws.Dial("wss://"+b.WebSocketAddr().String()+mqtt.WebSocketPath, nil)
		add(netConnOf(c, err))
	}
	for i := range stalls { // authentication in progress
		c := add(net.Dial("tcp", tcp))
		dev := fmt.Sprintf("stall-%d", i)
		if _, err := c.Write(encode(t, connectPacket(dev, username(dev), token(dev, time.Hour), true), 4)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range connected { // connected, half MQTT 3.1.1, half MQTT 5
		r := dial(t, b.TCPAddr())
		r.version = byte(4 + i%2)
		dev := fmt.Sprintf("conn-%d", i)
		if rc := r.connect(connectPacket(dev, username(dev), token(dev, time.Hour), true)); rc != 0 {
			t.Fatalf("CONNACK %#x", rc)
		}
		clients = append(clients, r.c)
	}
	poll.Until(t, "every authentication to stall", func() bool { return hub.stalled.Load() == stalls })
	// Each accepted connection runs a read and a write goroutine.
	poll.Until(t, "the broker to accept every connection", func() bool { return runtime.NumGoroutine() >= g0+2*len(clients) })

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("Close did not return within 10 s with %d clients connecting or connected; goroutines:\n%s",
			len(clients), buf[:runtime.Stack(buf, true)])
	}

	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("client %d: connection still open after Close", i)
		}
		c.Close()
	}
	up := map[string]int{}
	for _, e := range bh.Events() {
		if e.Connected {
			up[e.Identity.DeviceID]++
		} else {
			up[e.Identity.DeviceID]--
		}
	}
	for dev, n := range up {
		if n != 0 {
			t.Errorf("%s: %d more Connected than Disconnected", dev, n)
		}
	}
	bh.Close()
	store.Close()
	poll.Until(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= g0 })
}

// encode returns the bytes of pk at MQTT protocol version v.
func encode(t *testing.T, pk packets.Packet, v byte) []byte {
	t.Helper()
	pk.ProtocolVersion = v
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// netConnOf returns the connection under a WebSocket client.
func netConnOf(c *websocket.Conn, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	return c.NetConn(), nil
}
