package amqp_test

import (
	"context"
	"log"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/amqp"
)

// Send telemetry to an Event Hubs entity. In a hub, an endpoint.Delivery
// calls Send; the direct call shows the mapping at work.
func Example() {
	ep, err := amqp.New(amqp.Options{
		Name:     "archive",
		URL:      "amqps://myns.servicebus.windows.net",
		Address:  "telemetry-archive",
		Username: "RootManageSharedAccessKey",
		Password: "<key>",
		HubName:  "myhub",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ep.Close()
	var _ endpoint.Endpoint = ep
	msg := &hubkit.Message{Body: []byte(`{"t":21.5}`), System: hubkit.SystemProperties{ConnectionDeviceID: "dev-1"}}
	if _, err := ep.Send(context.Background(), []*hubkit.Message{msg}); err != nil {
		log.Print(err) // retryable: a Delivery would back off and send again
	}
}
