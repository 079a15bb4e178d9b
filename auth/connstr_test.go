package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/auth"
)

func TestParseConnectionString(t *testing.T) {
	tok := vectors[0].token
	for _, tc := range []struct {
		name string
		in   string
		want auth.ConnectionString
	}{
		{"device key", "HostName=h.example;DeviceId=dev-1;SharedAccessKey=" + deviceKey,
			auth.ConnectionString{HostName: "h.example", DeviceID: "dev-1", SharedAccessKey: deviceKey}},
		{"module key", "HostName=h.example;DeviceId=dev-1;ModuleId=mod-1;SharedAccessKey=" + moduleKey,
			auth.ConnectionString{HostName: "h.example", DeviceID: "dev-1", ModuleID: "mod-1", SharedAccessKey: moduleKey}},
		{"device token", "HostName=localhost;DeviceId=dev-1;SharedAccessSignature=" + tok,
			auth.ConnectionString{HostName: "localhost", DeviceID: "dev-1", SharedAccessSignature: tok}},
		{"x509 via gateway", "HostName=h.example;DeviceId=dev-1;x509=true;GatewayHostName=edge.local",
			auth.ConnectionString{HostName: "h.example", DeviceID: "dev-1", X509: true, GatewayHostName: "edge.local"}},
		{"policy", "HostName=h.example;SharedAccessKeyName=iothubowner;SharedAccessKey=" + policyKey,
			auth.ConnectionString{HostName: "h.example", SharedAccessKeyName: "iothubowner", SharedAccessKey: policyKey}},
		{"trailing semicolon", "HostName=h.example;DeviceId=d;x509=true;",
			auth.ConnectionString{HostName: "h.example", DeviceID: "d", X509: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := auth.ParseConnectionString(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			again, err := auth.ParseConnectionString(got.String())
			if err != nil || again != got {
				t.Errorf("String() = %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "no HostName"},
		{"no equals", "HostName", "no '='"},
		{"unknown key", "HostName=h;DeviceID=d;x509=true", "unknown key"},
		{"twice", "HostName=h;HostName=i;DeviceId=d;x509=true", "twice"},
		{"empty value", "HostName=;DeviceId=d;x509=true", "empty HostName"},
		{"x509 false", "HostName=h;DeviceId=d;x509=false", "must be true"},
		{"x509 TRUE", "HostName=h;DeviceId=d;x509=TRUE", "must be true"},
		{"x509 True", "HostName=h;DeviceId=d;x509=True", "must be true"},
		{"no credential", "HostName=h;DeviceId=d", "exactly one"},
		{"two credentials", "HostName=h;DeviceId=d;x509=true;SharedAccessKey=" + deviceKey, "exactly one"},
		{"bad key", "HostName=h;DeviceId=d;SharedAccessKey=***", "not base64"},
		{"bad token", "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=x", "SharedAccessSignature"},
		{"module without device", "HostName=h;ModuleId=m;SharedAccessKey=" + deviceKey, "ModuleId but no DeviceId"},
		{"neither", "HostName=h;SharedAccessKey=" + deviceKey, "neither DeviceId nor SharedAccessKeyName"},
		{"policy without key", "HostName=h;SharedAccessKeyName=p", "no SharedAccessKey"},
		{"policy with x509", "HostName=h;SharedAccessKeyName=p;SharedAccessKey=" + policyKey + ";x509=true", "policy may not"},
		{"too long", "HostName=" + strings.Repeat("h", auth.MaxConnectionStringLength), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.ParseConnectionString(tc.in)
			if !errors.Is(err, auth.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseConnectionString = %v, want ErrMalformed mentioning %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), deviceKey) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

func TestConnectionStringToken(t *testing.T) {
	// The module vector, minted from its connection string.
	c, err := auth.ParseConnectionString("HostName=myhub.azure-devices.net;DeviceId=dev-1;ModuleId=mod-1;SharedAccessKey=" + moduleKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Token(time.Unix(vectorSE, 0))
	if err != nil || got != vectors[4].token {
		t.Errorf("Token = %q, %v, want %q", got, err, vectors[4].token)
	}
	p, _ := auth.ParseConnectionString("HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + policyKey)
	if got, err := p.Token(time.Unix(vectorSE, 0)); err != nil || got != vectors[2].token {
		t.Errorf("policy Token = %q, %v, want %q", got, err, vectors[2].token)
	}
	x := auth.ConnectionString{HostName: "h", DeviceID: "d", X509: true}
	if _, err := x.Token(testNow); !errors.Is(err, auth.ErrMalformed) {
		t.Errorf("x509 Token error = %v, want ErrMalformed", err)
	}
}
