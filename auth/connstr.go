package auth

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// MaxConnectionStringLength is the longest connection string
// ParseConnectionString accepts, in bytes.
const MaxConnectionStringLength = 8192

// A ConnectionString holds the fields of an IoT Hub device, module or
// shared access policy connection string:
//
//	HostName={host};DeviceId={id}[;ModuleId={module}];SharedAccessKey={key}
//	HostName={host};DeviceId={id};SharedAccessSignature=SharedAccessSignature sr=...
//	HostName={host};DeviceId={id};x509=true[;GatewayHostName={gateway}]
//	HostName={host};SharedAccessKeyName={policy};SharedAccessKey={key}
type ConnectionString struct {
	// HostName is the hub's host name (HostName).
	HostName string
	// DeviceID is the device (DeviceId); empty in a policy string.
	DeviceID string
	// ModuleID is the module of DeviceID (ModuleId); empty for a device.
	ModuleID string
	// SharedAccessKeyName is the shared access policy of a policy string
	// (SharedAccessKeyName).
	SharedAccessKeyName string
	// SharedAccessKey is the base64 device, module or policy key
	// (SharedAccessKey).
	SharedAccessKey string
	// SharedAccessSignature is a ready-made SAS token
	// (SharedAccessSignature), "SharedAccessSignature sr=..." included.
	SharedAccessSignature string
	// X509 is true when the device authenticates with a client
	// certificate (x509=true).
	X509 bool
	// GatewayHostName is the host to connect to instead of HostName, an
	// IoT Edge gateway (GatewayHostName).
	GatewayHostName string
}

// ParseConnectionString parses and checks a connection string: pairs
// Key=Value separated by ';', each split at its first '=' (values contain
// '=': base64 padding, tokens). Key names are matched exactly, as the SDKs
// match them; an unknown or repeated key is an error. A device (or module)
// string needs HostName, DeviceId and exactly one of SharedAccessKey,
// SharedAccessSignature and x509=true; a policy string needs HostName,
// SharedAccessKeyName and SharedAccessKey and no DeviceId. The value of
// x509 must be exactly true: TRUE or True is an error. Errors wrap
// ErrMalformed and never quote keys or signatures.
func ParseConnectionString(s string) (ConnectionString, error) {
	var c ConnectionString
	if len(s) > MaxConnectionStringLength {
		return c, fmt.Errorf("%w: connection string is %d bytes long, the limit is %d", ErrMalformed, len(s), MaxConnectionStringLength)
	}
	var x509 string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ";") {
		if part == "" {
			continue // a trailing or doubled ';'
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return c, fmt.Errorf("%w: connection string part %q has no '='", ErrMalformed, clip(k))
		}
		var dst *string
		switch k {
		case "HostName":
			dst = &c.HostName
		case "DeviceId":
			dst = &c.DeviceID
		case "ModuleId":
			dst = &c.ModuleID
		case "SharedAccessKeyName":
			dst = &c.SharedAccessKeyName
		case "SharedAccessKey":
			dst = &c.SharedAccessKey
		case "SharedAccessSignature":
			dst = &c.SharedAccessSignature
		case "x509":
			dst = &x509
		case "GatewayHostName":
			dst = &c.GatewayHostName
		default:
			return c, fmt.Errorf("%w: connection string has unknown key %q", ErrMalformed, clip(k))
		}
		if seen[k] {
			return c, fmt.Errorf("%w: connection string has %s twice", ErrMalformed, k)
		}
		seen[k] = true
		if v == "" {
			return c, fmt.Errorf("%w: connection string has an empty %s", ErrMalformed, k)
		}
		*dst = v
	}
	if x509 != "" {
		// Only "true", as the spec and the C SDK have it; the key names
		// are matched exactly too.
		if x509 != "true" {
			return c, fmt.Errorf("%w: connection string x509 must be true", ErrMalformed)
		}
		c.X509 = true
	}
	return c, c.check()
}

// check enforces the combinations of fields a connection string may have.
func (c ConnectionString) check() error {
	bad := func(why string) error { return fmt.Errorf("%w: connection string %s", ErrMalformed, why) }
	if c.HostName == "" {
		return bad("has no HostName")
	}
	if c.SharedAccessKey != "" {
		if b, err := base64.StdEncoding.DecodeString(c.SharedAccessKey); err != nil || len(b) == 0 {
			return bad("has a SharedAccessKey that is not base64")
		}
	}
	if c.DeviceID == "" {
		switch {
		case c.ModuleID != "":
			return bad("has a ModuleId but no DeviceId")
		case c.SharedAccessKeyName == "":
			return bad("has neither DeviceId nor SharedAccessKeyName")
		case c.SharedAccessKey == "":
			return bad("has a SharedAccessKeyName but no SharedAccessKey")
		case c.SharedAccessSignature != "" || c.X509:
			return bad("for a policy may not have SharedAccessSignature or x509")
		}
		return nil
	}
	n := 0
	for _, set := range []bool{c.SharedAccessKey != "", c.SharedAccessSignature != "", c.X509} {
		if set {
			n++
		}
	}
	if n != 1 {
		return bad("for a device needs exactly one of SharedAccessKey, SharedAccessSignature and x509=true")
	}
	if c.SharedAccessSignature != "" {
		if _, err := ParseSAS(c.SharedAccessSignature); err != nil {
			return fmt.Errorf("connection string SharedAccessSignature: %w", err)
		}
	}
	return nil
}

// String formats c as a connection string, fields in the order of the
// type's declaration. It does not check c.
func (c ConnectionString) String() string {
	var b strings.Builder
	add := func(k, v string) {
		if v != "" {
			if b.Len() > 0 {
				b.WriteByte(';')
			}
			b.WriteString(k + "=" + v)
		}
	}
	add("HostName", c.HostName)
	add("DeviceId", c.DeviceID)
	add("ModuleId", c.ModuleID)
	add("SharedAccessKeyName", c.SharedAccessKeyName)
	add("SharedAccessKey", c.SharedAccessKey)
	add("SharedAccessSignature", c.SharedAccessSignature)
	if c.X509 {
		add("x509", "true")
	}
	add("GatewayHostName", c.GatewayHostName)
	return b.String()
}

// Resource returns the resource a token for c covers: HostName, plus
// /devices/{DeviceId} and /modules/{ModuleId} when present.
func (c ConnectionString) Resource() string {
	r := c.HostName
	if c.DeviceID != "" {
		r += "/devices/" + c.DeviceID
		if c.ModuleID != "" {
			r += "/modules/" + c.ModuleID
		}
	}
	return r
}

// Token returns a SAS token for c valid until expiry, signed with
// SharedAccessKey as the SDKs sign it, with skn when c names a policy. A
// connection string that carries a SharedAccessSignature returns it as is.
func (c ConnectionString) Token(expiry time.Time) (string, error) {
	if c.SharedAccessSignature != "" {
		return c.SharedAccessSignature, nil
	}
	if c.SharedAccessKey == "" {
		return "", fmt.Errorf("%w: connection string has no SharedAccessKey to sign with", ErrMalformed)
	}
	return NewSAS(c.Resource(), c.SharedAccessKey, c.SharedAccessKeyName, expiry)
}
