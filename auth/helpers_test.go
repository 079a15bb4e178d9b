package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit/auth"
)

// testHost is the hub host name of the tests.
const testHost = "myhub.azure-devices.net"

// testNow is the tests' fixed clock: before the vectors' expiry 1795637597.
var testNow = time.Unix(1795630000, 0)

// clock is a settable clock for the code under test.
type clock struct{ t atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.t.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) Add(d time.Duration) { c.t.Add(int64(d)) }

func newRegistry(t testing.TB, kv *countingKV, onChange func(auth.Change)) *auth.Registry {
	t.Helper()
	r, err := auth.NewRegistry(auth.RegistryConfig{KV: kv, OnChange: onChange, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newPolicies(t testing.TB, kv *countingKV) *auth.Policies {
	t.Helper()
	p, err := auth.NewPolicies(context.Background(), kv, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// certAuthority is a CA that issues certificates.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial atomic.Int64

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue makes a certificate for cn, valid from notBefore to notAfter,
// signed by ca, or self-signed when ca is nil.
func issue(t testing.TB, ca *certAuthority, cn string, isCA bool, notBefore, notAfter time.Time) *certAuthority {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &certAuthority{cert: c, key: key}
}

// validFor returns the usual validity window around the test clock.
func validFor() (time.Time, time.Time) {
	return testNow.Add(-time.Hour), testNow.Add(365 * 24 * time.Hour)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// noErr fails the test at once when a setup call failed.
func noErr(t testing.TB, errs ...error) {
	t.Helper()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// errOf returns the error of a call that also returns a value, for noErr.
func errOf[T any](_ T, err error) error { return err }
