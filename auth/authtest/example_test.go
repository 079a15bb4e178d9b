package authtest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/auth/authtest"
)

// passwords is a user's own Authenticator: a registered, enabled device
// connects with the password "secret-" followed by its id.
type passwords struct {
	mu      sync.Mutex      // guards enabled
	enabled map[string]bool // device id -> enabled; absent when unknown
}

func (p *passwords) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	if err := ctx.Err(); err != nil {
		return auth.Identity{}, err
	}
	p.mu.Lock()
	enabled := p.enabled[c.DeviceID]
	p.mu.Unlock()
	if !enabled || c.ModuleID != "" || c.Password != "secret-"+c.DeviceID {
		return auth.Identity{}, fmt.Errorf("%w: device %q", auth.ErrDenied, c.DeviceID)
	}
	return auth.Identity{DeviceID: c.DeviceID, Method: auth.AuthMethod{Scope: "device", Type: "sas", Issuer: "iothub"}}, nil
}

func (p *passwords) setEnabled(_ context.Context, id string, on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enabled[id] = on
	return nil
}

// An implementation runs the suite from a test of its own; its harness
// registers devices and mints their credentials. Run needs the *testing.T
// that go test gives a test function, so this example is compiled but not
// run: the body of testConformance is what goes in the implementation's
// func TestConformance(t *testing.T).
func ExampleRun() {
	testConformance := func(t *testing.T) {
		authtest.Run(t, authtest.Harness{New: func(t *testing.T) authtest.Env {
			p := &passwords{enabled: make(map[string]bool)}
			return authtest.Env{
				Authenticator: p,
				CreateDevice:  func(ctx context.Context, id string) error { return p.setEnabled(ctx, id, true) },
				SetEnabled:    p.setEnabled,
				Mint: func(t *testing.T, id string, k authtest.Kind) (auth.Credentials, bool) {
					c := auth.Credentials{Protocol: auth.MQTT, DeviceID: id}
					switch k {
					case authtest.Valid:
						c.Password = "secret-" + id
					case authtest.WrongKey:
						c.Password = "secret-of-another-device"
					default: // passwords do not expire
						return auth.Credentials{}, false
					}
					return c, true
				},
			}
		}})
	}
	_ = testConformance
}
