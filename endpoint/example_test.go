package endpoint_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
)

func ExampleFunc() {
	ep := endpoint.Func("print", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		for _, m := range batch {
			fmt.Printf("%s: %s\n", m.System.ConnectionDeviceID, m.Body)
		}
		return len(batch), nil
	})
	defer ep.Close()
	n, err := ep.Send(context.Background(), []*hubkit.Message{
		{Body: []byte(`{"t":21.5}`), System: hubkit.SystemProperties{ConnectionDeviceID: "dev-1"}},
	})
	fmt.Println(n, err)
	// Output:
	// dev-1: {"t":21.5}
	// 1 <nil>
}

func ExampleDelivery() {
	store := memory.New(memory.Options{}) // the hub's store, e.g. queue/pebble
	defer store.Close()
	got := make(chan string)
	ep := endpoint.Func("alerts", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		for _, m := range batch {
			select {
			case got <- string(m.Body):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		return len(batch), nil
	})
	d, err := endpoint.NewDelivery(endpoint.DeliveryConfig{
		Name: "alerts", Endpoint: ep, Streams: store, Partitions: 4,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error)
	go func() { done <- d.Run(context.Background()) }()

	store.Append(context.Background(), []queue.Entry{{Stream: "alerts", Partition: 2, Message: &hubkit.Message{Body: []byte("fire")}}})
	fmt.Println(<-got)
	d.Close()
	fmt.Println(<-done)
	// Output:
	// fire
	// <nil>
}

// A middleware that logs each batch, wrapped around a Func endpoint.
func ExampleChain() {
	logging := func(name string) endpoint.Middleware {
		return func(next endpoint.Endpoint) endpoint.Endpoint {
			return endpoint.Func(name, func(ctx context.Context, batch []*hubkit.Message) (int, error) {
				fmt.Printf("%s: %d messages\n", name, len(batch))
				return next.Send(ctx, batch)
			})
		}
	}
	sink := endpoint.Func("sink", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		return len(batch), nil
	})
	ep := endpoint.Chain(sink, logging("outer"), logging("inner"))
	n, err := ep.Send(context.Background(), make([]*hubkit.Message, 3))
	fmt.Println(n, err)
	// Output:
	// outer: 3 messages
	// inner: 3 messages
	// 3 <nil>
}
