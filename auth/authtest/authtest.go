package authtest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hubkit/hubkit/auth"
)

// Kind is a kind of credentials a harness mints.
type Kind int

// The kinds of credentials.
const (
	// Valid credentials authenticate the device they were minted for.
	Valid Kind = iota
	// WrongKey credentials are well formed but signed or issued with a key
	// the hub does not hold for the device.
	WrongKey
	// Expired credentials were valid once and expired beyond any allowed
	// clock skew.
	Expired
	// NotYetValid credentials become valid only in the future.
	NotYetValid
)

// String names the kind, for test messages.
func (k Kind) String() string {
	if k < Valid || k > NotYetValid {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return [...]string{"valid", "wrong key", "expired", "not yet valid"}[k]
}

// An Env is one authenticator under test and the means to drive it.
type Env struct {
	// Authenticator is the implementation under test.
	Authenticator auth.Authenticator
	// CreateDevice registers an enabled device with id.
	CreateDevice func(ctx context.Context, id string) error
	// SetEnabled enables or disables a registered device; it takes effect
	// for the next Authenticate call.
	SetEnabled func(ctx context.Context, id string, enabled bool) error
	// Mint returns credentials of kind k for device id, which may be
	// registered or not, with Protocol and DeviceID set. It returns false
	// when the implementation has no such credentials (SAS tokens are
	// never NotYetValid); the suite then leaves that case out.
	Mint func(t *testing.T, id string, k Kind) (auth.Credentials, bool)
}

// Harness tells Run how to build the authenticator under test.
type Harness struct {
	// New returns a fresh Env, with an empty registry; Run calls it once
	// per test and may call it from parallel tests. Cleanup goes in
	// t.Cleanup.
	New func(t *testing.T) Env
}

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	t.Run("Valid", func(t *testing.T) { testKinds(t, h, Valid) })
	t.Run("WrongKey", func(t *testing.T) { testKinds(t, h, WrongKey) })
	t.Run("Expired", func(t *testing.T) { testKinds(t, h, Expired) })
	t.Run("NotYetValid", func(t *testing.T) { testKinds(t, h, NotYetValid) })
	t.Run("WrongDevice", func(t *testing.T) { testWrongDevice(t, h) })
	t.Run("UnknownDevice", func(t *testing.T) { testUnknownDevice(t, h) })
	t.Run("Disabled", func(t *testing.T) { testDisabled(t, h) })
	t.Run("Malformed", func(t *testing.T) { testMalformed(t, h) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, h) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, h) })
}

func setup(t *testing.T, h Harness, ids ...string) Env {
	t.Helper()
	env := h.New(t)
	for _, id := range ids {
		if err := env.CreateDevice(context.Background(), id); err != nil {
			t.Fatalf("CreateDevice(%q): %v", id, err)
		}
	}
	return env
}

// check calls Authenticate and checks the outcome; want nil means success.
func check(t *testing.T, env Env, c auth.Credentials, rule string, wantOK bool) {
	t.Helper()
	if err := authenticate(env, c, wantOK); err != nil {
		t.Errorf("%s: %v", rule, err)
	}
}

// authenticate returns a description of what went wrong, or nil. It
// converts a panic into an error, so that concurrent callers report it.
func authenticate(env Env, c auth.Credentials, wantOK bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("Authenticate panicked: %v", p)
		}
	}()
	id, aerr := env.Authenticator.Authenticate(context.Background(), c)
	switch {
	case wantOK && aerr != nil:
		return fmt.Errorf("Authenticate = %v, want success", aerr)
	case wantOK && (id.DeviceID != c.DeviceID || id.ModuleID != c.ModuleID):
		return fmt.Errorf("Authenticate gave identity %q/%q, want %q/%q", id.DeviceID, id.ModuleID, c.DeviceID, c.ModuleID)
	case wantOK && (id.Method.Scope == "" || id.Method.Type == "" || id.Method.Issuer == ""):
		return fmt.Errorf("Authenticate gave an incomplete auth method %+v", id.Method)
	case !wantOK && aerr == nil:
		return fmt.Errorf("Authenticate succeeded as %q, want an error wrapping auth.ErrDenied", id.DeviceID)
	case !wantOK && !errors.Is(aerr, auth.ErrDenied):
		return fmt.Errorf("Authenticate = %v, want an error wrapping auth.ErrDenied", aerr)
	}
	return nil
}

func testKinds(t *testing.T, h Harness, k Kind) {
	env := setup(t, h, "dev-1")
	c, ok := env.Mint(t, "dev-1", k)
	if !ok {
		if k == Valid || k == WrongKey {
			t.Fatalf("Mint(%v) is required", k)
		}
		t.Logf("the harness mints no %v credentials; nothing to check", k)
		return
	}
	check(t, env, c, fmt.Sprintf("%v credentials of a registered, enabled device", k), k == Valid)
}

func testWrongDevice(t *testing.T, h Harness) {
	env := setup(t, h, "dev-a", "dev-b")
	c, _ := env.Mint(t, "dev-a", Valid)
	c.DeviceID = "dev-b"
	check(t, env, c, "credentials of dev-a presented as dev-b", false)
	c.DeviceID = "DEV-A"
	check(t, env, c, "credentials of dev-a presented as DEV-A (ids are case-sensitive; DEV-A is not registered)", false)
}

func testUnknownDevice(t *testing.T, h Harness) {
	env := setup(t, h, "dev-1")
	c, _ := env.Mint(t, "ghost", Valid)
	check(t, env, c, "valid-looking credentials of an unregistered device", false)
}

func testDisabled(t *testing.T, h Harness) {
	ctx := context.Background()
	env := setup(t, h, "dev-1")
	c, _ := env.Mint(t, "dev-1", Valid)
	check(t, env, c, "valid credentials before disabling", true)
	if err := env.SetEnabled(ctx, "dev-1", false); err != nil {
		t.Fatalf("SetEnabled(false): %v", err)
	}
	check(t, env, c, "valid credentials of a disabled device (a disable takes effect at once)", false)
	if err := env.SetEnabled(ctx, "dev-1", true); err != nil {
		t.Fatalf("SetEnabled(true): %v", err)
	}
	check(t, env, c, "valid credentials after enabling the device again", true)
}

func testMalformed(t *testing.T, h Harness) {
	env := setup(t, h, "dev-1")
	valid, _ := env.Mint(t, "dev-1", Valid)
	huge := strings.Repeat("A", 1<<20)
	passwords := map[string]string{
		"garbage":         "not a token",
		"prefix only":     "SharedAccessSignature",
		"prefix space":    "SharedAccessSignature ",
		"empty fields":    "SharedAccessSignature sr=&sig=&se=",
		"no equals":       "SharedAccessSignature sr&sig&se",
		"bad escapes":     "SharedAccessSignature sr=%zz&sig=%&se=%1",
		"negative expiry": "SharedAccessSignature sr=h%2Fdevices%2Fdev-1&sig=AAAA&se=-1",
		"huge expiry":     "SharedAccessSignature sr=h%2Fdevices%2Fdev-1&sig=AAAA&se=99999999999999999999999",
		"invalid UTF-8":   "SharedAccessSignature sr=\xff\xfe&sig=\x00&se=1",
		"huge":            huge,
		"huge token":      "SharedAccessSignature sr=" + huge + "&sig=x&se=1",
		"many fields":     "SharedAccessSignature " + strings.Repeat("a=b&", 5000) + "sr=x&sig=y&se=1",
	}
	for name, p := range passwords {
		c := valid
		c.Password, c.PeerCertificates = p, nil
		check(t, env, c, "password "+name, false)
	}
	certs := map[string][]*x509.Certificate{
		"no certificate":      nil,
		"nil certificate":     {nil},
		"empty certificate":   {{}},
		"nil after empty one": {{}, nil},
	}
	for name, cs := range certs {
		c := valid
		c.Password, c.PeerCertificates = "", cs
		check(t, env, c, "certificates: "+name, false)
	}
	for name, id := range map[string]string{
		"empty":         "",
		"slash":         "dev-1/x",
		"too long":      strings.Repeat("d", 1000),
		"NUL":           "dev-1\x00",
		"invalid UTF-8": "dev\xff",
	} {
		c := valid
		c.DeviceID = id
		check(t, env, c, "device id "+name, false)
	}
	check(t, env, auth.Credentials{}, "empty credentials", false)
}

func testCancelled(t *testing.T, h Harness) {
	env := setup(t, h, "dev-1")
	c, _ := env.Mint(t, "dev-1", Valid)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := env.Authenticator.Authenticate(ctx, c)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Authenticate with a cancelled context = %v, want an error wrapping context.Canceled", err)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	env := setup(t, h, "dev-a", "dev-b")
	var creds [2][2]auth.Credentials // [device][valid, wrong key]
	for i, id := range []string{"dev-a", "dev-b"} {
		creds[i][0], _ = env.Mint(t, id, Valid)
		creds[i][1], _ = env.Mint(t, id, WrongKey)
	}
	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				dev, bad := (w+r)%2, r%3 == 0
				c := creds[dev][0]
				if bad {
					c = creds[dev][1]
				}
				if err := authenticate(env, c, !bad); err != nil {
					t.Errorf("concurrent use, worker %d round %d: %v", w, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
