package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sasPrefix starts every SAS token: the literal word and one space.
const sasPrefix = "SharedAccessSignature "

// MaxSASLength is the longest SAS token ParseSAS accepts, in bytes. The
// longest legitimate token (a module-scoped resource with 128-character ids,
// every byte percent-encoded) is well under it.
const MaxSASLength = 4096

// ClockSkew is how long after its expiry a SAS token is still accepted, to
// allow for device clocks that run slow (IoT Hub allows 5 minutes).
const ClockSkew = 300 * time.Second

// ErrMalformed is wrapped by the parse errors of ParseSAS and
// ParseConnectionString.
var ErrMalformed = errors.New("auth: malformed credential")

// A SAS is a parsed shared access signature token:
//
//	SharedAccessSignature sr=<resource>&sig=<signature>&se=<expiry>[&skn=<policy>]
//
// SAS values are plain values, safe to copy and share.
type SAS struct {
	// Resource is the sr field exactly as it appears in the token, still
	// URL-encoded: the signature covers this text, so it is never changed.
	Resource string
	// Signature is the HMAC-SHA256 digest the token carries (sig, URL- and
	// base64-decoded).
	Signature [sha256.Size]byte
	// Expiry is se: the expiry in seconds since the Unix epoch.
	Expiry int64
	// KeyName is skn, URL-decoded: the shared access policy that signed the
	// token, or empty when a device or module key signed it.
	KeyName string

	// expiryText is se as sent, which the signature covers (it may carry
	// leading zeros that Expiry lost). Empty means strconv of Expiry.
	expiryText string
}

// ParseSAS parses a SAS token. Field names are matched case-insensitively
// and may come in any order; sr, sig and se are required, skn is optional,
// other fields are ignored, and a field given twice is an error. Errors wrap
// ErrMalformed and never quote the signature. ParseSAS does not allocate
// unless skn or se are percent-encoded.
func ParseSAS(token string) (SAS, error) {
	var s SAS
	if len(token) > MaxSASLength {
		return s, fmt.Errorf("%w: SAS token is %d bytes long, the limit is %d", ErrMalformed, len(token), MaxSASLength)
	}
	rest, ok := strings.CutPrefix(token, sasPrefix)
	if !ok {
		return s, fmt.Errorf("%w: SAS token does not start with %q", ErrMalformed, sasPrefix)
	}
	var haveSig, haveSE, haveSKN bool
	var sig string
	for rest != "" {
		var field string
		field, rest, _ = strings.Cut(rest, "&")
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return s, fmt.Errorf("%w: SAS token field %q has no '='", ErrMalformed, clip(name))
		}
		var seen *bool
		switch {
		case strings.EqualFold(name, "sr"):
			if s.Resource != "" {
				return s, fmt.Errorf("%w: SAS token has two sr fields", ErrMalformed)
			}
			s.Resource = value
			if value == "" {
				return s, fmt.Errorf("%w: SAS token has an empty sr", ErrMalformed)
			}
			continue
		case strings.EqualFold(name, "sig"):
			seen, sig = &haveSig, value
		case strings.EqualFold(name, "se"):
			seen, s.expiryText = &haveSE, value
		case strings.EqualFold(name, "skn"):
			seen, s.KeyName = &haveSKN, value
		default:
			continue
		}
		if *seen {
			return s, fmt.Errorf("%w: SAS token has two %s fields", ErrMalformed, strings.ToLower(name))
		}
		*seen = true
	}
	switch {
	case s.Resource == "":
		return s, fmt.Errorf("%w: SAS token has no sr", ErrMalformed)
	case !haveSig:
		return s, fmt.Errorf("%w: SAS token has no sig", ErrMalformed)
	case !haveSE:
		return s, fmt.Errorf("%w: SAS token has no se", ErrMalformed)
	}
	if err := decodeSig(&s.Signature, sig); err != nil {
		return s, err
	}
	if haveSKN {
		name, ok := unescapeString(s.KeyName)
		if !ok || name == "" {
			return s, fmt.Errorf("%w: SAS token skn is empty or badly percent-encoded", ErrMalformed)
		}
		s.KeyName = name
	}
	se, ok := unescapeString(s.expiryText)
	if !ok {
		return s, fmt.Errorf("%w: SAS token se is badly percent-encoded", ErrMalformed)
	}
	if !isDigits(se) || len(se) > 18 {
		return s, fmt.Errorf("%w: SAS token se %q is not a number of seconds", ErrMalformed, clip(se))
	}
	s.Expiry, _ = strconv.ParseInt(se, 10, 64)
	return s, nil
}

// decodeSig URL- and base64-decodes sig into d without allocating.
func decodeSig(d *[sha256.Size]byte, sig string) error {
	var esc [64]byte
	b, ok := unescape(esc[:0], sig)
	var raw [sha256.Size + 2]byte
	if ok && base64.StdEncoding.DecodedLen(len(b)) <= len(raw) {
		n, err := base64.StdEncoding.Decode(raw[:], b)
		if err == nil && n == sha256.Size {
			*d = [sha256.Size]byte(raw[:sha256.Size])
			return nil
		}
	}
	return fmt.Errorf("%w: SAS token sig is not a base64 HMAC-SHA256 digest", ErrMalformed)
}

// String formats s as a token. A token from ParseSAS formats to an
// equivalent token (fields in the SDKs' order sr, sig, skn, se).
func (s SAS) String() string {
	var b strings.Builder
	b.WriteString(sasPrefix + "sr=")
	b.WriteString(s.Resource)
	b.WriteString("&sig=")
	b.WriteString(escapeStrict(base64.StdEncoding.EncodeToString(s.Signature[:])))
	if s.KeyName != "" {
		b.WriteString("&skn=")
		b.WriteString(escapeStrict(s.KeyName))
	}
	b.WriteString("&se=")
	b.WriteString(s.se())
	return b.String()
}

func (s *SAS) se() string {
	if s.expiryText != "" {
		return s.expiryText
	}
	return strconv.FormatInt(s.Expiry, 10)
}

// Expired reports whether the token is too old to accept at now: its
// expiry plus ClockSkew has passed.
func (s SAS) Expired(now time.Time) bool {
	return now.Unix() > s.Expiry+int64(ClockSkew/time.Second)
}

// Verify reports, in constant time, whether key (base64-encoded, as in
// connection strings and the registry) signed s. A key that is not valid
// base64 verifies nothing.
func (s SAS) Verify(key string) bool {
	k, err := newMACKey(key)
	return err == nil && k.verify(&s)
}

// NewSAS returns a token for resource (host name and optional path, not
// encoded: it is encoded here as the Azure IoT SDKs do), signed with key
// (base64) and valid until expiry. keyName is the shared access policy name
// for policy keys, and empty for device and module keys.
func NewSAS(resource, key, keyName string, expiry time.Time) (string, error) {
	k, err := newMACKey(key)
	if err != nil {
		return "", err
	}
	s := SAS{Resource: escapeStrict(resource), Expiry: expiry.Unix(), KeyName: keyName}
	k.sum(&s.Signature, &s)
	return s.String(), nil
}

// A macKey is a decoded symmetric key with a pool of HMACs keyed by it, so
// that verifying a token allocates nothing.
type macKey struct {
	pool sync.Pool // of *macState
}

type macState struct {
	h   hash.Hash
	buf []byte
}

// newMACKey decodes a base64 key. Keys of any non-zero length are accepted
// here; the registry enforces IoT Hub's 16-64 bytes on the keys it stores.
func newMACKey(b64 string) (*macKey, error) {
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: key is not non-empty base64", ErrMalformed)
	}
	k := &macKey{}
	k.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return k, nil
}

// sum computes the signature of s into d.
func (k *macKey) sum(d *[sha256.Size]byte, s *SAS) {
	m := k.pool.Get().(*macState)
	m.h.Reset()
	m.buf = append(append(append(m.buf[:0], s.Resource...), '\n'), s.se()...)
	m.h.Write(m.buf)
	m.buf = m.h.Sum(m.buf[:0])
	copy(d[:], m.buf)
	k.pool.Put(m)
}

// verify reports in constant time whether k signed s.
func (k *macKey) verify(s *SAS) bool {
	var d [sha256.Size]byte
	k.sum(&d, s)
	return hmac.Equal(d[:], s.Signature[:])
}

// A keyPair is a primary and a secondary key, either possibly nil.
type keyPair struct{ primary, secondary *macKey }

// verify checks the primary key, then the secondary key.
func (p keyPair) verify(s *SAS) bool {
	return p.primary != nil && p.primary.verify(s) || p.secondary != nil && p.secondary.verify(s)
}

// clip shortens text quoted in error messages.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
