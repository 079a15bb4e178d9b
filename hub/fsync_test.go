package hub_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue/pebble"
	"github.com/hubkit/hubkit/route"
)

// routedSyncs ingests n messages into a hub on Pebble on disk whose routes
// send every message to the built-in endpoint and to each of eps custom
// endpoints, one message at a time, each acknowledged before the next is
// sent, so that every message has a group commit of its own: a write per
// endpoint would show as that many syncs. The endpoints hold their first send until
// every message is acknowledged, so that the syncs counted up to then are
// the ingest path's alone; it returns those and the syncs of the delivery
// that follows, with the hub's durable writes during ingest.
func routedSyncs(t *testing.T, eps int, n int) (ingestSyncs, deliverySyncs, writes int64) {
	t.Helper()
	var syncs atomic.Int64
	q, err := pebble.Open(t.TempDir(), pebble.Options{FS: syncFS{vfs.Default, &syncs}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	wq := &writeCounter{DurableQueue: q}
	gate := make(chan struct{})
	routes := []route.Route{{Name: "builtin", Source: route.DeviceMessages, Endpoint: route.BuiltinEndpoint}}
	var endpoints []hub.Endpoint
	for i := range eps {
		name := fmt.Sprint("ep", i)
		endpoints = append(endpoints, hub.Endpoint{Name: name, Endpoint: endpoint.Func(name, func(ctx context.Context, batch []*hubkit.Message) (int, error) {
			select {
			case <-gate:
				return len(batch), nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})})
		routes = append(routes, route.Route{Name: "to-" + name, Source: route.DeviceMessages, Endpoint: name})
	}
	router, err := route.New(route.Config{Routing: route.Routing{Routes: routes}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{HostName: testHost, Queue: wq, Router: router, Endpoints: endpoints, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })

	syncs.Store(0)
	wq.writes.Store(0)
	for i := range n {
		done := make(chan error, 1)
		h.Ingest(t.Context(), identity("dev"), &hubkit.Message{Body: []byte(fmt.Sprint(i))}, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	ingestSyncs, writes = syncs.Load(), wq.writes.Load()
	close(gate)
	total := uint64(n)
	poll.Until(t, "every endpoint to deliver every message", func() bool {
		for _, e := range h.Endpoints() {
			if e.Metrics.Delivered != total {
				return false
			}
		}
		return true
	})
	return ingestSyncs, syncs.Load() - ingestSyncs, writes
}

// TestFanOutCostsNoMoreSyncs routes the same messages to 1 and to 3 custom
// endpoints and checks, by counting Pebble's syncs, that fan-out does not
// make a device wait for more of them: the routed copies of a message are
// stored in the same write as its built-in copy. Group commit makes the
// count depend a little on timing (a background write may share or add a
// sync), hence the slack.
func TestFanOutCostsNoMoreSyncs(t *testing.T) {
	const n = 100
	in1, del1, w1 := routedSyncs(t, 1, n)
	in3, del3, w3 := routedSyncs(t, 3, n)
	t.Logf("1 endpoint: %d ingest syncs in %d writes, %d delivery syncs; 3 endpoints: %d ingest syncs in %d writes, %d delivery syncs",
		in1, w1, del1, in3, w3, del3)
	if in1 < n || w1 < n {
		t.Fatalf("1 endpoint: %d syncs and %d writes for %d messages acknowledged one by one, want at least one each per message", in1, w1, n)
	}
	if limit := in1*3/2 + 2; in3 > limit {
		t.Errorf("3 endpoints cost %d ingest syncs, 1 endpoint %d: want at most %d", in3, in1, limit)
	}
	if limit := w1*3/2 + 2; w3 > limit {
		t.Errorf("3 endpoints cost %d ingest writes, 1 endpoint %d: want at most %d", w3, w1, limit)
	}
}
