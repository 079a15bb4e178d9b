package mqtt_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/queue/memory"
)

// selfSigned returns a self-signed client certificate for cn.
func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestX509ClientCertificate(t *testing.T) {
	ctx := ctxT(t)
	serverTLS, caPath := testTLS(t)
	good, bad := selfSigned(t, "x509-dev"), selfSigned(t, "x509-dev")
	_, thumb := auth.Thumbprints(good.Certificate[0])
	store := memory.New(memory.Options{})
	t.Cleanup(func() { store.Close() })
	reg, err := auth.NewRegistry(auth.RegistryConfig{KV: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, auth.Device{DeviceID: "x509-dev", Status: auth.StatusEnabled,
		Authentication: auth.Authentication{Type: auth.AuthSelfSigned, X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: thumb, SecondaryThumbprint: thumb}}}); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Registry: reg, HostName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	hub := brokertest.New(a, store)
	t.Cleanup(func() { hub.Close() })
	b, err := mqtt.New(mqtt.Options{TLSAddr: "127.0.0.1:0", TLSConfig: serverTLS, HostName: "localhost", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx, hub); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	connect := func(cert tls.Certificate) (paho.Client, error) {
		o := paho.NewClientOptions().AddBroker("ssl://" + b.TLSAddr().String()).SetClientID("x509-dev").
			SetUsername("localhost/x509-dev/?api-version=2021-04-12").SetAutoReconnect(false).
			SetTLSConfig(&tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{cert}})
		c := paho.NewClient(o)
		tok := c.Connect()
		tok.WaitTimeout(10 * time.Second)
		return c, tok.Error()
	}
	if _, err := connect(bad); err == nil {
		t.Fatal("a certificate with another thumbprint was accepted")
	}
	c, err := connect(good)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Disconnect(100)
	if tok := c.Publish("devices/x509-dev/messages/events/", 1, false, "cert"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	msgs, err := hub.Messages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0].System.ConnectionAuthMethod; m != `{"scope":"device","type":"x509Certificate","issuer":"iothub","acceptingIpFilterRule":null}` {
		t.Errorf("auth method %s", m)
	}
}
