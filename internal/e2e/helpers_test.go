package e2e_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/devcert"
	"github.com/hubkit/hubkit/internal/nodesdk"
	"github.com/hubkit/hubkit/internal/propbag"
)

// hostName is the hub's host name: the name in its TLS certificate and in
// the devices' connection strings.
const hostName = "localhost"

// deviceKey is the symmetric key of every test device.
var deviceKey = base64.StdEncoding.EncodeToString([]byte("hubkit end-to-end device key 32b"))

// testCA is a certificate authority made for one test, and a server
// certificate for localhost and 127.0.0.1 signed by it.
type testCA struct {
	server *tls.Config    // the hub's TLS configuration
	pool   *x509.CertPool // trusts the CA, for Go clients
	pem    string         // the CA's PEM file, for Node.js clients
}

func newCA(t testing.TB) testCA {
	t.Helper()
	ca, err := devcert.NewCA("hubkit e2e CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.ServerConfig(hostName, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return testCA{server: server, pool: ca.Pool(), pem: path}
}

// hubConfig is the configuration of every hub of these tests: Pebble in
// dir, feedback batched for at most 20 ms.
func hubConfig(dir string, log *slog.Logger, brokers ...broker.Broker) hub.Config {
	return hub.Config{
		HostName:           hostName,
		Dir:                dir,
		Brokers:            brokers,
		FeedbackBatchDelay: 20 * time.Millisecond,
		Logger:             log,
	}
}

// createDevices registers devices with deviceKey; devices that exist
// already are left as they are.
func createDevices(ctx context.Context, h *hub.Hub, ids ...string) error {
	for _, id := range ids {
		_, err := h.CreateDevice(ctx, auth.Device{DeviceID: id, Status: auth.StatusEnabled,
			Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: deviceKey, SecondaryKey: deviceKey}}})
		if err != nil && !errors.Is(err, hubkit.ErrDeviceAlreadyExists) {
			return err
		}
	}
	return nil
}

// hubEnv is a whole hub (Pebble in dir, MQTT over TLS) that a test stops
// and starts again on the same directory.
type hubEnv struct {
	t   *testing.T
	dir string
	ca  testCA
	h   *hub.Hub
	mq  *mqtt.Broker
}

// startHub starts a hub in a new directory; Cleanup closes it.
func startHub(t *testing.T) *hubEnv {
	t.Helper()
	e := &hubEnv{t: t, dir: t.TempDir(), ca: newCA(t)}
	e.start()
	t.Cleanup(func() {
		if err := e.h.Close(); err != nil {
			t.Errorf("close hub: %v", err)
		}
	})
	return e
}

func (e *hubEnv) start() {
	e.t.Helper()
	log := testLogger(e.t)
	mq, err := mqtt.New(mqtt.Options{TLSAddr: "127.0.0.1:0", TLSConfig: e.ca.server, HostName: hostName, Logger: log})
	if err != nil {
		e.t.Fatal(err)
	}
	h, err := hub.New(hubConfig(e.dir, log, mq))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		e.t.Fatal(errors.Join(err, h.Close()))
	}
	e.h, e.mq = h, mq
}

// restart shuts the hub down gracefully and starts a new one on the same
// directory, as a process restart would.
func (e *hubEnv) restart() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.h.Shutdown(ctx); err != nil {
		e.t.Fatalf("shutdown: %v", err)
	}
	if err := e.h.Healthy(); !errors.Is(err, hubkit.ErrClosed) {
		e.t.Fatalf("Healthy after Shutdown = %v, want hubkit.ErrClosed", err)
	}
	e.start()
}

// addr returns the address of the MQTT over TLS listener.
func (e *hubEnv) addr() string { return e.mq.TLSAddr().String() }

// connectionString returns the connection string of a device, with the
// listener's address as gateway host.
func (e *hubEnv) connectionString(deviceID string) string {
	return auth.ConnectionString{HostName: hostName, DeviceID: deviceID, SharedAccessKey: deviceKey, GatewayHostName: e.addr()}.String()
}

// pahoDevice is a device played by the paho MQTT client.
type pahoDevice struct {
	id  string
	c   paho.Client
	c2d chan hubkit.Message // cloud-to-device messages received, when subscribed
}

// pahoOptions returns the options of a device connecting to broker (a
// paho URL such as ssl://127.0.0.1:8883) with token and a clean session,
// without automatic reconnection, so that a lost connection fails the
// messages in flight.
func pahoOptions(broker, deviceID, token string, tlsCfg *tls.Config) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(deviceID).
		SetUsername(hostName + "/" + deviceID + "/?api-version=2021-04-12").
		SetPassword(token).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetTLSConfig(tlsCfg).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second)
}

// deviceToken returns a SAS token for a device, valid for an hour.
func deviceToken(deviceID string) (string, error) {
	return auth.ConnectionString{HostName: hostName, DeviceID: deviceID, SharedAccessKey: deviceKey}.Token(time.Now().Add(time.Hour))
}

// connectPaho connects a device over TLS; with subscribe it subscribes to
// its cloud-to-device topic at QoS 1. Cleanup disconnects it.
func (e *hubEnv) connectPaho(deviceID string, subscribe bool) *pahoDevice {
	e.t.Helper()
	d := &pahoDevice{id: deviceID, c2d: make(chan hubkit.Message, 100)}
	token, err := deviceToken(deviceID)
	if err != nil {
		e.t.Fatal(err)
	}
	d.c = paho.NewClient(pahoOptions("ssl://"+e.addr(), deviceID, token, &tls.Config{RootCAs: e.ca.pool, ServerName: hostName}))
	wait(e.t, "connect "+deviceID, d.c.Connect())
	e.t.Cleanup(func() { d.c.Disconnect(0) })
	if subscribe {
		wait(e.t, "subscribe", d.c.Subscribe(c2dTopic(deviceID)+"#", 1, func(_ paho.Client, m paho.Message) {
			msg, err := decodeC2D(deviceID, m.Topic(), m.Payload())
			if err != nil {
				e.t.Errorf("device %s: %v", deviceID, err)
				return
			}
			d.c2d <- msg
		}))
	}
	return d
}

// publish sends a telemetry message at QoS 1 and waits for its PUBACK.
func (d *pahoDevice) publish(t testing.TB, bag string, body []byte) {
	t.Helper()
	wait(t, "publish", d.c.Publish(d2cTopic(d.id)+bag, 1, false, body))
}

// next returns the next cloud-to-device message the device received.
func (d *pahoDevice) next(ctx context.Context, t testing.TB) hubkit.Message {
	t.Helper()
	select {
	case m := <-d.c2d:
		return m
	case <-ctx.Done():
		t.Fatalf("device %s received no cloud-to-device message: %v", d.id, ctx.Err())
		return hubkit.Message{}
	}
}

func d2cTopic(deviceID string) string { return "devices/" + deviceID + "/messages/events/" }
func c2dTopic(deviceID string) string { return "devices/" + deviceID + "/messages/devicebound/" }

// decodeC2D turns a cloud-to-device PUBLISH into a message, as a device
// SDK does.
func decodeC2D(deviceID, topic string, payload []byte) (hubkit.Message, error) {
	var m hubkit.Message
	bag, ok := strings.CutPrefix(topic, c2dTopic(deviceID))
	if !ok {
		return m, errors.New("cloud-to-device message on topic " + topic)
	}
	if err := propbag.Decode(bag, &m); err != nil {
		return m, err
	}
	// Decode reads bags as a device sends them, where iothub-ack means
	// nothing; on C2D it tells the device what feedback the service asked.
	for pair := range strings.SplitSeq(bag, "&") {
		if v, ok := strings.CutPrefix(pair, "iothub-ack="); ok {
			m.System.Ack = hubkit.Ack(v)
		}
	}
	m.Body = append([]byte(nil), payload...)
	return m, nil
}

// wait waits for a paho token and fails the test on its error.
func wait(t testing.TB, what string, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(20 * time.Second) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// runNode runs the Node.js SDK's device.js with p against the hub, and
// returns its events once it ended, failing the test unless it exited
// with status 0 and reported no error.
func (e *hubEnv) runNode(ctx context.Context, p nodesdk.Plan) []nodesdk.Event {
	e.t.Helper()
	cmd := nodesdk.Command(ctx, e.t, p, "NODE_EXTRA_CA_CERTS="+e.ca.pem)
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = testWriter{e.t}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	var events []nodesdk.Event
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var ev nodesdk.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			e.t.Errorf("device.js printed %q", sc.Text())
			continue
		}
		if ev.Event == "error" {
			e.t.Errorf("device.js: %s", ev.Error)
		}
		events = append(events, ev)
	}
	if err := cmd.Wait(); err != nil {
		e.t.Fatalf("device.js: %v", err)
	}
	return events
}

// receive reads events of one partition for a consumer group from its
// checkpoint until it has n, and fails the test when ctx ends first.
func receive(ctx context.Context, t testing.TB, h *hub.Hub, group string, partition, n int) []hub.Event {
	t.Helper()
	var got []hub.Event
	from := hub.FromCheckpoint()
	for len(got) < n {
		evs, err := h.Receive(ctx, group, partition, from, n-len(got))
		if err != nil {
			t.Fatalf("receive %d events of partition %d, got %d: %v", n, partition, len(got), err)
		}
		got = append(got, evs...)
		from = hub.AtSequence(got[len(got)-1].SequenceNumber, false)
	}
	return got
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testWriter writes to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
