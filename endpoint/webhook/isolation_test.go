package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
	"github.com/hubkit/hubkit/endpoint/webhook"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
)

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// healthChanges returns the health values logged for endpoint name, in order.
func (b *logBuffer) healthChanges(name string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var rec struct{ Msg, Endpoint, Health string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "endpoint health changed" && rec.Endpoint == name {
			out = append(out, rec.Health)
		}
	}
	return out
}

func run(t *testing.T, cfg endpoint.DeliveryConfig) *endpoint.Delivery {
	t.Helper()
	d, err := endpoint.NewDelivery(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	t.Cleanup(func() {
		d.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return d
}

// TestDeadWebhookDoesNotSlowOthers runs a webhook answering 503 for ten
// minutes of the injected clock next to a Func endpoint fed from the same
// store: the Func endpoint gets every message while the webhook fails, and
// the webhook gets its whole backlog in order once it recovers.
func TestDeadWebhookDoesNotSlowOthers(t *testing.T) {
	clock := endpointtest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	store := memory.New(memory.Options{Now: clock.Now, SweepInterval: -1})
	t.Cleanup(func() { store.Close() })
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	const parts = 2

	srv := newServer(t)
	srv.SetFailing(t, true)
	hook := newEndpoint(t, webhook.Options{URL: srv.URL, Batch: true})
	hookD := run(t, endpoint.DeliveryConfig{Name: "hook", Endpoint: hook, Streams: store, Partitions: parts, Clock: clock, Logger: logger})

	var mu sync.Mutex
	var fnGot []string
	fn := endpoint.Func("fn", func(ctx context.Context, batch []*hubkit.Message) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			fnGot = append(fnGot, m.System.MessageID)
		}
		return len(batch), nil
	})
	fnD := run(t, endpoint.DeliveryConfig{Name: "fn", Endpoint: fn, Streams: store, Partitions: parts, Clock: clock, Logger: logger})

	// Ten minutes in 10 s steps; each step routes 5 messages per partition to both endpoints.
	const steps, perStep = 60, 5
	for step := range steps {
		var entries []queue.Entry
		for p := range parts {
			for i := range perStep {
				id := fmt.Sprintf("p%d-%d", p, step*perStep+i)
				m := &hubkit.Message{Body: []byte(id), System: hubkit.SystemProperties{MessageID: id, ConnectionDeviceID: fmt.Sprintf("dev-%d", p)}}
				entries = append(entries, queue.Entry{Stream: "hook", Partition: p, Message: m}, queue.Entry{Stream: "fn", Partition: p, Message: m})
			}
		}
		if _, err := store.Append(context.Background(), entries); err != nil {
			t.Fatal(err)
		}
		want := (step + 1) * perStep * parts
		poll.Until(t, fmt.Sprintf("the Func endpoint to get %d messages at step %d", want, step), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(fnGot) == want
		})
		clock.Advance(10 * time.Second)
	}
	if h := hookD.Health(); h.Status != endpoint.Unhealthy || h.LastKnownError == "" || !h.LastSuccessfulSendAttemptTime.IsZero() {
		t.Fatalf("webhook health after 10 min of 503 = %+v, want unhealthy", h)
	}
	if h := fnD.Health(); h.Status != endpoint.Healthy {
		t.Fatalf("Func health = %+v, want healthy", h)
	}
	if n := len(srv.Received(t)); n != 0 {
		t.Fatalf("failing webhook received %d messages", n)
	}

	// Recovery: the next retry (at most 61 s away) delivers the backlog.
	srv.SetFailing(t, false)
	clock.Advance(61 * time.Second)
	total := steps * perStep * parts
	poll.Until(t, "the webhook backlog", func() bool { return len(srv.Received(t)) >= total })
	poll.Until(t, "the webhook to be healthy", func() bool { return hookD.Health().Status == endpoint.Healthy })

	next := map[string]int{}
	for _, m := range srv.Received(t) {
		p, i, _ := strings.Cut(m.System.MessageID, "-")
		if want := fmt.Sprint(next[p]); i != want {
			t.Fatalf("webhook partition %s: got message %s, want %s", p, i, want)
		}
		next[p]++
	}
	if got, want := strings.Join(logs.healthChanges("hook"), ","), "unhealthy,degraded,healthy"; got != want {
		t.Errorf("webhook health went %s, want %s", got, want)
	}
	if got := strings.Join(logs.healthChanges("fn"), ","); got != "healthy" {
		t.Errorf("Func health went %s, want healthy only", got)
	}
	if m := hookD.Metrics(); m.Delivered != uint64(total) || m.Failures == 0 || m.Dropped != (endpoint.Metrics{}).Dropped {
		t.Errorf("webhook metrics %+v", m)
	}
	srv.mu.Lock()
	requests := srv.requests
	srv.mu.Unlock()
	t.Logf("webhook: %d requests in all; backoff kept retries to about one a minute", requests)
}
