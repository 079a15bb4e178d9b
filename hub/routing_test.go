package hub_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
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

func TestNewRefusesRoutesToUnknownEndpoints(t *testing.T) {
	table, err := route.New(route.Config{Logger: discard(), Routing: route.Routing{
		Routes:      []route.Route{{Name: "r", Source: route.DeviceMessages, Endpoint: "nowhere"}},
		Fallback:    route.Fallback{Endpoint: "alerts"},
		Enrichments: []route.Enrichment{{Key: "k", Value: "v", Endpoints: []string{"missing"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = hub.New(hub.Config{Dir: t.TempDir(), Logger: discard(), Router: table,
		Endpoints: []hub.Endpoint{{Name: "alerts", Endpoint: endpoint.Func("alerts", (&sink{}).send)}}})
	if err == nil {
		t.Fatal("New accepted routes to endpoints the hub does not have")
	}
	for _, name := range []string{`"nowhere"`, `"missing"`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), `"alerts"`) {
		t.Errorf("error %q names an endpoint the hub has", err)
	}
}

func TestReplaceRoutesWhileRunning(t *testing.T) {
	alerts := &sink{}
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		c.Endpoints = []hub.Endpoint{{Name: "alerts", Endpoint: endpoint.Func("alerts", alerts.send)}}
	}})
	table, ok := r.Router().(*route.Table)
	if !ok {
		t.Fatalf("default router is a %T, want *route.Table", r.Router())
	}
	ctx := ctxFor(t, 10*time.Second)
	ingest := func(body string) {
		t.Helper()
		done := make(chan error, 1)
		r.Ingest(ctx, identity("d1"), &hubkit.Message{Body: []byte(body)}, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	ingest("before")
	if err := table.Replace(route.Routing{Routes: []route.Route{{Name: "typo", Source: route.DeviceMessages, Endpoint: "alert"}}}); err == nil {
		t.Error("Replace accepted a route to an endpoint the hub does not have")
	}
	if err := table.Replace(route.Routing{Routes: []route.Route{{Name: "all", Source: route.DeviceMessages, Endpoint: "alerts"}}}); err != nil {
		t.Fatal(err)
	}
	ingest("after")
	poll.Until(t, "the alerts endpoint", func() bool { return len(alerts.got()) == 1 })
	if m := alerts.got()[0]; string(m.Body) != "after" {
		t.Errorf("alerts got %q, want the message sent after Replace", m.Body)
	}
	evs, err := r.Receive(ctx, hub.DefaultConsumerGroup, r.Partition("d1"), hub.Earliest(), 10)
	if err != nil || len(evs) != 1 || string(evs[0].Message.Body) != "before" {
		t.Fatalf("events %+v, %v; want only the message sent before Replace", evs, err)
	}
}

// countingHandler counts the log records whose message contains substr.
type countingHandler struct {
	substr string
	n      *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

func TestUnknownEndpointWarningIsRateLimited(t *testing.T) {
	var warnings atomic.Int64
	ghost := route.RouterFunc(func(context.Context, route.Source, *hubkit.Message) ([]string, error) {
		return []string{"ghost"}, nil
	})
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		c.Router = ghost
		c.Logger = slog.New(countingHandler{substr: "unknown endpoint", n: &warnings})
	}})
	ctx := ctxFor(t, 10*time.Second)
	ingest := func(n int) {
		t.Helper()
		for range n {
			done := make(chan error, 1)
			r.Ingest(ctx, identity("d1"), &hubkit.Message{Body: []byte("x")}, func(err error) { done <- err })
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	ingest(5)
	if n := warnings.Load(); n != 1 {
		t.Fatalf("%d warnings for 5 messages in one minute, want 1", n)
	}
	r.clock.Advance(59 * time.Second)
	ingest(1)
	r.clock.Advance(time.Second)
	ingest(3)
	if n := warnings.Load(); n != 2 {
		t.Fatalf("%d warnings after a minute, want 2", n)
	}
	if m := r.Metrics(); m.Dropped != 9 {
		t.Errorf("Dropped %d, want 9", m.Dropped)
	}
}
