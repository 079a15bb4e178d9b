package pebble_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "hubkit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// Device-to-cloud: append durably, then read from a cursor.
	pos, err := s.Append(ctx, []queue.Entry{{Stream: "events", Partition: 0, Message: &hubkit.Message{Body: []byte(`{"temp":21}`)}}})
	if err != nil {
		log.Fatal(err)
	}
	recs, err := s.Read(ctx, "events", 0, pos[0].Sequence, 10, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %s at %d\n", recs[0].Message.Body, recs[0].Sequence)
	if err := s.Commit(ctx, "my-endpoint", "events", 0, recs[0].Sequence+1); err != nil {
		log.Fatal(err)
	}

	// Cloud-to-device: enqueue, receive under a lock, complete.
	if _, err := s.Enqueue(ctx, "device-1", &hubkit.Message{Body: []byte("reboot")}, queue.EnqueueOptions{MaxDepth: 50}); err != nil {
		log.Fatal(err)
	}
	d, err := s.Receive(ctx, "device-1", queue.ReceiveOptions{Lock: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("received %s, attempt %d\n", d.Message.Body, d.Attempts)
	if err := s.Complete(ctx, "device-1", d.LockToken); err != nil {
		log.Fatal(err)
	}
	// Output:
	// read {"temp":21} at 0
	// received reboot, attempt 1
}
