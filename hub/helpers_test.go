package hub_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hubkit/hubkit/endpoint/endpointtest"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

// testHost is the host name of test hubs.
const testHost = "testhub.example.com"

// rig is a started hub on a store in a test directory, with a fake clock
// shared by hub and store.
type rig struct {
	*hub.Hub
	dir   string
	clock *endpointtest.Clock
	q     queue.DurableQueue
}

type rigOptions struct {
	dir    string              // "" means a new t.TempDir()
	clock  *endpointtest.Clock // nil means a new one
	config func(*hub.Config)   // changes to the config, may be nil
}

func openQueue(t testing.TB, dir string, now func() time.Time) queue.DurableQueue {
	t.Helper()
	q, err := pebble.Open(dir, pebble.Options{Now: now, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// newRig starts a hub; Cleanup closes it and its store.
func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.clock == nil {
		o.clock = endpointtest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	}
	q := openQueue(t, o.dir, o.clock.Now)
	cfg := hub.Config{
		HostName: testHost,
		Queue:    q,
		Logger:   discard(),
		Clock:    o.clock,
	}
	if o.config != nil {
		o.config(&cfg)
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(errors.Join(err, h.Close(), q.Close()))
	}
	r := &rig{Hub: h, dir: o.dir, clock: o.clock, q: q}
	t.Cleanup(func() { r.close(t) })
	return r
}

// close closes the hub and the store; it is idempotent.
func (r *rig) close(t testing.TB) {
	t.Helper()
	if err := r.Hub.Close(); err != nil {
		t.Errorf("close hub: %v", err)
	}
	if err := r.q.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
}

// ctx returns a context that ends with the test or after d.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
