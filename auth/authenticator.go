package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hubkit/hubkit"
)

// Config configures the authenticator New returns.
type Config struct {
	// Registry holds the identities; required.
	Registry *Registry
	// HostName is the hub's host name, which token resources must name
	// (compared case-insensitively, a ":port" in the token ignored); required.
	HostName string
	// Policies are the shared access policies whose DeviceConnect tokens
	// may act as any device, and which AuthorizeService checks. Nil means
	// no policy token is accepted.
	Policies *Policies
	// CACertificates are the verified CA certificates that sign the
	// certificates of certificateAuthority devices. Nil means none; see
	// also SetCACertificates.
	CACertificates []*x509.Certificate
	// DisableDeviceSAS refuses tokens signed with device keys, leaving
	// X.509 (IoT Hub's disableDeviceSAS). Policy tokens are not affected.
	DisableDeviceSAS bool
	// DisableModuleSAS refuses tokens signed with module keys, leaving
	// X.509 (IoT Hub's disableModuleSAS). Policy tokens are not affected.
	DisableModuleSAS bool
	// Now is the clock for token expiry and certificate validity. Nil
	// means time.Now.
	Now func() time.Time
}

// A HubAuthenticator applies IoT Hub's rules against a Registry: SAS
// tokens signed with the identity's key or a DeviceConnect policy, and
// X.509 certificates by thumbprint or registered CA. It is safe for
// concurrent use.
type HubAuthenticator struct {
	reg      *Registry
	host     string
	policies *Policies
	roots    atomic.Pointer[x509.CertPool]
	now      func() time.Time
	noDevSAS bool
	noModSAS bool
}

var _ Authenticator = (*HubAuthenticator)(nil)

// New returns the default authenticator.
func New(cfg Config) (*HubAuthenticator, error) {
	var problems []error
	if cfg.Registry == nil {
		problems = append(problems, errors.New("Registry is nil"))
	}
	if cfg.HostName == "" {
		problems = append(problems, errors.New("HostName is empty"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("auth: invalid config: %w", errors.Join(problems...))
	}
	a := &HubAuthenticator{reg: cfg.Registry, host: cfg.HostName, policies: cfg.Policies, now: cfg.Now,
		noDevSAS: cfg.DisableDeviceSAS, noModSAS: cfg.DisableModuleSAS}
	if a.now == nil {
		a.now = time.Now
	}
	a.SetCACertificates(cfg.CACertificates)
	return a, nil
}

// SetCACertificates replaces the registered CA certificates; connections
// authenticated from now on use the new set. The slice is not kept.
func (a *HubAuthenticator) SetCACertificates(certs []*x509.Certificate) {
	var pool *x509.CertPool
	for _, c := range certs {
		if c == nil {
			continue
		}
		if pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AddCert(c)
	}
	a.roots.Store(pool)
}

// deny returns an error wrapping ErrDenied and code (a *hubkit.Error the
// HTTPS layer answers with).
func deny(code *hubkit.Error, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %w", ErrDenied, fmt.Sprintf(format, args...), code)
}

// Authenticate checks c. With a Password (MQTT password or HTTPS
// Authorization header) it checks a SAS token; otherwise the TLS client
// certificate. Failures wrap ErrDenied and a hubkit error:
// hubkit.ErrDeviceNotFound for an unknown identity,
// hubkit.ErrDeviceDisabled for a disabled device, and
// hubkit.ErrUnauthorized for the rest. A registry that cannot be read
// gives an error that does not wrap ErrDenied. The MQTT username is not
// interpreted here; the broker checks it against the client id.
//
// Identity.ExpiresAt is the token's expiry plus ClockSkew, the moment the
// token would stop being accepted; 0 for certificates.
func (a *HubAuthenticator) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	if err := ctx.Err(); err != nil {
		return Identity{}, err
	}
	if hubkit.ValidateDeviceID(c.DeviceID) != nil || c.ModuleID != "" && hubkit.ValidateDeviceID(c.ModuleID) != nil {
		return Identity{}, deny(hubkit.ErrUnauthorized, "malformed device or module id")
	}
	now := a.now()
	switch {
	case c.Password != "":
		return a.sas(ctx, c, now)
	case len(c.PeerCertificates) > 0:
		return a.x509(ctx, c, now)
	}
	return Identity{}, deny(hubkit.ErrUnauthorized, "no credentials")
}

// identity is what Authenticate needs of a registry identity.
type identity struct {
	gen  string
	auth *Authentication
	keys keyPair
}

// lookup finds an enabled device or module (a module of an enabled device).
func (a *HubAuthenticator) lookup(ctx context.Context, id, mid string) (identity, error) {
	d, err := a.reg.device(ctx, id)
	if err == nil && d.dev.Status != StatusEnabled {
		return identity{}, deny(hubkit.ErrDeviceDisabled, "device %q is disabled", id)
	}
	if err == nil && mid == "" {
		return identity{d.dev.GenerationID, &d.dev.Authentication, d.keys}, nil
	}
	var m *moduleEntry
	if err == nil {
		m, err = a.reg.module(ctx, id, mid)
	}
	switch {
	case err == nil:
		return identity{m.mod.GenerationID, &m.mod.Authentication, m.keys}, nil
	case errors.Is(err, hubkit.ErrDeviceNotFound), errors.Is(err, ErrModuleNotFound):
		return identity{}, deny(hubkit.ErrDeviceNotFound, "IotHub %q does not contain the specified identity", a.host)
	}
	return identity{}, err
}

func (a *HubAuthenticator) sas(ctx context.Context, c Credentials, now time.Time) (Identity, error) {
	s, err := ParseSAS(c.Password)
	if err != nil {
		return Identity{}, deny(hubkit.ErrUnauthorized, "%v", err)
	}
	if s.Expired(now) {
		return Identity{}, deny(hubkit.ErrUnauthorized, "token expired")
	}
	if !covers(s.Resource, a.host, c.DeviceID, c.ModuleID) {
		return Identity{}, deny(hubkit.ErrUnauthorized, "token resource does not cover the identity")
	}
	scope := "device"
	if c.ModuleID != "" {
		scope = "module"
	}
	if s.KeyName != "" {
		var p *policyEntry
		if a.policies != nil {
			p = a.policies.entry(s.KeyName)
		}
		if p == nil || !p.Rights.Has(DeviceConnect) {
			return Identity{}, deny(hubkit.ErrUnauthorized, "authorization rule %q does not allow DeviceConnect", clip(s.KeyName))
		}
		if !p.keys.verify(&s) {
			return Identity{}, deny(hubkit.ErrUnauthorized, "signature does not match")
		}
		scope = "hub"
	} else if c.ModuleID == "" && a.noDevSAS || c.ModuleID != "" && a.noModSAS {
		return Identity{}, deny(hubkit.ErrUnauthorized, "%s SAS is disabled on this hub", scope)
	}
	id, err := a.lookup(ctx, c.DeviceID, c.ModuleID)
	if err != nil {
		return Identity{}, err
	}
	if s.KeyName == "" {
		if id.auth.Type != AuthSAS {
			return Identity{}, deny(hubkit.ErrUnauthorized, "identity authenticates with %s, not sas", id.auth.Type)
		}
		if !id.keys.verify(&s) {
			return Identity{}, deny(hubkit.ErrUnauthorized, "signature does not match")
		}
	}
	return Identity{
		DeviceID:     c.DeviceID,
		ModuleID:     c.ModuleID,
		Method:       AuthMethod{Scope: scope, Type: "sas", Issuer: "iothub"},
		GenerationID: id.gen,
		ExpiresAt:    s.Expiry + int64(ClockSkew/time.Second),
	}, nil
}

func (a *HubAuthenticator) x509(ctx context.Context, c Credentials, now time.Time) (Identity, error) {
	id, err := a.lookup(ctx, c.DeviceID, c.ModuleID)
	if err != nil {
		return Identity{}, err
	}
	issuer := "iothub"
	switch id.auth.Type {
	case AuthSelfSigned:
		t := id.auth.X509Thumbprint
		err = verifyThumbprint(c.PeerCertificates, t.PrimaryThumbprint, t.SecondaryThumbprint, now)
	case AuthCertificateAuthority:
		issuer = "external"
		err = verifyCA(c.PeerCertificates, a.roots.Load(), c.DeviceID, c.ModuleID, now)
	default:
		err = fmt.Errorf("identity authenticates with %s, not X.509", id.auth.Type)
	}
	if err != nil {
		return Identity{}, deny(hubkit.ErrUnauthorized, "%v", err)
	}
	scope := "device"
	if c.ModuleID != "" {
		scope = "module"
	}
	return Identity{
		DeviceID:     c.DeviceID,
		ModuleID:     c.ModuleID,
		Method:       AuthMethod{Scope: scope, Type: "x509Certificate", Issuer: issuer},
		GenerationID: id.gen,
	}, nil
}

// AuthorizeService checks a service-side SAS token (for registry, C2D,
// feedback calls the hub serves over a network): it must be signed by a
// shared access policy holding need, scoped to the hub itself, and not
// expired. It returns the policy name, or an error wrapping ErrDenied and
// hubkit.ErrUnauthorized.
func (a *HubAuthenticator) AuthorizeService(token string, need Permission) (string, error) {
	s, err := ParseSAS(token)
	switch {
	case err != nil:
		return "", deny(hubkit.ErrUnauthorized, "%v", err)
	case s.Expired(a.now()):
		return "", deny(hubkit.ErrUnauthorized, "token expired")
	case s.KeyName == "" || a.policies == nil:
		return "", deny(hubkit.ErrUnauthorized, "token is not signed by a shared access policy")
	case !covers(s.Resource, a.host, "", ""):
		return "", deny(hubkit.ErrUnauthorized, "token resource is not the hub")
	}
	p := a.policies.entry(s.KeyName)
	if p == nil || !p.keys.verify(&s) {
		return "", deny(hubkit.ErrUnauthorized, "signature does not match")
	}
	if !p.Rights.Has(need) {
		return "", deny(hubkit.ErrUnauthorized, "authorization rule %q does not allow %s", s.KeyName, need)
	}
	return s.KeyName, nil
}
