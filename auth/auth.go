package auth

import (
	"context"
	"crypto/x509"
	"errors"
)

// ErrDenied is wrapped by every authentication or authorization failure:
// bad, expired or not-yet-valid credentials, an unknown or disabled
// identity, a topic or path the identity may not use.
var ErrDenied = errors.New("auth: denied")

// Protocol names the protocol credentials arrived on.
type Protocol string

// The protocols a hub serves.
const (
	MQTT  Protocol = "mqtt"
	HTTPS Protocol = "https"
	AMQP  Protocol = "amqp"
)

// Credentials are what a connecting device presents.
type Credentials struct {
	// Protocol is the protocol of the connection.
	Protocol Protocol
	// DeviceID is the device the client claims to be (MQTT client id,
	// HTTPS path).
	DeviceID string
	// ModuleID is the module of DeviceID the client claims to be; empty
	// for a device.
	ModuleID string
	// Username is the MQTT username, if any.
	Username string
	// Password is the MQTT password or the HTTPS Authorization header: a
	// SAS token, or empty with a client certificate.
	Password string
	// PeerCertificates is the TLS client certificate chain, leaf first.
	PeerCertificates []*x509.Certificate
	// RemoteAddr is the peer's network address, for logs.
	RemoteAddr string
}

// AuthMethod says how an identity authenticated.
type AuthMethod struct {
	// Scope is device, module or hub (a token signed with a shared access policy).
	Scope string
	// Type is sas, or x509Certificate.
	Type string
	// Issuer is iothub, or external for CA-signed certificates.
	Issuer string
}

// JSON returns the compact JSON IoT Hub stamps as iothub-connection-auth-method.
func (m AuthMethod) JSON() string {
	return `{"scope":"` + m.Scope + `","type":"` + m.Type + `","issuer":"` + m.Issuer + `","acceptingIpFilterRule":null}`
}

// Identity is who a connection authenticated as.
type Identity struct {
	// DeviceID is the device the connection acts as.
	DeviceID string
	// ModuleID is the module of DeviceID it acts as; empty for a device.
	ModuleID string
	// Method is how it authenticated.
	Method AuthMethod
	// GenerationID is the registry generation id of the identity.
	GenerationID string
	// ExpiresAt is when the credential stops being valid (SAS expiry), as
	// Unix seconds; 0 means it does not expire while connected.
	ExpiresAt int64
}

// An Authenticator decides whether a device may connect. The broker calls
// Authenticate once per connection attempt (per request on HTTPS), from
// that connection's goroutine, so implementations must be safe for
// concurrent use. It returns an error wrapping ErrDenied for bad or expired
// credentials, and honours ctx so that a slow registry cannot hold a
// connection open.
type Authenticator interface {
	Authenticate(ctx context.Context, c Credentials) (Identity, error)
}

// AuthenticatorFunc adapts a function to an Authenticator.
type AuthenticatorFunc func(ctx context.Context, c Credentials) (Identity, error)

// Authenticate calls f(ctx, c).
func (f AuthenticatorFunc) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	return f(ctx, c)
}
