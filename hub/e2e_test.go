package hub_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
)

// TestMQTTDeviceEndToEnd runs a real MQTT broker on a loopback port and a
// real MQTT client as the device: telemetry, C2D with feedback, connection
// state and disconnection on delete.
func TestMQTTDeviceEndToEnd(t *testing.T) {
	b, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", HostName: testHost, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		c.Brokers = []broker.Broker{b}
		c.FeedbackBatchSize = 1
	}})
	d := createDevice(t, r, "dev")
	token, err := auth.NewSAS(testHost+"/devices/dev", d.Authentication.SymmetricKey.PrimaryKey, "", time.Now().Add(time.Hour)) // the broker checks expiry on the real clock
	if err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 1)
	o := paho.NewClientOptions().AddBroker("tcp://" + b.TCPAddr().String()).SetClientID("dev").
		SetUsername(testHost + "/dev/?api-version=2021-04-12").SetPassword(token).
		SetAutoReconnect(false).SetProtocolVersion(4).SetConnectTimeout(10 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	ctx := ctxFor(t, 20*time.Second)
	poll.Until(t, "the registry to show the device connected", func() bool {
		d, err := r.GetDevice(ctx, "dev")
		return err == nil && d.ConnectionState == auth.Connected
	})

	// Telemetry: acknowledged once durable, then readable from events.
	if tok := c.Publish("devices/dev/messages/events/k=v", 1, false, []byte(`{"t":1}`)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	evs, err := r.Receive(ctx, hub.DefaultConsumerGroup, r.Partition("dev"), hub.Earliest(), 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events: %+v, %v", evs, err)
	}
	m := evs[0].Message
	if string(m.Body) != `{"t":1}` || m.System.ConnectionDeviceID != "dev" || m.System.ConnectionAuthGenerationID != d.GenerationID {
		t.Errorf("event %+v", m)
	}
	if v, _ := m.Properties.Get("k"); v != "v" {
		t.Errorf("property k = %q", v)
	}

	// C2D: the client's PUBACK completes the message, which gives feedback.
	got := make(chan paho.Message, 1)
	if tok := c.Subscribe("devices/dev/messages/devicebound/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if _, err := r.SendC2D(ctx, "dev", &hubkit.Message{Body: []byte("on"), System: hubkit.SystemProperties{MessageID: "c1", Ack: hubkit.AckPositive}}); err != nil {
		t.Fatal(err)
	}
	select {
	case pm := <-got:
		if string(pm.Payload()) != "on" {
			t.Errorf("C2D payload %q", pm.Payload())
		}
	case <-ctx.Done():
		t.Fatal("no C2D message")
	}
	if recs := feedbackRecords(t, r, 1); recs[0] != "dev:Success" {
		t.Errorf("feedback %v", recs)
	}

	// Deleting the device disconnects it.
	if err := r.DeleteDevice(ctx, "dev", "*"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("the deleted device stayed connected")
	}
}
