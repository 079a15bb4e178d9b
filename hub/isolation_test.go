package hub_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/webhook"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/route"
)

// hookServer is a webhook target that answers 500 while failing and
// otherwise records the message ids it receives.
type hookServer struct {
	mu      sync.Mutex // guards the fields below
	failing bool
	ids     []string
}

func (s *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var recs []struct {
		SystemProperties struct {
			MessageID string `json:"messageId"`
		}
	}
	err := json.NewDecoder(r.Body).Decode(&recs)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.failing:
		w.WriteHeader(http.StatusInternalServerError)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		for _, rec := range recs {
			s.ids = append(s.ids, rec.SystemProperties.MessageID)
		}
	}
}

func (s *hookServer) setFailing(f bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = f
}

func (s *hookServer) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

// checkDeviceOrder checks that ids (<device>-<i>) hold 0..n-1 of each
// device, each once, in order per device.
func checkDeviceOrder(t *testing.T, what string, ids []string, devices []string, n int) {
	t.Helper()
	next := map[string]int{}
	for _, id := range ids {
		d, i, _ := strings.Cut(id, "-")
		if want := fmt.Sprint(next[d]); i != want {
			t.Fatalf("%s: device %s: got message %s, want %s (all: %v)", what, d, i, want, ids)
		}
		next[d]++
	}
	for _, d := range devices {
		if next[d] != n {
			t.Fatalf("%s: device %s: %d messages, want %d", what, d, next[d], n)
		}
	}
}

// TestDeadEndpointIsolated routes telemetry to the built-in endpoint, a
// webhook answering 500 and a Func endpoint: the built-in endpoint and the
// Func get every message, in order, while the webhook is unhealthy and then
// dead; once the webhook answers again it gets its whole backlog in order
// and its health goes back to healthy as soon as WakeEndpoints is called.
// The hub's fake clock drives the retries, so an hour of backoff takes
// milliseconds.
func TestDeadEndpointIsolated(t *testing.T) {
	srv := &hookServer{failing: true}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	hook, err := webhook.New(webhook.Options{Name: "hook", URL: hs.URL, Batch: true})
	if err != nil {
		t.Fatal(err)
	}
	fn := &sink{}
	var routes []route.Route
	for _, ep := range []string{route.BuiltinEndpoint, "hook", "fn"} {
		routes = append(routes, route.Route{Name: "to-" + ep, Source: route.DeviceMessages, Endpoint: ep})
	}
	table, err := route.New(route.Config{HubName: "testhub", Logger: discard(), Routing: route.Routing{Routes: routes}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		c.Router = table
		c.Endpoints = []hub.Endpoint{
			// No Retention: the webhook keeps its backlog however long it is dead.
			{Name: "hook", Endpoint: hook, Delivery: endpoint.DeliveryConfig{RetryPeriod: 10 * time.Minute, Retention: -1}},
			{Name: "fn", Endpoint: endpoint.Func("fn", fn.send)},
		}
	}})
	status := func(i int) endpoint.HealthStatus { return r.Endpoints()[i].Health.Status }

	devices := []string{"d1", "d2", "d3"}
	const n = 40
	ingest(t, r.Hub, devices, n)
	total := n * len(devices)

	poll.Until(t, "the Func endpoint", func() bool { return len(fn.got()) == total })
	var fnIDs []string
	for _, m := range fn.got() {
		fnIDs = append(fnIDs, m.System.MessageID)
	}
	checkDeviceOrder(t, "fn", fnIDs, devices, n)
	var events []string
	parts := map[int]bool{}
	for _, d := range devices {
		parts[r.Partition(d)] = true
	}
	for p := range parts {
		evs, err := r.Receive(ctxFor(t, 5*time.Second), hub.DefaultConsumerGroup, p, hub.Earliest(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			events = append(events, ev.Message.System.MessageID)
		}
	}
	checkDeviceOrder(t, "events", events, devices, n)
	poll.Until(t, "the webhook to be unhealthy", func() bool { return status(0) == endpoint.Unhealthy })

	// Retries, up to 61 s apart, fail for the retry period: dead.
	poll.Until(t, "the webhook to be dead", func() bool {
		if status(0) == endpoint.Dead {
			return true
		}
		r.clock.Advance(61 * time.Second)
		return false
	})
	if got := srv.got(); len(got) != 0 {
		t.Fatalf("the failing webhook accepted %d messages", len(got))
	}
	if s := status(1); s != endpoint.Healthy {
		t.Fatalf("Func endpoint is %s while the webhook is dead, want healthy", s)
	}

	// Recovery: WakeEndpoints tries again at once, without waiting for the
	// next revive attempt (the fake clock no longer moves).
	srv.setFailing(false)
	r.WakeEndpoints()
	poll.Until(t, "the webhook backlog", func() bool { return len(srv.got()) >= total })
	checkDeviceOrder(t, "hook", srv.got(), devices, n)
	poll.Until(t, "the webhook to be healthy", func() bool { return status(0) == endpoint.Healthy })
	eps := r.Endpoints()
	if m := eps[0].Metrics; m.Delivered != uint64(total) || m.Failures == 0 || m.Dropped != (endpoint.Metrics{}).Dropped {
		t.Errorf("webhook metrics %+v, want %d delivered after failures, none dropped", m, total)
	}
	if m := eps[1].Metrics; m.Delivered != uint64(total) || m.Failures != 0 {
		t.Errorf("Func metrics %+v, want %d delivered without failures", m, total)
	}
}
