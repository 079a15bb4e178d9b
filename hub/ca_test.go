package hub_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/devcert"
)

// TestCASignedDeviceConnects connects certificateAuthority devices over
// MQTT/TLS to a hub given their CA in Config.CACertificates: one signed by
// that CA gets in, one signed by another CA does not.
func TestCASignedDeviceConnects(t *testing.T) {
	ca, err := devcert.NewCA("hubkit test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := devcert.NewCA("unknown CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := ca.ServerConfig("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := mqtt.New(mqtt.Options{TLSAddr: "127.0.0.1:0", TLSConfig: tlsConfig, HostName: testHost, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{
		clock: endpointtest.NewClock(time.Now()), // certificates are valid around the real time
		config: func(c *hub.Config) {
			c.Brokers = []broker.Broker{b}
			c.CACertificates = []*x509.Certificate{ca.Cert}
		},
	})
	ctx := ctxFor(t, 10*time.Second)
	for _, id := range []string{"signed", "stranger"} {
		if _, err := r.CreateDevice(ctx, auth.Device{DeviceID: id, Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority}}); err != nil {
			t.Fatal(err)
		}
	}
	connect := func(id string, issuer *devcert.CA) error {
		cert, err := issuer.Client(id)
		if err != nil {
			t.Fatal(err)
		}
		o := paho.NewClientOptions().AddBroker("ssl://" + b.TLSAddr().String()).SetClientID(id).
			SetUsername(testHost + "/" + id + "/?api-version=2021-04-12").
			SetTLSConfig(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}}).
			SetAutoReconnect(false).SetProtocolVersion(4).SetConnectTimeout(10 * time.Second)
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("%s: connect timed out", id)
		}
		if tok.Error() == nil {
			c.Disconnect(100)
		}
		return tok.Error()
	}
	if err := connect("signed", ca); err != nil {
		t.Errorf("device signed by a configured CA: %v", err)
	}
	if err := connect("stranger", other); err == nil {
		t.Error("device signed by an unknown CA connected")
	}
}
