package brokertest_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
)

// countingQueue counts Append calls.
type countingQueue struct {
	queue.DurableQueue
	appends atomic.Int64
}

func (q *countingQueue) Append(ctx context.Context, e []queue.Entry) ([]queue.Position, error) {
	q.appends.Add(1)
	return q.DurableQueue.Append(ctx, e)
}

func TestIngestGroupCommitsInOrder(t *testing.T) {
	mem := memory.New(memory.Options{})
	defer mem.Close()
	q := &countingQueue{DurableQueue: mem}
	h := brokertest.New(&brokertest.Devices{}, q)
	defer h.Close()
	const n = 200
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	wg.Add(n)
	id := auth.Identity{DeviceID: "d", Method: auth.AuthMethod{Scope: "device", Type: "sas", Issuer: "iothub"}}
	for i := range n {
		h.Ingest(context.Background(), id, &hubkit.Message{Body: []byte{byte(i)}}, func(err error) {
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("done %d called at position %d: callbacks must follow Ingest order", v, i)
		}
	}
	if a := q.appends.Load(); a >= n {
		t.Errorf("%d appends for %d messages: want group commit", a, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := h.Messages(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if s := msgs[7].System; s.ConnectionDeviceID != "d" || s.MessageSource != "Telemetry" || s.ConnectionAuthMethod != id.Method.JSON() || msgs[7].Body[0] != 7 {
		t.Errorf("message 7: %+v", msgs[7])
	}
	t.Logf("%d messages in %d appends", n, q.appends.Load())
}

func TestIngestRefusalsAndClose(t *testing.T) {
	q := memory.New(memory.Options{})
	defer q.Close()
	h := brokertest.New(&brokertest.Devices{}, q)
	errc := make(chan error, 1)
	h.Ingest(context.Background(), auth.Identity{}, &hubkit.Message{Body: make([]byte, hubkit.MaxD2CSize+1)}, func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, hubkit.ErrMessageTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	h.Close()
	h.Close()
	h.Ingest(context.Background(), auth.Identity{}, &hubkit.Message{}, func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, hubkit.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestDevices(t *testing.T) {
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	d := &brokertest.Devices{}
	d.Add("dev", "", key)
	d.Add("dev", "mod", key)
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name    string
		c       auth.Credentials
		ok      bool
		wantMod string
		wantExp int64
	}{
		{"device", auth.Credentials{DeviceID: "dev", Password: brokertest.Token("h", "dev", "", key, hour)}, true, "", hour.Unix()},
		{"module", auth.Credentials{DeviceID: "dev", ModuleID: "mod", Password: brokertest.Token("h", "dev", "mod", key, hour)}, true, "mod", hour.Unix()},
		{"wrong key", auth.Credentials{DeviceID: "dev", Password: brokertest.Token("h", "dev", "", "d3Jvbmc=", hour)}, false, "", 0},
		{"expired", auth.Credentials{DeviceID: "dev", Password: brokertest.Token("h", "dev", "", key, time.Now().Add(-time.Second))}, false, "", 0},
		{"another device's token", auth.Credentials{DeviceID: "dev", Password: brokertest.Token("h", "other", "", key, hour)}, false, "", 0},
		{"unknown device", auth.Credentials{DeviceID: "nope", Password: brokertest.Token("h", "nope", "", key, hour)}, false, "", 0},
		{"not a token", auth.Credentials{DeviceID: "dev", Password: "secret"}, false, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := d.Authenticate(context.Background(), tt.c)
			if !tt.ok {
				if !errors.Is(err, auth.ErrDenied) {
					t.Fatalf("err %v, want ErrDenied", err)
				}
				return
			}
			if err != nil || id.DeviceID != "dev" || id.ModuleID != tt.wantMod || id.ExpiresAt != tt.wantExp {
				t.Fatalf("got %+v, %v", id, err)
			}
		})
	}
}

func TestC2DAndEvents(t *testing.T) {
	q := memory.New(memory.Options{})
	defer q.Close()
	h := brokertest.New(&brokertest.Devices{}, q)
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.SendC2D(ctx, "dev", &hubkit.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	d, err := h.ReceiveC2D(ctx, "dev", queue.ReceiveOptions{Lock: time.Minute, NoWait: true})
	if err != nil || d.Message.System.To != "/devices/dev/messages/deviceBound" {
		t.Fatalf("got %+v, %v", d, err)
	}
	if err := h.Settle(ctx, "dev", d.LockToken, broker.Complete); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReceiveC2D(ctx, "dev", queue.ReceiveOptions{Lock: time.Minute, NoWait: true}); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("after complete: %v", err)
	}
	h.Connected(ctx, auth.Identity{DeviceID: "dev"})
	h.Disconnected(ctx, auth.Identity{DeviceID: "dev"})
	ev, err := h.WaitEvents(ctx, 2)
	if err != nil || !ev[0].Connected || ev[1].Connected {
		t.Fatalf("events %+v, %v", ev, err)
	}
}
