package queuetest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
	"github.com/hubkit/hubkit/queue/queuetest"
)

// An implementation runs the suite from a test of its own, here for
// queue/memory, which keeps nothing across Close. Run needs the
// *testing.T that go test gives a test function, and prints nothing an
// Output comment could check, so this example is compiled but not run:
// the body of testConformance is what goes in the implementation's
// func TestConformance(t *testing.T), as queue/memory's own test does.
func ExampleRun() {
	testConformance := func(t *testing.T) {
		queuetest.Run(t, queuetest.Harness{
			Persistent: false,
			Open: func(t *testing.T, dir string, now func() time.Time) queue.DurableQueue {
				return memory.New(memory.Options{Now: now})
			},
		})
	}
	_ = testConformance
}

// A Clock moves only when told, so that a test sees a lock end exactly
// when it means to, without sleeping.
func ExampleClock() {
	ctx := context.Background()
	clock := queuetest.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	s := memory.New(memory.Options{Now: clock.Now})
	defer s.Close()

	if _, err := s.Enqueue(ctx, "device-1", &hubkit.Message{Body: []byte("on")}, queue.EnqueueOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	lock := queue.ReceiveOptions{Lock: time.Minute, NoWait: true}
	d, err := s.Receive(ctx, "device-1", lock)
	fmt.Println(d.Attempts, d.LockedUntil.Format(time.Kitchen), err)
	_, err = s.Receive(ctx, "device-1", lock)
	fmt.Println(err)
	clock.Advance(61 * time.Second)
	d, err = s.Receive(ctx, "device-1", lock)
	fmt.Println(d.Attempts, d.LockedUntil.Format(time.Kitchen), err)
	// Output:
	// 1 12:01PM <nil>
	// memory: receive from "device-1": queue: empty
	// 2 12:02PM <nil>
}
