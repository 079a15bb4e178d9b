package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/route"
)

// sink is an in-process endpoint that records what it accepted.
type sink struct {
	mu   sync.Mutex
	msgs []*hubkit.Message
}

func (s *sink) send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range batch {
		s.msgs = append(s.msgs, m.Clone())
	}
	return len(batch), nil
}

func (s *sink) got() []*hubkit.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*hubkit.Message(nil), s.msgs...)
}

func TestRoutingEndpointsAndDeviceEvents(t *testing.T) {
	alerts := &sink{}
	table, err := route.New(route.Config{HubName: "testhub", Logger: discard(), Routing: route.Routing{
		Routes: []route.Route{
			{Name: "critical", Source: route.DeviceMessages, Condition: "level = 'critical'", Endpoint: "alerts"},
			{Name: "conn", Source: route.DeviceConnectionStateEvents, Endpoint: route.BuiltinEndpoint},
			{Name: "life", Source: route.DeviceLifecycleEvents, Endpoint: route.BuiltinEndpoint},
		},
		Enrichments: []route.Enrichment{{Key: "hub", Value: "$iothubname", Endpoints: []string{"alerts"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		c.Router = table
		c.Endpoints = []hub.Endpoint{{Name: "alerts", Endpoint: endpoint.Func("alerts", alerts.send)}}
	}})
	ctx := ctxFor(t, 10*time.Second)
	createDevice(t, r, "d1")
	id := identity("d1")
	r.Connected(ctx, id)
	r.Disconnected(ctx, id)
	done := make(chan error, 2)
	crit := &hubkit.Message{Body: []byte("fire")}
	crit.Properties.Set("level", "critical")
	r.Ingest(ctx, id, crit, func(err error) { done <- err })
	r.Ingest(ctx, id, &hubkit.Message{Body: []byte("calm")}, func(err error) { done <- err })
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, "the alerts endpoint", func() bool { return len(alerts.got()) == 1 })
	if m := alerts.got()[0]; string(m.Body) != "fire" {
		t.Errorf("alerts got %q", m.Body)
	} else if v, _ := m.Properties.Get("hub"); v != "testhub" {
		t.Errorf("enrichment hub = %q", v)
	}
	poll.Until(t, "the endpoint's metrics", func() bool {
		eps := r.Endpoints()
		return len(eps) == 1 && eps[0].Metrics.Delivered == 1 && eps[0].Health.Status == "healthy"
	})
	evs, err := r.Receive(ctx, hub.DefaultConsumerGroup, r.Partition("d1"), hub.Earliest(), 10)
	if err != nil {
		t.Fatal(err)
	}
	// create, connected, disconnected, then the calm message by the fallback.
	want := []struct{ source, op, body string }{
		{hubkit.SourceLifecycle, "createDeviceIdentity", ""},
		{hubkit.SourceConnectionState, "deviceConnected", ""},
		{hubkit.SourceConnectionState, "deviceDisconnected", ""},
		{hubkit.SourceTelemetry, "", "calm"},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	var lastSeq string
	for i, w := range want {
		m := evs[i].Message
		op, _ := m.Properties.Get("opType")
		if m.System.MessageSource != w.source || op != w.op || w.body != "" && string(m.Body) != w.body {
			t.Errorf("event %d: source %s op %s body %s", i, m.System.MessageSource, op, m.Body)
		}
		if w.source == hubkit.SourceTelemetry {
			continue
		}
		for _, p := range []string{"hubName", "deviceId", "operationTimestamp", "iothub-message-schema"} {
			if v, ok := m.Properties.Get(p); !ok || v == "" {
				t.Errorf("event %d lacks %s", i, p)
			}
		}
		if m.System.UserID != "testhub" || m.System.ContentType != "application/json" || m.System.CorrelationID == "" || m.System.ConnectionDeviceID != "d1" {
			t.Errorf("event %d system properties %+v", i, m.System)
		}
		if w.source == hubkit.SourceConnectionState {
			body := string(m.Body)
			if len(body) != len(`{"sequenceNumber":""}`)+64 || body <= lastSeq {
				t.Errorf("connection event body %s", body)
			}
			lastSeq = body
		}
	}
}

// TestDroppedCountsTelemetryOnly: with no route taking anything, a
// telemetry message counts as dropped and device events do not.
func TestDroppedCountsTelemetryOnly(t *testing.T) {
	nowhere := route.RouterFunc(func(context.Context, route.Source, *hubkit.Message) ([]string, error) { return nil, nil })
	r := newRig(t, rigOptions{config: func(c *hub.Config) { c.Router = nowhere }})
	ctx := ctxFor(t, 10*time.Second)
	createDevice(t, r, "d1") // a lifecycle event
	id := identity("d1")
	r.Connected(ctx, id) // a connection event
	done := make(chan error, 1)
	r.Ingest(ctx, id, &hubkit.Message{Body: []byte("t")}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.Disconnected(ctx, id)
	if m := r.Metrics(); m.Dropped != 1 || m.D2CIn != 1 {
		t.Fatalf("Dropped %d, D2CIn %d; want 1 and 1", m.Dropped, m.D2CIn)
	}
}
