package mqtt_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/internal/devcert"
	"github.com/hubkit/hubkit/internal/nodesdk"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue/memory"
)

// testTLS returns a server TLS config for localhost and 127.0.0.1, signed
// by a CA made for the test, and the path of the CA's PEM file.
func testTLS(t testing.TB) (*tls.Config, string) {
	t.Helper()
	ca, err := devcert.NewCA("hubkit test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerConfig("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// nodeSetup is what nodeEnv started.
type nodeSetup struct {
	store  *memory.Store
	hub    *brokertest.Hub
	conn   string // node-1's connection string, dialling the TLS listener
	caPath string // the PEM file of the CA that signed the server certificate
	wsPort int    // port of the MQTT over secure WebSocket listener
}

// nodeEnv is a broker for host localhost, on TLS and secure WebSockets,
// whose hub authenticates with hubkit's own SAS authenticator against a
// registry holding node-1.
func nodeEnv(t *testing.T) nodeSetup {
	t.Helper()
	ctx := ctxT(t)
	cfg, caPath := testTLS(t)
	store := memory.New(memory.Options{})
	t.Cleanup(func() { store.Close() })
	reg, err := auth.NewRegistry(auth.RegistryConfig{KV: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, auth.Device{DeviceID: "node-1", Status: auth.StatusEnabled,
		Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: testKey, SecondaryKey: testKey}}}); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Registry: reg, HostName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	hub := brokertest.New(a, store)
	t.Cleanup(func() { hub.Close() })
	b, err := mqtt.New(mqtt.Options{TLSAddr: "127.0.0.1:0", WebSocketAddr: "127.0.0.1:0", TLSConfig: cfg, HostName: "localhost",
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx, hub); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	_, port, _ := net.SplitHostPort(b.TLSAddr().String())
	conn := "HostName=localhost;DeviceId=node-1;SharedAccessKey=" + testKey + ";GatewayHostName=localhost:" + port
	return nodeSetup{store: store, hub: hub, conn: conn, caPath: caPath, wsPort: b.WebSocketAddr().(*net.TCPAddr).Port}
}

// runNode runs device.js with p and sends its events on the returned
// channel, which is closed when the program ends; the program must end
// runPlan runs p to its end and tallies its events: the last C2D message
// received, how many messages were sent and how many times it closed.
// Errors the SDK reports fail the test.
func runPlan(t *testing.T, ctx context.Context, p nodesdk.Plan, caPath string) (got *nodesdk.Message, sent, closed int) {
	t.Helper()
	for e := range runNode(t, ctx, p, caPath) {
		switch e.Event {
		case "message":
			got = &e.Message
		case "sent":
			sent++
		case "closed":
			closed++
		case "error":
			t.Errorf("device.js error: %s", e.Error)
		}
	}
	return got, sent, closed
}

// with status 0.
func runNode(t *testing.T, ctx context.Context, p nodesdk.Plan, caPath string) <-chan nodesdk.Event {
	t.Helper()
	cmd := nodesdk.Command(ctx, t, p, "NODE_EXTRA_CA_CERTS="+caPath)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan nodesdk.Event, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e nodesdk.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("device.js printed %q", sc.Text())
				continue
			}
			t.Logf("device.js: %s", sc.Text())
			events <- e
		}
	}()
	t.Cleanup(func() {
		<-done
		if err := cmd.Wait(); err != nil {
			t.Errorf("device.js: %v", err)
		}
	})
	return events
}

func TestNodeSDKTelemetryAndC2D(t *testing.T) {
	n := nodeEnv(t)
	store, hub := n.store, n.hub
	ctx := ctxT(t)
	c2d := &hubkit.Message{
		Body:       []byte("to the device"),
		System:     hubkit.SystemProperties{MessageID: "c2d-1", CorrelationID: "corr-1", ContentType: "text/plain"},
		Properties: hubkit.Properties{{Name: "cprop", Value: "x&y=z/w"}, {Name: "n", Value: "1"}},
	}
	if err := hub.SendC2D(ctx, "node-1", c2d); err != nil {
		t.Fatal(err)
	}
	plan := nodesdk.Plan{ConnectionString: n.conn, Receive: 1, Send: []nodesdk.Message{
		{Data: `{"t":1}`, MessageID: "d2c-1", CorrelationID: "corr", ContentType: "application/json", ContentEncoding: "utf-8",
			Properties: map[string]string{"temperatureAlert": "true", "note": "a&b=c/d ü %20+"}},
		{Data: "second", Properties: map[string]string{"dt-subject": "comp"}},
	}}
	got, sent, closed := runPlan(t, ctx, plan, n.caPath)
	if sent != 2 || closed != 1 {
		t.Fatalf("sent %d, closed %d", sent, closed)
	}
	if got == nil {
		t.Fatal("the device received no C2D message")
	}
	if got.Data != "to the device" || got.MessageID != "c2d-1" || got.CorrelationID != "corr-1" || got.ContentType != "text/plain" ||
		got.To != "/devices/node-1/messages/deviceBound" || got.Properties["cprop"] != "x&y=z/w" || got.Properties["n"] != "1" {
		t.Errorf("C2D as the SDK saw it: %+v", got)
	}
	msgs, err := hub.Messages(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if s := m.System; string(m.Body) != `{"t":1}` || s.MessageID != "d2c-1" || s.CorrelationID != "corr" ||
		s.ContentType != "application/json" || s.ContentEncoding != "utf-8" || s.ConnectionDeviceID != "node-1" {
		t.Errorf("first message: %+v", m)
	}
	if v, _ := m.Properties.Get("note"); v != "a&b=c/d ü %20+" {
		t.Errorf("note = %q", v)
	}
	if v, _ := m.Properties.Get("temperatureAlert"); v != "true" {
		t.Errorf("temperatureAlert = %q", v)
	}
	if s := msgs[1].System.Subject; s != "comp" {
		t.Errorf("dt-subject = %q", s)
	}
	poll.Until(t, "the C2D message completed", func() bool { n, _ := store.Len(ctx, "node-1"); return n == 0 })
}

// TestNodeSDKOverWebSocket runs the SDK's MqttWs transport: MQTT over
// secure WebSockets on /$iothub/websocket, telemetry and C2D.
func TestNodeSDKOverWebSocket(t *testing.T) {
	n := nodeEnv(t)
	ctx := ctxT(t)
	if err := n.hub.SendC2D(ctx, "node-1", &hubkit.Message{Body: []byte("over wss"), System: hubkit.SystemProperties{MessageID: "ws-c2d"}}); err != nil {
		t.Fatal(err)
	}
	conn := "HostName=localhost;DeviceId=node-1;SharedAccessKey=" + testKey
	plan := nodesdk.Plan{ConnectionString: conn, Transport: "mqttws", WebSocketPort: n.wsPort, Receive: 1,
		Send: []nodesdk.Message{{Data: "from wss", MessageID: "ws-d2c", Properties: map[string]string{"k": "v"}}}}
	got, sent, closed := runPlan(t, ctx, plan, n.caPath)
	if sent != 1 || closed != 1 {
		t.Fatalf("sent %d, closed %d", sent, closed)
	}
	if got == nil || got.Data != "over wss" || got.MessageID != "ws-c2d" {
		t.Fatalf("C2D as the SDK saw it: %+v", got)
	}
	msgs, err := n.hub.Messages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := msgs[0].Properties.Get("k"); string(msgs[0].Body) != "from wss" || msgs[0].System.MessageID != "ws-d2c" || v != "v" {
		t.Errorf("D2C message: %+v", msgs[0])
	}
	poll.Until(t, "the C2D message completed", func() bool { l, _ := n.store.Len(ctx, "node-1"); return l == 0 })
}

func TestNodeSDKTokenRenewalKeepsC2D(t *testing.T) {
	n := nodeEnv(t)
	hub, conn, caPath := n.hub, n.conn, n.caPath
	ctx := ctxT(t)
	if err := hub.SendC2D(ctx, "node-1", &hubkit.Message{Body: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	plan := nodesdk.Plan{ConnectionString: conn, Receive: 2, TokenValidSeconds: 10, TokenMarginSeconds: 5, TimeoutMillis: 30000}
	events := runNode(t, ctx, plan, caPath)
	next := func() nodesdk.Event {
		for e := range events {
			if e.Event == "message" || e.Event == "error" {
				return e
			}
		}
		t.Fatal("device.js ended early")
		return nodesdk.Event{}
	}
	if e := next(); e.Message.Data != "before" {
		t.Fatalf("got %+v", e)
	}
	// The SDK renews its token by reconnecting (cleanSession=0) without a
	// new SUBSCRIBE: connected, disconnected, connected.
	ev, err := hub.WaitEvents(ctx, 3)
	if err != nil {
		t.Fatalf("no reconnect: %+v, %v", ev, err)
	}
	if !ev[0].Connected || ev[1].Connected || !ev[2].Connected {
		t.Fatalf("events %+v", ev)
	}
	if err := hub.SendC2D(ctx, "node-1", &hubkit.Message{Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Message.Data != "after" {
		t.Fatalf("got %+v", e)
	}
	for range events { // drain until device.js ends
	}
}
