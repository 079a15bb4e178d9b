package brokertest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/queue/memory"
)

// A broker under test is given a brokertest.Hub where it would get the
// real hub. Here the calls a broker makes for one device-to-cloud
// message are made by hand: authenticate the device, ingest the message,
// wait for done, and read back what was stored.
func ExampleNew() {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	defer store.Close()
	devices := &brokertest.Devices{}
	const key = "aHVia2l0LWRldmljZS1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="
	devices.Add("dev-1", "", key)
	h := brokertest.New(devices, store)
	defer h.Close()

	token := brokertest.Token("hub.example", "dev-1", "", key, time.Now().Add(time.Hour))
	id, err := h.Authenticate(ctx, auth.Credentials{Protocol: auth.MQTT, DeviceID: "dev-1", Password: token})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	h.Ingest(ctx, id, &hubkit.Message{Body: []byte(`{"t":21.5}`)}, func(err error) { done <- err })
	fmt.Println("durable:", <-done)
	msgs, err := h.Messages(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msgs[0].System.ConnectionDeviceID, string(msgs[0].Body))
	_, err = h.Authenticate(ctx, auth.Credentials{Protocol: auth.MQTT, DeviceID: "dev-2", Password: token})
	fmt.Println(err)
	// Output:
	// durable: <nil>
	// dev-1 {"t":21.5}
	// auth: denied: unknown identity "dev-2"
}
