// Routing is a hub that routes device telemetry with IoT Hub's routing
// queries to several endpoints at once. It needs an AMQP 1.0 broker, such
// as RabbitMQ with its AMQP 1.0 plugin (or Azure Service Bus or Event Hubs):
//
//	alerts   $body.temperature > 30   -> a webhook (by default a receiver in this program that logs them)
//	archive  every message            -> JSON-lines files under -data/files, IoT Hub's storage layout
//	hot      processingPath = 'hot'   -> the AMQP node -amqp-address at -amqp-url
//	events   every message            -> the built-in events endpoint
//
// $body queries need JSON bodies sent with content type application/json
// and encoding utf-8, e.g. from ./examples/devicesim, which marks every
// fifth message processingPath=hot.
//
//	go run ./examples/routing -amqp-url amqp://guest:guest@127.0.0.1:5672
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/amqp"
	"github.com/hubkit/hubkit/endpoint/file"
	"github.com/hubkit/hubkit/endpoint/webhook"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/route"
)

const hostName = "localhost"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("routing stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	dir := flag.String("data", "", "directory of the store and the files (empty: a temporary one, removed on exit)")
	addr := flag.String("mqtt", "127.0.0.1:1883", "MQTT address")
	amqpURL := flag.String("amqp-url", "amqp://guest:guest@127.0.0.1:5672", "AMQP 1.0 broker of the hot path")
	amqpAddress := flag.String("amqp-address", "/queue/hubkit-hot", "AMQP node of the hot path (RabbitMQ: /queue/{name})")
	webhookURL := flag.String("webhook", "", "URL alerts are POSTed to (empty: a receiver in this program that logs them)")
	flag.Parse()

	if *dir == "" {
		tmp, err := os.MkdirTemp("", "hubkit-routing-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *webhookURL == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		receiver := &http.Server{Handler: logAlerts(log), ReadHeaderTimeout: 10 * time.Second}
		served := make(chan struct{})
		go func() {
			defer close(served)
			receiver.Serve(ln)
		}()
		// Stopped last, after the hub has closed the webhook endpoint.
		defer func() {
			receiver.Close()
			<-served
		}()
		*webhookURL = "http://" + ln.Addr().String() + "/alerts"
	}

	alerts, err := webhook.New(webhook.Options{Name: "alerts", URL: *webhookURL})
	if err != nil {
		return err
	}
	archive, err := file.New(file.Options{Name: "archive", Dir: filepath.Join(*dir, "files"), HubName: hostName})
	if err != nil {
		return err
	}
	hot, err := amqp.New(amqp.Options{
		Name:    "hotpath",
		URL:     *amqpURL,
		Address: *amqpAddress,
		HubName: hostName,
		// RabbitMQ ends the session when a message's user-id is not the
		// user it logged in as.
		OmitUserID: true,
	})
	if err != nil {
		return err
	}
	// Routes that match send a message to their endpoints only, so the
	// built-in endpoint, which the fallback route feeds when nothing
	// matched, gets a route of its own.
	routes, err := route.New(route.Config{HubName: hostName, Logger: log, Routing: route.Routing{Routes: []route.Route{
		{Name: "alerts", Source: route.DeviceMessages, Condition: "$body.temperature > 30", Endpoint: "alerts"},
		{Name: "archive", Source: route.DeviceMessages, Endpoint: "archive"},
		{Name: "hot", Source: route.DeviceMessages, Condition: "processingPath = 'hot'", Endpoint: "hotpath"},
		{Name: "events", Source: route.DeviceMessages, Endpoint: route.BuiltinEndpoint},
	}}})
	if err != nil {
		return err
	}
	mb, err := mqtt.New(mqtt.Options{TCPAddr: *addr, Logger: log})
	if err != nil {
		return err
	}
	h, err := hub.New(hub.Config{
		HostName: hostName,
		Dir:      filepath.Join(*dir, "store"),
		Brokers:  []broker.Broker{mb},
		Router:   routes,
		Endpoints: []hub.Endpoint{
			{Name: "alerts", Endpoint: alerts},
			// IoT Hub writes a storage file per batch: gather a few
			// seconds of messages in each.
			{Name: "archive", Endpoint: archive, Delivery: endpoint.DeliveryConfig{Linger: 5 * time.Second, MaxBatch: 1000}},
			{Name: "hotpath", Endpoint: hot},
		},
		Logger: log,
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
		cs := auth.ConnectionString{HostName: hostName, DeviceID: d.DeviceID, SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey}
		fmt.Println("device connection string:", cs)
		log.Info("ready", "mqtt", mb.TCPAddr(), "files", filepath.Join(*dir, "files"), "webhook", *webhookURL, "amqp", *amqpAddress)
		<-ctx.Done()
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, h.Shutdown(sctx)) // closes the endpoints too
}

// logAlerts is the webhook receiver used when no -webhook is given: it
// logs each alert, a JSON record of IoT Hub's storage format.
func logAlerts(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Warn("alert", "record", string(body))
		w.WriteHeader(http.StatusNoContent)
	})
}
