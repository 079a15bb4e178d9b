package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/queue/memory"
)

// A hub's default authenticator: a registry kept in the store, the
// default shared access policies, and a device connecting over MQTT with
// a token minted from its connection string.
func ExampleNew() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()

	reg, err := auth.NewRegistry(auth.RegistryConfig{KV: store})
	if err != nil {
		log.Fatal(err)
	}
	policies, err := auth.NewPolicies(ctx, store, "")
	if err != nil {
		log.Fatal(err)
	}
	a, err := auth.New(auth.Config{Registry: reg, HostName: "hub.example", Policies: policies})
	if err != nil {
		log.Fatal(err)
	}

	dev, err := reg.Create(ctx, auth.Device{DeviceID: "thermostat-1"})
	if err != nil {
		log.Fatal(err)
	}
	cs := auth.ConnectionString{HostName: "hub.example", DeviceID: dev.DeviceID, SharedAccessKey: dev.Authentication.SymmetricKey.PrimaryKey}
	token, err := cs.Token(time.Now().Add(time.Hour))
	if err != nil {
		log.Fatal(err)
	}

	id, err := a.Authenticate(ctx, auth.Credentials{Protocol: auth.MQTT, DeviceID: "thermostat-1", Password: token})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.DeviceID, id.Method.JSON())
	fmt.Println(id.MayPublish("devices/thermostat-1/messages/events/"), id.MayPublish("devices/thermostat-2/messages/events/"))
	// Output:
	// thermostat-1 {"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}
	// true false
}

// A token computed as the Azure IoT SDKs compute it.
func ExampleNewSAS() {
	key := "aHVia2l0LWRldmljZS1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="
	token, err := auth.NewSAS("localhost/devices/dev-1", key, "", time.Unix(1795637597, 0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(token)
	s, err := auth.ParseSAS(token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Resource, s.Expiry, s.Verify(key))
	// Output:
	// SharedAccessSignature sr=localhost%2Fdevices%2Fdev-1&sig=AMKH4cO6an%2ByBzY3imit5dYz%2B%2B7LhiJWovV%2BU%2BpMcU0%3D&se=1795637597
	// localhost%2Fdevices%2Fdev-1 1795637597 true
}

func ExampleParseConnectionString() {
	c, err := auth.ParseConnectionString("HostName=hub.example;DeviceId=dev-1;ModuleId=m1;SharedAccessKey=aHVia2l0LW1vZHVsZS1rZXktMDEyMzQ1Njc4OWFiY2RlZg==")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Resource())
	_, err = auth.ParseConnectionString("HostName=hub.example;DeviceId=dev-1")
	fmt.Println(err)
	// Output:
	// hub.example/devices/dev-1/modules/m1
	// auth: malformed credential: connection string for a device needs exactly one of SharedAccessKey, SharedAccessSignature and x509=true
}

// The hub disconnects identities that a registry write disables or removes.
func ExampleRegistryConfig_onChange() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	reg, err := auth.NewRegistry(auth.RegistryConfig{KV: store, OnChange: func(c auth.Change) {
		if !c.Enabled {
			fmt.Println("disconnect", c.DeviceID)
		}
	}})
	if err != nil {
		log.Fatal(err)
	}
	d, _ := reg.Create(ctx, auth.Device{DeviceID: "dev-1"})
	d.Status = auth.StatusDisabled
	if _, err := reg.Update(ctx, d, d.ETag); err != nil {
		log.Fatal(err)
	}
	// Output:
	// disconnect dev-1
}

// A custom authenticator: devices of a fixed list, each with its own
// password, connecting over MQTT. Anything else is denied with an error
// wrapping auth.ErrDenied, which the broker turns into a refusal.
func ExampleAuthenticatorFunc() {
	passwords := map[string]string{"sensor-1": "s3cret"}
	var a auth.Authenticator = auth.AuthenticatorFunc(func(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
		if err := ctx.Err(); err != nil {
			return auth.Identity{}, err
		}
		want, ok := passwords[c.DeviceID]
		if !ok || c.Protocol != auth.MQTT || c.ModuleID != "" || c.Password != want {
			return auth.Identity{}, fmt.Errorf("%w: device %q", auth.ErrDenied, c.DeviceID)
		}
		return auth.Identity{DeviceID: c.DeviceID, Method: auth.AuthMethod{Scope: "device", Type: "sas", Issuer: "iothub"}}, nil
	})

	ctx := context.Background()
	id, err := a.Authenticate(ctx, auth.Credentials{Protocol: auth.MQTT, DeviceID: "sensor-1", Password: "s3cret"})
	fmt.Println(id.DeviceID, err)
	_, err = a.Authenticate(ctx, auth.Credentials{Protocol: auth.MQTT, DeviceID: "sensor-1", Password: "guess"})
	fmt.Println(errors.Is(err, auth.ErrDenied), err)
	// Output:
	// sensor-1 <nil>
	// true auth: denied: device "sensor-1"
}
