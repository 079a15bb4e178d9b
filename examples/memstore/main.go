// Memstore is the minimal hub with its storage swapped: everything is kept
// in memory (queue/memory) instead of Pebble on disk, so nothing survives a
// restart. Any queue.DurableQueue plugs in the same way.
//
//	go run ./examples/memstore
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
	"github.com/hubkit/hubkit/queue/memory"
	"github.com/hubkit/hubkit/route"
)

func main() {
	addr := flag.String("mqtt", "127.0.0.1:1883", "MQTT address")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *addr); err != nil {
		log.Error("memstore stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The hub closes only a store it opened itself; this one is ours.
	store := memory.New(memory.Options{})
	defer store.Close()

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
		HostName:  "localhost",
		Queue:     store,
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
	if err == nil {
		cs := auth.ConnectionString{HostName: h.HostName(), DeviceID: d.DeviceID, SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey}
		fmt.Println("device connection string:", cs)
		log.Info("ready", "mqtt", mb.TCPAddr())
		<-ctx.Done()
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, h.Shutdown(sctx))
}
