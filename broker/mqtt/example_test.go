package mqtt_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/queue/memory"
)

// Example starts a broker on a loopback port over a test hub, lets one
// device publish a message and shuts down gracefully.
func Example() {
	store := memory.New(memory.Options{})
	defer store.Close()
	devices := &brokertest.Devices{}
	devices.Add("thermostat", "", testKey)
	hub := brokertest.New(devices, store)
	defer hub.Close()

	b, err := mqtt.New(mqtt.Options{
		TCPAddr:  "127.0.0.1:0",
		HostName: "hub.example",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Start(ctx, hub); err != nil {
		log.Fatal(err)
	}

	// A device: client id, username and SAS token as IoT Hub expects them.
	c := paho.NewClient(paho.NewClientOptions().
		AddBroker("tcp://" + b.TCPAddr().String()).
		SetClientID("thermostat").
		SetUsername("hub.example/thermostat/?api-version=2021-04-12").
		SetPassword(brokertest.Token("hub.example", "thermostat", "", testKey, time.Now().Add(time.Hour))))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		log.Fatal(tok.Error())
	}
	c.Publish("devices/thermostat/messages/events/%24.ct=application%2Fjson&alert=true", 1, false, `{"t":21.5}`).Wait()
	c.Disconnect(100)

	msgs, err := hub.Messages(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msgs[0].Body), msgs[0].System.ContentType, msgs[0].Properties[0].Name)

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
	// Output: {"t":21.5} application/json alert
}
