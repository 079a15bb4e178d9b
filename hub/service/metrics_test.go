package service_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/hub/service"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue/pebble"
	"github.com/hubkit/hubkit/route"
)

// TestMetricsDroppedByReason routes messages to an endpoint that refuses
// some as too large and some as invalid, and checks that /metrics has one
// dropped series per reason.
func TestMetricsDroppedByReason(t *testing.T) {
	q, err := pebble.Open(t.TempDir(), pebble.Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	picky := endpoint.Func("picky", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		for i, m := range batch {
			switch string(m.Body) {
			case "big":
				return i, endpoint.Skip("picky", hubkit.ErrMessageTooLarge)
			case "bad":
				return i, endpoint.Skip("picky", errors.New("invalid"))
			}
		}
		return len(batch), nil
	})
	table, err := route.New(route.Config{Logger: discard(), Routing: route.Routing{Routes: []route.Route{
		{Name: "all", Source: route.DeviceMessages, Endpoint: "picky"}}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{HostName: host, Queue: q, Logger: discard(), Router: table,
		Endpoints: []hub.Endpoint{{Name: "picky", Endpoint: picky}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(errors.Join(err, h.Close(), q.Close()))
	}
	srv := httptest.NewServer(service.New(h, service.Options{Logger: discard()}))
	t.Cleanup(func() {
		srv.Close()
		if err := errors.Join(h.Close(), q.Close()); err != nil {
			t.Error(err)
		}
	})
	e := &env{h: h, srv: srv}

	bodies := []string{"ok", "big", "bad", "ok", "bad", "bad"}
	done := make(chan error, len(bodies))
	id := auth.Identity{DeviceID: "d1", Method: auth.AuthMethod{Scope: "device", Type: "sas", Issuer: "iothub"}}
	for _, b := range bodies {
		h.Ingest(t.Context(), id, &hubkit.Message{Body: []byte(b)}, func(err error) { done <- err })
	}
	for range bodies {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, "the endpoint to take or drop every message", func() bool {
		m := h.Endpoints()[0].Metrics
		return m.Delivered+m.Dropped[endpoint.DropTooLarge]+m.Dropped[endpoint.DropInvalid] == uint64(len(bodies))
	})
	body := string(e.do(t, "", "GET", "/metrics", nil).body)
	want := map[endpoint.DropReason]int{endpoint.DropTooLarge: 1, endpoint.DropInvalid: 3}
	for r := range len(endpoint.Metrics{}.Dropped) {
		reason := endpoint.DropReason(r)
		line := fmt.Sprintf("\nhubkit_endpoint_dropped_total{endpoint=\"picky\",reason=%q} %d\n", reason, want[reason])
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %q:\n%s", strings.TrimSpace(line), body)
		}
	}
	if n := strings.Count(body, "hubkit_endpoint_dropped_total{"); n != len(endpoint.Metrics{}.Dropped) {
		t.Errorf("%d dropped series, want one per reason (%d):\n%s", n, len(endpoint.Metrics{}.Dropped), body)
	}
}
