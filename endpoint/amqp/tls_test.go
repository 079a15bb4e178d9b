package amqp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/amqp"
	"github.com/hubkit/hubkit/internal/devcert"
	"github.com/hubkit/hubkit/internal/poll"
)

// tlsBroker starts a private broker with an amqps listener whose
// certificate, for 127.0.0.1 and localhost, is issued by ca. It returns
// the plain amqp URL and the amqps URL.
func tlsBroker(t *testing.T, ca *devcert.CA) (plain, secure string) {
	t.Helper()
	cert, err := ca.Server("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{
		"server.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		"ca.pem":     ca.CertPEM(),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	plain, _, _ = privateBroker(t, "RMQ_TLS_PORT="+strconv.Itoa(port),
		"RMQ_TLS_CERT="+filepath.Join(dir, "server.pem"),
		"RMQ_TLS_KEY="+filepath.Join(dir, "server.key"),
		"RMQ_TLS_CA="+filepath.Join(dir, "ca.pem"))
	return plain, fmt.Sprintf("amqps://guest:guest@127.0.0.1:%d", port)
}

// TestTLS sends over amqps to a broker whose certificate the endpoint
// trusts, and to the same broker with a configuration that does not trust
// it.
func TestTLS(t *testing.T) {
	ca, err := devcert.NewCA("hubkit test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	plain, secure := tlsBroker(t, ca)

	t.Run("trusted", func(t *testing.T) {
		q := queueName()
		rcv := receive(t, plain, q)
		ep := newEndpoint(t, amqp.Options{URL: secure, Address: q, DialTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{RootCAs: ca.Pool()}})
		var batch []*hubkit.Message
		for i := range 20 {
			id := fmt.Sprintf("m%d", i)
			batch = append(batch, &hubkit.Message{
				Body:       []byte("body of " + id + " \x00\xff"),
				System:     hubkit.SystemProperties{MessageID: id},
				Properties: []hubkit.Property{{Name: "seq", Value: strconv.Itoa(i)}},
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if n, err := ep.Send(ctx, batch); n != len(batch) || err != nil {
			t.Fatalf("Send over amqps = %d, %v; want %d, nil", n, err, len(batch))
		}
		poll.Until(t, "every message received", func() bool { return len(rcv.messages()) >= len(batch) })
		got := rcv.messages()
		if len(got) != len(batch) {
			t.Fatalf("received %d messages, want %d", len(got), len(batch))
		}
		for i, m := range got {
			h, want := hubMessage(m), batch[i]
			if h.System.MessageID != want.System.MessageID || string(h.Body) != string(want.Body) ||
				len(h.Properties) != 1 || h.Properties[0] != want.Properties[0] {
				t.Errorf("message %d = %+v, want %+v", i, h, want)
			}
		}
	})

	t.Run("untrusted", func(t *testing.T) {
		other, err := devcert.NewCA("another CA", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ep := newEndpoint(t, amqp.Options{Name: "secure", URL: secure, Address: queueName(), DialTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{RootCAs: other.Pool()}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		msg := []*hubkit.Message{{Body: []byte("never sent")}}
		n, err := ep.Send(ctx, msg)
		if n != 0 || err == nil {
			t.Fatalf("Send with an untrusted certificate = %d, %v; want 0 and an error", n, err)
		}
		t.Logf("Send: %v", err)
		// The peer may fix its certificate, so the delivery engine retries.
		var se *endpoint.SendError
		if !errors.As(err, &se) || se.Endpoint != "secure" || !se.Retryable {
			t.Errorf("Send error %#v is not a retryable *endpoint.SendError of endpoint secure", err)
		}
		var verr *tls.CertificateVerificationError
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &verr) || !errors.As(err, &unknown) {
			t.Errorf("Send error %v does not wrap the certificate verification error", err)
		}
		// A second attempt dials again and fails the same way.
		if n, err := ep.Send(ctx, msg); n != 0 || !errors.As(err, &verr) {
			t.Errorf("second Send = %d, %v; want 0 and the verification error", n, err)
		}
	})
}
