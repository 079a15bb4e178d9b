package auth_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/hubkit/hubkit/auth"
)

// The seed corpora are kept in testdata/fuzz; run a target with e.g.
// go test -run '^$' -fuzz FuzzParseSAS -fuzztime 30s ./auth

func FuzzParseSAS(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.token)
	}
	e := newEnv(f, auth.Config{})
	noErr(f, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: deviceKey}}})))
	f.Fuzz(func(t *testing.T, token string) {
		s, err := auth.ParseSAS(token)
		if err != nil {
			if !errors.Is(err, auth.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		} else {
			again, err := auth.ParseSAS(s.String())
			if err != nil || again.Resource != s.Resource || again.Signature != s.Signature || again.Expiry != s.Expiry || again.KeyName != s.KeyName {
				t.Fatalf("String() = %q does not parse back to %+v: %+v, %v", s.String(), s, again, err)
			}
		}
		for _, c := range []auth.Credentials{{DeviceID: "dev-1", Password: token}, {DeviceID: "dev-1", ModuleID: "m", Password: token}} {
			if _, err := e.a.Authenticate(ctx, c); err == nil && !s.Verify(deviceKey) {
				t.Fatalf("Authenticate accepted %q, which is not signed with the device key", token)
			}
		}
	})
}

func FuzzParseConnectionString(f *testing.F) {
	f.Add("HostName=h.example;DeviceId=dev-1;SharedAccessKey=" + deviceKey)
	f.Add("HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=" + moduleKey + ";GatewayHostName=g")
	f.Add("HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=" + policyKey)
	f.Add("HostName=localhost;DeviceId=dev-1;SharedAccessSignature=" + vectors[0].token)
	f.Add("HostName=h;DeviceId=d;x509=true;")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := auth.ParseConnectionString(s)
		if err != nil {
			if !errors.Is(err, auth.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := auth.ParseConnectionString(c.String())
		if err != nil || again != c {
			t.Fatalf("String() = %q does not parse back to %+v: %+v, %v", c.String(), c, again, err)
		}
	})
}

// FuzzCertificate feeds arbitrary DER and thumbprints through parsing,
// thumbprint matching and both X.509 authentication paths.
func FuzzCertificate(f *testing.F) {
	nb, na := validFor()
	root := issue(f, nil, "root", true, nb, na)
	f.Add(issue(f, root, "dev-1", false, nb, na).cert.Raw, "")
	f.Add(issue(f, nil, "dev-1", false, nb, na).cert.Raw, "0123456789abcdef0123456789ABCDEF01234567")
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, "zz")
	ca := newEnv(f, auth.Config{CACertificates: []*x509.Certificate{root.cert}})
	noErr(f, errOf(ca.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority}})))
	self := newEnv(f, auth.Config{Now: func() time.Time { return testNow }})
	noErr(f, errOf(self.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{Type: auth.AuthSelfSigned,
		X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: "0123456789abcdef0123456789ABCDEF01234567"}}})))
	f.Fuzz(func(t *testing.T, der []byte, thumb string) {
		if auth.MatchThumbprint(der, thumb) && auth.ValidateThumbprint(thumb) != nil {
			t.Fatalf("malformed thumbprint %q matched", thumb)
		}
		s1, s2 := auth.Thumbprints(der)
		if !auth.MatchThumbprint(der, s1) || !auth.MatchThumbprint(der, s2) {
			t.Fatal("a certificate does not match its own thumbprints")
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		for _, a := range []*auth.HubAuthenticator{ca.a, self.a} {
			a.Authenticate(ctx, auth.Credentials{DeviceID: "dev-1", PeerCertificates: []*x509.Certificate{cert, cert}})
		}
	})
}
