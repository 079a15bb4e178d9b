package devcert_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/devcert"
)

// TestHandshake serves a certificate for localhost and 127.0.0.1 over real
// TLS, from a CA reloaded from its PEM form, requires a client certificate,
// and checks that both sides verify for both host names.
func TestHandshake(t *testing.T) {
	ca, err := devcert.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = devcert.Load(ca.CertPEM(), keyPEM); err != nil { // what a restarted dev hub does
		t.Fatal(err)
	}
	cfg, err := ca.ServerConfig("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = ca.Pool()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hosts := []string{"localhost", "127.0.0.1"}
	peers := make(chan string, len(hosts))
	go func() {
		for range hosts {
			c, err := ln.Accept()
			if err != nil {
				peers <- err.Error()
				return
			}
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				peers <- err.Error()
			} else {
				peers <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			c.Close()
		}
	}()
	client, err := ca.Client("dev-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range hosts {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: host, RootCAs: ca.Pool(), Certificates: []tls.Certificate{client}})
		if err != nil {
			t.Fatalf("dial as %s: %v", host, err)
		}
		c.Close()
		if cn := <-peers; cn != "dev-1" {
			t.Fatalf("server saw client %q, want dev-1", cn)
		}
	}
}
