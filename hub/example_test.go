package hub_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/hub"
)

// A hub on Pebble in a directory: a device message goes in as a broker
// would hand it over, and comes out of the built-in events endpoint.
func Example() {
	dir, err := os.MkdirTemp("", "hubkit-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	h, err := hub.New(hub.Config{HostName: "myhub.example.com", Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		fmt.Println(err, h.Close())
		return
	}

	d, err := h.CreateDevice(ctx, auth.Device{DeviceID: "thermostat"})
	if err != nil {
		fmt.Println(err)
	}
	done := make(chan error, 1)
	id := auth.Identity{DeviceID: "thermostat", GenerationID: d.GenerationID}
	h.Ingest(ctx, id, &hubkit.Message{Body: []byte(`{"t":21.5}`)}, func(err error) { done <- err })
	fmt.Println("ingested:", <-done)

	events, err := h.Receive(ctx, hub.DefaultConsumerGroup, h.Partition("thermostat"), hub.Earliest(), 10)
	if err != nil {
		fmt.Println(err)
	}
	for _, e := range events {
		fmt.Println(e.SequenceNumber, e.Message.System.ConnectionDeviceID, string(e.Message.Body))
	}

	_, err = h.SendC2D(ctx, "thermostat", &hubkit.Message{Body: []byte("set 20"), System: hubkit.SystemProperties{MessageID: "m1"}})
	fmt.Println("sent:", err)

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fmt.Println("shutdown:", h.Shutdown(sctx))
	// Output:
	// ingested: <nil>
	// 0 thermostat {"t":21.5}
	// sent: <nil>
	// shutdown: <nil>
}
