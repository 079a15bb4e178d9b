package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/route"
)

// TestStreamRetention: the built-in events stream keeps messages for
// Config.Retention, and each endpoint stream as long as its delivery's
// Retention (forever when negative), whatever Config.Retention says.
func TestStreamRetention(t *testing.T) {
	table, err := route.New(route.Config{Logger: discard(), Routing: route.Routing{Routes: []route.Route{
		{Name: "events", Source: route.DeviceMessages, Endpoint: route.BuiltinEndpoint},
		{Name: "short", Source: route.DeviceMessages, Endpoint: "short"},
		{Name: "forever", Source: route.DeviceMessages, Endpoint: "forever"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		c.Router = table
		c.Retention = 24 * time.Hour
		c.Endpoints = []hub.Endpoint{
			{Name: "short", Endpoint: endpoint.Func("short", (&sink{}).send), Delivery: endpoint.DeliveryConfig{Retention: 2 * time.Hour}},
			{Name: "forever", Endpoint: endpoint.Func("forever", (&sink{}).send), Delivery: endpoint.DeliveryConfig{Retention: -1}},
		}
	}})
	ctx := ctxFor(t, 10*time.Second)
	done := make(chan error, 1)
	r.Ingest(ctx, identity("d1"), &hubkit.Message{Body: []byte("x")}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sweeper, ok := r.q.(interface{ Sweep(context.Context) error })
	if !ok {
		t.Fatalf("%T cannot sweep", r.q)
	}
	p := r.Partition("d1")
	check := func(after time.Duration, want map[string]bool) {
		t.Helper()
		r.clock.Advance(after)
		if err := sweeper.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		for stream, kept := range want {
			first, next, err := r.q.Bounds(ctx, stream, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := first < next; got != kept {
				t.Errorf("after %v: %s keeps the message: %v, want %v", after, stream, got, kept)
			}
		}
	}
	check(time.Hour, map[string]bool{hub.EventsStream: true, "short": true, "forever": true})
	check(2*time.Hour, map[string]bool{hub.EventsStream: true, "short": false, "forever": true})
	check(22*time.Hour, map[string]bool{hub.EventsStream: false, "short": false, "forever": true})
	check(30*24*time.Hour, map[string]bool{"forever": true})
}
