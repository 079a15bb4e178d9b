package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/hubkit/hubkit/auth"
)

// TestAuthenticateOverTLS authenticates devices by the client certificate
// chains a real TLS handshake on loopback delivers, as the broker will.
func TestAuthenticateOverTLS(t *testing.T) {
	nb, na := validFor()
	root := issue(t, nil, "root", true, nb, na)
	inter := issue(t, root, "intermediate", true, nb, na)
	server := issue(t, nil, "127.0.0.1", false, nb, na)
	e := newEnv(t, auth.Config{CACertificates: []*x509.Certificate{root.cert}})
	noErr(t, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "ca-dev", Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority}})))
	self := issue(t, nil, "self-dev", false, nb, na)
	_, s2 := auth.Thumbprints(self.cert.Raw)
	noErr(t, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "self-dev", Authentication: auth.Authentication{Type: auth.AuthSelfSigned, X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: s2}}})))

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{server.cert.Raw}, PrivateKey: server.key}},
		// The hub checks certificates per device, after the handshake.
		ClientAuth: tls.RequireAnyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(server.cert)

	for _, tc := range []struct {
		name, device string
		chain        []*certAuthority // leaf first
		ok           bool
		issuer       string
	}{
		{"CA-signed via intermediate", "ca-dev", []*certAuthority{issue(t, inter, "ca-dev", false, nb, na), inter}, true, "external"},
		{"CA-signed, wrong CN", "ca-dev", []*certAuthority{issue(t, inter, "other", false, nb, na), inter}, false, ""},
		{"CA-signed, intermediate missing", "ca-dev", []*certAuthority{issue(t, inter, "ca-dev", false, nb, na)}, false, ""},
		{"self-signed by thumbprint", "self-dev", []*certAuthority{self}, true, "iothub"},
		{"self-signed, other certificate", "self-dev", []*certAuthority{issue(t, nil, "self-dev", false, nb, na)}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			result := make(chan error, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					result <- err
					return
				}
				defer conn.Close()
				sc := conn.(*tls.Conn)
				if err := sc.HandshakeContext(ctx); err != nil {
					result <- err
					return
				}
				id, err := e.a.Authenticate(ctx, auth.Credentials{Protocol: auth.MQTT, DeviceID: readLine(sc), PeerCertificates: sc.ConnectionState().PeerCertificates})
				if err == nil && id.Method.Type != "x509Certificate" {
					err = errors.New("method type " + id.Method.Type)
				}
				if err == nil {
					_, err = sc.Write([]byte(id.Method.Issuer))
				}
				result <- err
			}()
			cert := tls.Certificate{PrivateKey: tc.chain[0].key}
			for _, c := range tc.chain {
				cert.Certificate = append(cert.Certificate, c.cert.Raw)
			}
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
			if err != nil {
				t.Fatal(err)
			}
			// The client names its device after the handshake, as an MQTT
			// CONNECT would.
			conn.Write([]byte(tc.device + "\n"))
			buf := make([]byte, 16)
			n, _ := conn.Read(buf)
			conn.Close()
			err = <-result
			if tc.ok && (err != nil || string(buf[:n]) != tc.issuer) {
				t.Errorf("Authenticate over TLS = %v, issuer %q, want success with issuer %q", err, buf[:n], tc.issuer)
			}
			if !tc.ok && !errors.Is(err, auth.ErrDenied) {
				t.Errorf("Authenticate over TLS = %v, want ErrDenied", err)
			}
		})
	}
}

// readLine reads the device id line the test client sends after the
// handshake.
func readLine(c *tls.Conn) string {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 200 {
		if _, err := c.Read(one); err != nil || one[0] == '\n' {
			break
		}
		b = append(b, one[0])
	}
	return string(b)
}
