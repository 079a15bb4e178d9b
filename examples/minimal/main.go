// Minimal is the smallest hubkit hub: plain MQTT on loopback, a Pebble
// store, one device, and every telemetry message printed.
//
//	go run ./examples/minimal
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
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
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *dir, *addr); err != nil {
		log.Error("minimal stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, dir, addr string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "hubkit-minimal-")
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
	// Every device message goes to "print", a Go function.
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
		HostName:  "localhost",
		Dir:       dir,
		Brokers:   []broker.Broker{mb},
		Router:    routes,
		Endpoints: []hub.Endpoint{{Name: "print", Endpoint: printer}},
		Logger:    log,
	})
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		return errors.Join(err, h.Close())
	}

	d, err := h.CreateDevice(ctx, auth.Device{DeviceID: "device-1"})
	if errors.Is(err, hubkit.ErrDeviceAlreadyExists) {
		d, err = h.GetDevice(ctx, "device-1")
	}
	if err == nil {
		cs := auth.ConnectionString{HostName: h.HostName(), DeviceID: d.DeviceID, SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey}
		fmt.Println("device connection string:", cs)
		log.Info("ready", "mqtt", mb.TCPAddr(), "data", dir)
		<-ctx.Done()
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, h.Shutdown(sctx))
}
