package auth

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hubkit/hubkit"
)

// Thumbprints returns the SHA-1 and SHA-256 thumbprints of a DER
// certificate as upper-case hex, as IoT Hub shows them.
func Thumbprints(der []byte) (sha1Hex, sha256Hex string) {
	s1 := sha1.Sum(der)
	s2 := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(s1[:])), strings.ToUpper(hex.EncodeToString(s2[:]))
}

// ValidateThumbprint checks that t is a SHA-1 (40 hex digits) or SHA-256
// (64 hex digits) thumbprint, in either case.
func ValidateThumbprint(t string) error {
	if (len(t) != 2*sha1.Size && len(t) != 2*sha256.Size) || !isHexString(t) {
		return fmt.Errorf("%w: thumbprint must be 40 (SHA-1) or 64 (SHA-256) hex digits", hubkit.ErrArgumentInvalid)
	}
	return nil
}

func isHexString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// MatchThumbprint reports whether the DER certificate has thumbprint t,
// SHA-1 or SHA-256 by t's length, hex compared case-insensitively. An
// empty or malformed t matches nothing.
func MatchThumbprint(der []byte, t string) bool {
	if ValidateThumbprint(t) != nil {
		return false
	}
	s1, s2 := Thumbprints(der)
	return strings.EqualFold(t, s1) || strings.EqualFold(t, s2)
}

// errNoCert is returned for an empty chain or a nil leaf.
var errNoCert = errors.New("no client certificate")

// checkValidity checks the leaf's validity dates at now.
func checkValidity(leaf *x509.Certificate, now time.Time) error {
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// verifyThumbprint checks a self-signed device's presented chain: the leaf
// must match the primary or the secondary thumbprint and be valid at now.
func verifyThumbprint(chain []*x509.Certificate, primary, secondary string, now time.Time) error {
	if len(chain) == 0 || chain[0] == nil {
		return errNoCert
	}
	leaf := chain[0]
	if !MatchThumbprint(leaf.Raw, primary) && !MatchThumbprint(leaf.Raw, secondary) {
		s1, s2 := Thumbprints(leaf.Raw)
		return fmt.Errorf("thumbprint does not match configuration: Thumbprint: SHA1Hash=%s, SHA2Hash=%s", s1, s2)
	}
	return checkValidity(leaf, now)
}

// verifyCA checks a CA-signed device's presented chain: it must verify to
// one of roots at now, and the leaf's common name must be the identity
// (deviceID, or deviceID/moduleID).
func verifyCA(chain []*x509.Certificate, roots *x509.CertPool, deviceID, moduleID string, now time.Time) error {
	if len(chain) == 0 || chain[0] == nil {
		return errNoCert
	}
	if roots == nil {
		return errors.New("no CA certificate is registered")
	}
	leaf := chain[0]
	want := deviceID
	if moduleID != "" {
		want += "/" + moduleID
	}
	if leaf.Subject.CommonName != want {
		return fmt.Errorf("certificate common name %q is not %q", clip(leaf.Subject.CommonName), want)
	}
	if err := checkValidity(leaf, now); err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			inter.AddCert(c)
		}
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		// Device certificates often carry no extended key usage; IoT Hub
		// does not insist on clientAuth.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("certificate chain does not verify to a registered CA: %w", err)
	}
	return nil
}
