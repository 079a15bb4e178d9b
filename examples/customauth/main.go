// Customauth is a hub whose devices authenticate with the program's own
// rule instead of IoT Hub's SAS tokens: here a static table of device ids
// and secrets, given as the MQTT password. Everything else is the default.
//
//	go run ./examples/customauth -tokens 'sensor-1=s3cret,sensor-2=hunter2'
//	mosquitto_pub -i sensor-1 -u 'localhost/sensor-1/?api-version=2021-04-12' -P s3cret \
//	  -t devices/sensor-1/messages/events/ -q 1 -m hello
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/route"
)

func main() {
	dir := flag.String("data", "", "store directory (empty: a temporary one, removed on exit)")
	addr := flag.String("mqtt", "127.0.0.1:1883", "MQTT address")
	tokens := flag.String("tokens", "sensor-1=s3cret", "comma-separated deviceId=secret pairs")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *dir, *addr, *tokens); err != nil {
		log.Error("customauth stopped", "err", err)
		os.Exit(1)
	}
}

// tokenTable returns an Authenticator that admits a device when its
// password is the secret the table holds for it. It is safe for concurrent
// use because it never writes the map.
func tokenTable(secrets map[string]string) auth.Authenticator {
	return auth.AuthenticatorFunc(func(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
		want, ok := secrets[c.DeviceID]
		if !ok || c.ModuleID != "" || subtle.ConstantTimeCompare([]byte(c.Password), []byte(want)) != 1 {
			return auth.Identity{}, fmt.Errorf("customauth: device %q: %w", c.DeviceID, auth.ErrDenied)
		}
		return auth.Identity{
			DeviceID: c.DeviceID,
			// Method is stamped on messages as iothub-connection-auth-method.
			Method: auth.AuthMethod{Scope: "device", Type: "token", Issuer: "external"},
		}, nil
	})
}

func run(log *slog.Logger, dir, addr, tokens string) error {
	secrets := map[string]string{}
	for pair := range strings.SplitSeq(tokens, ",") {
		id, secret, ok := strings.Cut(pair, "=")
		if !ok || id == "" || secret == "" {
			return fmt.Errorf("customauth: -tokens: %q is not deviceId=secret", pair)
		}
		secrets[id] = secret
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "hubkit-customauth-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mb, err := mqtt.New(mqtt.Options{TCPAddr: addr, Logger: log})
	if err != nil {
		return err
	}
	printer := endpoint.Func("print", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		for _, m := range batch {
			fmt.Printf("telemetry from %s: %s\n", m.System.ConnectionDeviceID, m.Body)
		}
		return len(batch), nil
	})
	routes, err := route.New(route.Config{Routing: route.Routing{Routes: []route.Route{
		{Name: "all", Source: route.DeviceMessages, Endpoint: "print"},
	}}})
	if err != nil {
		return err
	}
	h, err := hub.New(hub.Config{
		HostName:      "localhost",
		Dir:           dir,
		Authenticator: tokenTable(secrets),
		Brokers:       []broker.Broker{mb},
		Router:        routes,
		Endpoints:     []hub.Endpoint{{Name: "print", Endpoint: printer}},
		Logger:        log,
	})
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		return errors.Join(err, h.Close())
	}

	// The registry still holds the devices, for their connection state
	// and cloud-to-device queues; with authentication type "none" IoT Hub's
	// own rules would admit none of them.
	for id := range secrets {
		_, err = h.CreateDevice(ctx, auth.Device{DeviceID: id, Authentication: auth.Authentication{Type: auth.AuthNone}})
		if errors.Is(err, hubkit.ErrDeviceAlreadyExists) {
			err = nil
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		log.Info("ready", "mqtt", mb.TCPAddr(), "data", dir, "devices", len(secrets))
		<-ctx.Done()
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, h.Shutdown(sctx))
}
