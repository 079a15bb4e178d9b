package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
)

// A store in memory, with a device-to-cloud stream read through a cursor
// and a cloud-to-device queue whose outcome is journaled for feedback.
func Example() {
	ctx := context.Background()
	s := memory.New(memory.Options{})
	defer s.Close()

	pos, err := s.Append(ctx, []queue.Entry{
		{Stream: "events", Partition: 0, Message: &hubkit.Message{Body: []byte(`{"t":21.5}`)}},
		{Stream: "events", Partition: 0, Message: &hubkit.Message{Body: []byte(`{"t":21.7}`)}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	recs, err := s.Read(ctx, "events", 0, 0, 10, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Printf("event %d: %s\n", r.Sequence, r.Message.Body)
	}
	if err := s.Commit(ctx, "consumer", "events", 0, pos[1].Sequence+1); err != nil {
		fmt.Println(err)
		return
	}

	c2d := &hubkit.Message{Body: []byte("reboot"), System: hubkit.SystemProperties{MessageID: "m1", Ack: hubkit.AckFull}}
	if _, err := s.Enqueue(ctx, "device-1", c2d, queue.EnqueueOptions{MaxDepth: 50, MaxDeliveryCount: 10, Journal: true}); err != nil {
		fmt.Println(err)
		return
	}
	d, err := s.Receive(ctx, "device-1", queue.ReceiveOptions{Lock: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("device-1 got %q, attempt %d\n", d.Message.Body, d.Attempts)
	if err := s.Complete(ctx, "device-1", d.LockToken); err != nil {
		fmt.Println(err)
		return
	}
	outs, err := s.Outcomes(ctx, 0, 64)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range outs {
		fmt.Printf("feedback: %s %s for %s\n", o.Message.System.MessageID, o.Status, o.Queue)
	}
	// Output:
	// event 0: {"t":21.5}
	// event 1: {"t":21.7}
	// device-1 got "reboot", attempt 1
	// feedback: m1 Success for device-1
}
