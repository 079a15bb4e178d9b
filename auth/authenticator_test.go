package auth_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/auth/authtest"
)

// env builds the default authenticator over a fresh registry.
type env struct {
	reg *auth.Registry
	pol *auth.Policies
	a   *auth.HubAuthenticator
}

func newEnv(t testing.TB, cfg auth.Config) *env {
	t.Helper()
	kv := newKV(t)
	e := &env{reg: newRegistry(t, kv, nil), pol: newPolicies(t, kv)}
	cfg.Registry, cfg.Policies = e.reg, e.pol
	if cfg.HostName == "" {
		cfg.HostName = testHost
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	a, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.a = a
	return e
}

func (e *env) setEnabled(ctx context.Context, id string, enabled bool) error {
	d, err := e.reg.Get(ctx, id)
	if err != nil {
		return err
	}
	d.Status = auth.StatusDisabled
	if enabled {
		d.Status = auth.StatusEnabled
	}
	_, err = e.reg.Update(ctx, d, d.ETag)
	return err
}

func sasHarness(t *testing.T) authtest.Env {
	e := newEnv(t, auth.Config{})
	return authtest.Env{
		Authenticator: e.a,
		CreateDevice: func(ctx context.Context, id string) error {
			_, err := e.reg.Create(ctx, auth.Device{DeviceID: id})
			return err
		},
		SetEnabled: e.setEnabled,
		Mint: func(t *testing.T, id string, k authtest.Kind) (auth.Credentials, bool) {
			key := deviceKey // unregistered devices get a key nobody holds
			if d, err := e.reg.Get(ctx, id); err == nil {
				key = d.Authentication.SymmetricKey.SecondaryKey
			}
			expiry := testNow.Add(time.Hour)
			switch k {
			case authtest.WrongKey:
				key = policyKey
			case authtest.Expired:
				expiry = testNow.Add(-auth.ClockSkew - time.Second)
			case authtest.NotYetValid:
				return auth.Credentials{}, false
			}
			tok, err := auth.NewSAS(testHost+"/devices/"+id, key, "", expiry)
			if err != nil {
				t.Fatal(err)
			}
			return auth.Credentials{Protocol: auth.MQTT, DeviceID: id, Password: tok}, true
		},
	}
}

func selfSignedHarness(t *testing.T) authtest.Env {
	e := newEnv(t, auth.Config{})
	var mu sync.Mutex
	certs := map[string][2]*x509.Certificate{} // valid, expired
	nb, na := validFor()
	return authtest.Env{
		Authenticator: e.a,
		CreateDevice: func(ctx context.Context, id string) error {
			valid := issue(t, nil, id, false, nb, na).cert
			expired := issue(t, nil, id, false, nb.Add(-48*time.Hour), nb).cert
			s1, _ := auth.Thumbprints(valid.Raw)
			_, s2 := auth.Thumbprints(expired.Raw)
			mu.Lock()
			certs[id] = [2]*x509.Certificate{valid, expired}
			mu.Unlock()
			// SHA-1 primary, lower-case SHA-256 secondary.
			_, err := e.reg.Create(ctx, auth.Device{DeviceID: id, Authentication: auth.Authentication{
				Type: auth.AuthSelfSigned, X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: s1, SecondaryThumbprint: strings.ToLower(s2)}}})
			return err
		},
		SetEnabled: e.setEnabled,
		Mint: func(t *testing.T, id string, k authtest.Kind) (auth.Credentials, bool) {
			mu.Lock()
			cs, ok := certs[id]
			mu.Unlock()
			var c *x509.Certificate
			switch {
			case k == authtest.NotYetValid && ok:
				// Register its thumbprint, so that only its dates refuse it.
				c = issue(t, nil, id, false, testNow.Add(time.Hour), na).cert
				d, err := e.reg.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				_, d.Authentication.X509Thumbprint.SecondaryThumbprint = auth.Thumbprints(c.Raw)
				if _, err := e.reg.Update(ctx, d, d.ETag); err != nil {
					t.Fatal(err)
				}
			case k == authtest.WrongKey || !ok:
				c = issue(t, nil, id, false, nb, na).cert
			case k == authtest.Valid:
				c = cs[0]
			case k == authtest.Expired:
				c = cs[1]
			}
			return auth.Credentials{Protocol: auth.MQTT, DeviceID: id, PeerCertificates: []*x509.Certificate{c}}, true
		},
	}
}

func caHarness(t *testing.T) authtest.Env {
	nb, na := validFor()
	root := issue(t, nil, "hubkit test root", true, nb, na)
	inter := issue(t, root, "hubkit test intermediate", true, nb, na)
	rogue := issue(t, nil, "rogue root", true, nb, na)
	e := newEnv(t, auth.Config{CACertificates: []*x509.Certificate{root.cert}})
	return authtest.Env{
		Authenticator: e.a,
		CreateDevice: func(ctx context.Context, id string) error {
			_, err := e.reg.Create(ctx, auth.Device{DeviceID: id, Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority}})
			return err
		},
		SetEnabled: e.setEnabled,
		Mint: func(t *testing.T, id string, k authtest.Kind) (auth.Credentials, bool) {
			ca, from, to := inter, nb, na
			switch k {
			case authtest.WrongKey:
				ca = rogue
			case authtest.Expired:
				from, to = nb.Add(-48*time.Hour), testNow.Add(-time.Second)
			case authtest.NotYetValid:
				from = testNow.Add(time.Hour)
			}
			leaf := issue(t, ca, id, false, from, to).cert
			return auth.Credentials{Protocol: auth.MQTT, DeviceID: id, PeerCertificates: []*x509.Certificate{leaf, ca.cert}}, true
		},
	}
}

func TestConformanceSAS(t *testing.T) { authtest.Run(t, authtest.Harness{New: sasHarness}) }
func TestConformanceSelfSigned(t *testing.T) {
	authtest.Run(t, authtest.Harness{New: selfSignedHarness})
}
func TestConformanceCA(t *testing.T) { authtest.Run(t, authtest.Harness{New: caHarness}) }

// TestAuthenticateVectors authenticates the SDK-computed tokens.
func TestAuthenticateVectors(t *testing.T) {
	e := newEnv(t, auth.Config{})
	noErr(t, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: policyKey, SecondaryKey: deviceKey}}})))
	noErr(t, errOf(e.reg.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "mod-1", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: moduleKey}}})))
	noErr(t, e.pol.Set(ctx, auth.Policy{KeyName: "device", PrimaryKey: deviceKey, SecondaryKey: policyKey, Rights: auth.DeviceConnect}))
	local := newEnv(t, auth.Config{HostName: "LocalHost"})
	noErr(t, errOf(local.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: deviceKey}}})))

	for _, tc := range []struct {
		name        string
		a           *auth.HubAuthenticator
		device, mod string
		token       string
		method      string
	}{
		{"device key (observed form)", local.a, "dev-1", "", vectors[0].token, `{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}`},
		{"device policy acting as the device", e.a, "dev-1", "", vectors[3].token, `{"scope":"hub","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}`},
		{"module key", e.a, "dev-1", "mod-1", vectors[4].token, `{"scope":"module","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.a.Authenticate(ctx, auth.Credentials{Protocol: auth.MQTT, DeviceID: tc.device, ModuleID: tc.mod, Password: tc.token})
			if err != nil {
				t.Fatal(err)
			}
			if id.Method.JSON() != tc.method || id.ExpiresAt != vectorSE+300 || id.GenerationID == "" || id.DeviceID != tc.device || id.ModuleID != tc.mod {
				t.Errorf("identity %+v, method %s", id, id.Method.JSON())
			}
		})
	}
}

func TestAuthenticateDenials(t *testing.T) {
	e := newEnv(t, auth.Config{})
	noErr(t, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: deviceKey}}})))
	noErr(t, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "off", Status: auth.StatusDisabled, Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: deviceKey}}})))
	noErr(t, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "x509", Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority}})))
	noErr(t, errOf(e.reg.CreateModule(ctx, auth.Module{DeviceID: "off", ModuleID: "m", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: moduleKey}}})))
	noErr(t, e.pol.Set(ctx, auth.Policy{KeyName: "service", PrimaryKey: policyKey, Rights: auth.ServiceConnect}))
	noErr(t, e.pol.Set(ctx, auth.Policy{KeyName: "device", PrimaryKey: policyKey, Rights: auth.DeviceConnect}))
	noSAS := newEnv(t, auth.Config{DisableDeviceSAS: true})
	noErr(t, errOf(noSAS.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: deviceKey}}})))
	later := testNow.Add(time.Hour)
	tok := func(res, key, skn string) string {
		s, err := auth.NewSAS(res, key, skn, later)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		a      *auth.HubAuthenticator
		c      auth.Credentials
		code   *hubkit.Error
		reason string
	}{
		{"unknown device", e.a, auth.Credentials{DeviceID: "ghost", Password: tok(testHost+"/devices/ghost", deviceKey, "")}, hubkit.ErrDeviceNotFound, "does not contain"},
		{"disabled device", e.a, auth.Credentials{DeviceID: "off", Password: tok(testHost+"/devices/off", deviceKey, "")}, hubkit.ErrDeviceDisabled, "disabled"},
		{"module of a disabled device", e.a, auth.Credentials{DeviceID: "off", ModuleID: "m", Password: tok(testHost+"/devices/off/modules/m", moduleKey, "")}, hubkit.ErrDeviceDisabled, "disabled"},
		{"unknown module", e.a, auth.Credentials{DeviceID: "dev-1", ModuleID: "m", Password: tok(testHost+"/devices/dev-1/modules/m", moduleKey, "")}, hubkit.ErrDeviceNotFound, "does not contain"},
		{"other hub", e.a, auth.Credentials{DeviceID: "dev-1", Password: tok("other.example/devices/dev-1", deviceKey, "")}, hubkit.ErrUnauthorized, "resource"},
		{"other device's resource", e.a, auth.Credentials{DeviceID: "dev-1", Password: tok(testHost+"/devices/dev-2", deviceKey, "")}, hubkit.ErrUnauthorized, "resource"},
		{"device token for a module", e.a, auth.Credentials{DeviceID: "dev-1", ModuleID: "m", Password: tok(testHost+"/devices/dev-1", deviceKey, "")}, hubkit.ErrDeviceNotFound, "does not contain"},
		{"policy without DeviceConnect", e.a, auth.Credentials{DeviceID: "dev-1", Password: tok(testHost, policyKey, "service")}, hubkit.ErrUnauthorized, "does not allow"},
		{"unknown policy", e.a, auth.Credentials{DeviceID: "dev-1", Password: tok(testHost, policyKey, "nobody")}, hubkit.ErrUnauthorized, "does not allow"},
		{"policy with a wrong key", e.a, auth.Credentials{DeviceID: "dev-1", Password: tok(testHost, deviceKey, "device")}, hubkit.ErrUnauthorized, "signature"},
		{"SAS for an X.509 device", e.a, auth.Credentials{DeviceID: "x509", Password: tok(testHost+"/devices/x509", deviceKey, "")}, hubkit.ErrUnauthorized, "not sas"},
		{"certificate for a sas device", e.a, auth.Credentials{DeviceID: "dev-1", PeerCertificates: []*x509.Certificate{issue(t, nil, "dev-1", false, testNow.Add(-time.Hour), later).cert}}, hubkit.ErrUnauthorized, "not X.509"},
		{"CA device with no CA registered", e.a, auth.Credentials{DeviceID: "x509", PeerCertificates: []*x509.Certificate{issue(t, nil, "x509", false, testNow.Add(-time.Hour), later).cert}}, hubkit.ErrUnauthorized, "no CA"},
		{"device SAS disabled", noSAS.a, auth.Credentials{DeviceID: "dev-1", Password: tok(testHost+"/devices/dev-1", deviceKey, "")}, hubkit.ErrUnauthorized, "SAS is disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.a.Authenticate(ctx, tc.c)
			if !errors.Is(err, auth.ErrDenied) || !errors.Is(err, tc.code) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Authenticate = %v, want ErrDenied and %v mentioning %q", err, tc.code, tc.reason)
			}
			if err != nil && (strings.Contains(err.Error(), "sig=") || strings.Contains(err.Error(), deviceKey)) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestAuthenticateCA(t *testing.T) {
	nb, na := validFor()
	root := issue(t, nil, "root", true, nb, na)
	other := issue(t, nil, "other root", true, nb, na)
	e := newEnv(t, auth.Config{CACertificates: []*x509.Certificate{root.cert}})
	noErr(t, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority}})))
	noErr(t, errOf(e.reg.CreateModule(ctx, auth.Module{DeviceID: "dev-1", ModuleID: "m1", Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority}})))
	chain := func(cn string) []*x509.Certificate {
		return []*x509.Certificate{issue(t, root, cn, false, nb, na).cert}
	}
	id, err := e.a.Authenticate(ctx, auth.Credentials{DeviceID: "dev-1", PeerCertificates: chain("dev-1")})
	if err != nil || id.Method.JSON() != `{"scope":"device","type":"x509Certificate","issuer":"external","acceptingIpFilterRule":null}` || id.ExpiresAt != 0 {
		t.Errorf("CA device: %+v, %v", id, err)
	}
	if id, err := e.a.Authenticate(ctx, auth.Credentials{DeviceID: "dev-1", ModuleID: "m1", PeerCertificates: chain("dev-1/m1")}); err != nil || id.Method.Scope != "module" {
		t.Errorf("CA module: %+v, %v", id, err)
	}
	for name, c := range map[string]auth.Credentials{
		"CN of another device":  {DeviceID: "dev-1", PeerCertificates: chain("dev-2")},
		"CN differs in case":    {DeviceID: "dev-1", PeerCertificates: chain("DEV-1")},
		"device CN for module":  {DeviceID: "dev-1", ModuleID: "m1", PeerCertificates: chain("dev-1")},
		"module CN for device":  {DeviceID: "dev-1", PeerCertificates: chain("dev-1/m1")},
		"self-signed, right CN": {DeviceID: "dev-1", PeerCertificates: []*x509.Certificate{issue(t, nil, "dev-1", false, nb, na).cert}},
	} {
		if _, err := e.a.Authenticate(ctx, c); !errors.Is(err, auth.ErrDenied) {
			t.Errorf("%s: %v, want ErrDenied", name, err)
		}
	}
	// Replacing the registered CAs takes effect for the next connection.
	e.a.SetCACertificates([]*x509.Certificate{other.cert})
	if _, err := e.a.Authenticate(ctx, auth.Credentials{DeviceID: "dev-1", PeerCertificates: chain("dev-1")}); !errors.Is(err, auth.ErrDenied) {
		t.Errorf("after the CA was replaced: %v, want ErrDenied", err)
	}
}

func TestAuthenticateSelfSignedMethod(t *testing.T) {
	nb, na := validFor()
	e := newEnv(t, auth.Config{})
	c := issue(t, nil, "anything", false, nb, na).cert
	_, s2 := auth.Thumbprints(c.Raw)
	noErr(t, errOf(e.reg.Create(ctx, auth.Device{DeviceID: "dev-1", Authentication: auth.Authentication{Type: auth.AuthSelfSigned,
		X509Thumbprint: auth.X509Thumbprint{PrimaryThumbprint: strings.Repeat("0", 40), SecondaryThumbprint: s2}}})))
	id, err := e.a.Authenticate(ctx, auth.Credentials{DeviceID: "dev-1", PeerCertificates: []*x509.Certificate{c}})
	if err != nil || id.Method.JSON() != `{"scope":"device","type":"x509Certificate","issuer":"iothub","acceptingIpFilterRule":null}` {
		t.Errorf("self-signed by secondary SHA-256 thumbprint: %+v, %v", id, err)
	}
}

func TestAuthenticateKeyChangeTakesEffect(t *testing.T) {
	e := newEnv(t, auth.Config{})
	d, _ := e.reg.Create(ctx, auth.Device{DeviceID: "dev-1"})
	old, _ := auth.NewSAS(testHost+"/devices/dev-1", d.Authentication.SymmetricKey.PrimaryKey, "", testNow.Add(time.Hour))
	c := auth.Credentials{DeviceID: "dev-1", Password: old}
	if _, err := e.a.Authenticate(ctx, c); err != nil {
		t.Fatal(err)
	}
	d.Authentication.SymmetricKey = auth.SymmetricKey{PrimaryKey: deviceKey, SecondaryKey: moduleKey}
	if _, err := e.reg.Update(ctx, d, d.ETag); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Authenticate(ctx, c); !errors.Is(err, auth.ErrDenied) {
		t.Errorf("token signed with a replaced key: %v, want ErrDenied", err)
	}
}

func TestAuthorizeService(t *testing.T) {
	e := newEnv(t, auth.Config{})
	noErr(t, e.pol.Set(ctx, auth.Policy{KeyName: "iothubowner", PrimaryKey: policyKey, SecondaryKey: moduleKey, Rights: auth.RegistryWrite | auth.ServiceConnect | auth.DeviceConnect}))
	noErr(t, e.pol.Set(ctx, auth.Policy{KeyName: "registryRead", PrimaryKey: deviceKey, Rights: auth.RegistryRead}))
	later := testNow.Add(time.Hour)
	owner, _ := auth.NewSAS(testHost, policyKey, "iothubowner", later)
	ownerSecondary, _ := auth.NewSAS(testHost, moduleKey, "iothubowner", later)
	reader, _ := auth.NewSAS(testHost, deviceKey, "registryRead", later)
	scoped, _ := auth.NewSAS(testHost+"/devices/dev-1", policyKey, "iothubowner", later)
	expired, _ := auth.NewSAS(testHost, policyKey, "iothubowner", testNow.Add(-time.Hour))
	device, _ := auth.NewSAS(testHost, deviceKey, "", later)
	for _, tc := range []struct {
		name  string
		token string
		need  auth.Permission
		ok    bool
	}{
		{"owner reads the registry (write implies read)", owner, auth.RegistryRead, true},
		{"owner by secondary key", ownerSecondary, auth.ServiceConnect, true},
		{"reader reads", reader, auth.RegistryRead, true},
		{"reader may not write", reader, auth.RegistryWrite, false},
		{"reader may not connect as service", reader, auth.ServiceConnect, false},
		{"device-scoped policy token", scoped, auth.RegistryRead, false},
		{"expired", expired, auth.RegistryRead, false},
		{"no skn", device, auth.RegistryRead, false},
		{"garbage", "SharedAccessSignature x", auth.RegistryRead, false},
	} {
		name, err := e.a.AuthorizeService(tc.token, tc.need)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, auth.ErrDenied) || tc.ok && name == "" {
			t.Errorf("%s: AuthorizeService = %q, %v", tc.name, name, err)
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	_, err := auth.New(auth.Config{})
	if err == nil || !strings.Contains(err.Error(), "Registry is nil") || !strings.Contains(err.Error(), "HostName is empty") {
		t.Errorf("New(zero Config) = %v, want both problems reported", err)
	}
}
