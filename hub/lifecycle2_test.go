package hub_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
	"github.com/hubkit/hubkit/route"
)

// startHub starts a hub on cfg and closes it in Cleanup.
func startHub(t *testing.T, cfg hub.Config) *hub.Hub {
	t.Helper()
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(errors.Join(err, h.Close()))
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// routeAllTo returns a router sending every device message to endpoint name.
func routeAllTo(t *testing.T, name string) route.Router {
	t.Helper()
	table, err := route.New(route.Config{HubName: "testhub", Logger: discard(), Endpoints: []string{name},
		Routing: route.Routing{Routes: []route.Route{{Name: "all", Source: route.DeviceMessages, Endpoint: name}}}})
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestStoppingBrokersAreServed stops a hub while an MQTT device holds a
// cloud-to-device message it has not acknowledged: the broker's teardown
// must still reach the hub, so that the next hub on the same store sees
// the device disconnected and can deliver the message at once instead of
// after its lock ends (the broker's locks are volatile: they live as long
// as the store is open).
func TestStoppingBrokersAreServed(t *testing.T) {
	for _, mode := range []string{"Shutdown", "Close"} {
		t.Run(mode, func(t *testing.T) {
			q := openQueue(t, t.TempDir(), time.Now)
			t.Cleanup(func() { q.Close() })
			mb, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", HostName: testHost, Logger: discard()})
			if err != nil {
				t.Fatal(err)
			}
			h := startHub(t, hub.Config{HostName: testHost, Queue: q, Logger: discard(), Brokers: []broker.Broker{mb}})
			ctx := ctxFor(t, 20*time.Second)
			d, err := h.CreateDevice(ctx, auth.Device{DeviceID: "dev"})
			if err != nil {
				t.Fatal(err)
			}
			token, err := auth.NewSAS(testHost+"/devices/dev", d.Authentication.SymmetricKey.PrimaryKey, "", time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			o := paho.NewClientOptions().AddBroker("tcp://" + mb.TCPAddr().String()).SetClientID("dev").
				SetUsername(testHost + "/dev/?api-version=2021-04-12").SetPassword(token).
				SetAutoReconnect(false).SetProtocolVersion(4).SetAutoAckDisabled(true)
			c := paho.NewClient(o)
			if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("connect: %v", tok.Error())
			}
			t.Cleanup(func() { c.Disconnect(0) })
			got := make(chan paho.Message, 1)
			if tok := c.Subscribe("devices/dev/messages/devicebound/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			poll.Until(t, "the device to be connected", func() bool {
				d, err := h.GetDevice(ctx, "dev")
				return err == nil && d.ConnectionState == auth.Connected
			})
			if _, err := h.SendC2D(ctx, "dev", &hubkit.Message{Body: []byte("held"), System: hubkit.SystemProperties{MessageID: "m1"}}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-got: // locked for the device, never acknowledged
			case <-ctx.Done():
				t.Fatal("the device got no message")
			}
			if mode == "Shutdown" {
				err = h.Shutdown(ctx)
			} else {
				err = h.Close()
			}
			if err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			if n := h.Metrics().Connections; n != 0 {
				t.Errorf("connections after %s: %d, want 0", mode, n)
			}

			h2 := startHub(t, hub.Config{HostName: testHost, Queue: q, Logger: discard()})
			d2, err := h2.GetDevice(ctx, "dev")
			if err != nil || d2.ConnectionState != auth.Disconnected {
				t.Errorf("device after %s and restart: %s, %v; want Disconnected", mode, d2.ConnectionState, err)
			}
			dl, err := h2.ReceiveC2D(ctx, "dev", queue.ReceiveOptions{NoWait: true})
			if err != nil || dl.Message.System.MessageID != "m1" {
				t.Errorf("receive after %s and restart: %q, %v; want m1 released at once", mode, dl.Message.System.MessageID, err)
			}
		})
	}
}

// TestCloseDuringStart closes hubs while they start: no data race, Start
// returns, and the store the hub opened is closed, so that the next hub on
// the directory opens it.
func TestCloseDuringStart(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		mb, err := mqtt.New(mqtt.Options{TCPAddr: "127.0.0.1:0", HostName: testHost, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		h, err := hub.New(hub.Config{HostName: testHost, Dir: dir, Logger: discard(), Brokers: []broker.Broker{mb}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var startErr, closeErr error
		wg.Go(func() { startErr = h.Start(context.Background()) })
		wg.Go(func() { closeErr = h.Close() })
		wg.Wait()
		if closeErr != nil {
			t.Fatalf("attempt %d: Close: %v", i, closeErr)
		}
		if startErr != nil && !errors.Is(startErr, hubkit.ErrClosed) {
			t.Errorf("attempt %d: Start: %v, want nil or ErrClosed", i, startErr)
		}
		if err := h.Healthy(); !errors.Is(err, hubkit.ErrClosed) {
			t.Errorf("attempt %d: Healthy after Close: %v", i, err)
		}
		st, err := pebble.Open(dir, pebble.Options{Logger: discard()})
		if err != nil {
			t.Fatalf("attempt %d: the closed hub left its store open: %v", i, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// failingCursor is a store whose feedback cursor cannot be read, so that
// Start fails before the hub's background work runs.
type failingCursor struct{ *pebble.Store }

func (failingCursor) OutcomesCursor(context.Context) (uint64, error) {
	return 0, errors.New("cursor unreadable")
}

// failingBroker cannot bind, so that Start fails after the background work runs.
type failingBroker struct{ stuckBroker }

func (*failingBroker) Start(context.Context, broker.Hub) error { return errors.New("address in use") }
func (*failingBroker) Shutdown(context.Context) error          { return nil }

func TestShutdownAfterFailedStart(t *testing.T) {
	for name, config := range map[string]func(*hub.Config, queue.DurableQueue){
		"store fails":  func(c *hub.Config, q queue.DurableQueue) { c.Queue = failingCursor{q.(*pebble.Store)} },
		"broker fails": func(c *hub.Config, q queue.DurableQueue) { c.Queue, c.Brokers = q, []broker.Broker{&failingBroker{}} },
	} {
		t.Run(name, func(t *testing.T) {
			q := openQueue(t, t.TempDir(), time.Now)
			t.Cleanup(func() { q.Close() })
			cfg := hub.Config{HostName: testHost, Logger: discard()}
			config(&cfg, q)
			h, err := hub.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Start(t.Context()); err == nil {
				t.Fatal("Start succeeded")
			}
			done := make(chan error, 1)
			go func() { done <- h.Shutdown(context.Background()) }()
			var shutdownErr error
			poll.Until(t, "Shutdown to return", func() bool {
				select {
				case shutdownErr = <-done:
					return true
				default:
					return false
				}
			})
			if shutdownErr != nil {
				t.Errorf("Shutdown: %v", shutdownErr)
			}
			if err := h.Healthy(); !errors.Is(err, hubkit.ErrClosed) {
				t.Errorf("Healthy after Shutdown: %v", err)
			}
		})
	}
}

func TestNewChecksDeliveryConfig(t *testing.T) {
	fn := endpoint.Func("fn", func(ctx context.Context, b []*hubkit.Message) (int, error) { return len(b), nil })
	_, err := hub.New(hub.Config{Dir: t.TempDir(), Logger: discard(),
		Endpoints: []hub.Endpoint{{Name: "fn", Endpoint: fn, Delivery: endpoint.DeliveryConfig{MaxBatch: -1}}}})
	if err == nil || !strings.Contains(err.Error(), "MaxBatch") {
		t.Fatalf("New with a negative MaxBatch: %v", err)
	}
}

// heldEndpoint's sends block until released or their ctx ends; it records
// what it accepted.
type heldEndpoint struct {
	entered   chan struct{} // receives once per Send
	release   chan struct{}
	mu        sync.Mutex
	accepted  []string
	cancelled atomic.Int32
}

func newHeldEndpoint() *heldEndpoint {
	return &heldEndpoint{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (e *heldEndpoint) endpoint() endpoint.Endpoint {
	return endpoint.Func("held", func(ctx context.Context, b []*hubkit.Message) (int, error) {
		e.entered <- struct{}{}
		select {
		case <-e.release:
		case <-ctx.Done():
			e.cancelled.Add(1)
			return 0, ctx.Err()
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, m := range b {
			e.accepted = append(e.accepted, string(m.Body))
		}
		return len(b), nil
	})
}

func (e *heldEndpoint) got() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.accepted...)
}

// ingestOne ingests a message and waits until it is durable.
func ingestOne(t *testing.T, h *hub.Hub, body string) {
	t.Helper()
	done := make(chan error, 1)
	h.Ingest(t.Context(), identity("dev"), &hubkit.Message{Body: []byte(body)}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatalf("ingest %s: %v", body, err)
	}
}

func TestShutdownLetsEndpointSendsFinish(t *testing.T) {
	dir := t.TempDir()
	config := func(e *heldEndpoint) hub.Config {
		return hub.Config{HostName: testHost, Dir: dir, Logger: discard(), Router: routeAllTo(t, "held"),
			Endpoints: []hub.Endpoint{{Name: "held", Endpoint: e.endpoint()}}}
	}
	ep := newHeldEndpoint()
	h := startHub(t, config(ep))
	ingestOne(t, h, "first")
	<-ep.entered
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctxFor(t, 20*time.Second)) }()
	poll.Until(t, "the hub to stop serving", func() bool { return errors.Is(h.Healthy(), hubkit.ErrClosed) })
	close(ep.release)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := ep.got(); len(got) != 1 || got[0] != "first" || ep.cancelled.Load() != 0 {
		t.Fatalf("accepted %v with %d sends cancelled; want [first], none cancelled", got, ep.cancelled.Load())
	}

	// The send finished and its cursor moved: a restart does not send it again.
	ep2 := newHeldEndpoint()
	close(ep2.release)
	h2 := startHub(t, config(ep2))
	ingestOne(t, h2, "second")
	poll.Until(t, "the second message", func() bool { return len(ep2.got()) > 0 })
	if got := ep2.got(); len(got) != 1 || got[0] != "second" {
		t.Fatalf("after restart the endpoint got %v, want [second]", got)
	}

	// A send that does not finish in time: Shutdown returns ctx's error.
	ep3 := newHeldEndpoint()
	cfg := config(ep3)
	cfg.Dir = t.TempDir()
	h3 := startHub(t, cfg)
	ingestOne(t, h3, "stuck")
	<-ep3.entered
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := h3.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck send = %v, want DeadlineExceeded", err)
	}
	if ep3.cancelled.Load() != 1 {
		t.Errorf("the stuck send was cancelled %d times, want once", ep3.cancelled.Load())
	}
}

// releasedBroker's Shutdown waits until released or closed.
type releasedBroker struct {
	stuckBroker
	shuttingDown chan struct{} // closed when Shutdown is called
	release      chan struct{}
	released     atomic.Bool
	once         sync.Once
}

func newReleasedBroker() *releasedBroker {
	return &releasedBroker{shuttingDown: make(chan struct{}), release: make(chan struct{})}
}

func (b *releasedBroker) Shutdown(ctx context.Context) error {
	close(b.shuttingDown)
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *releasedBroker) Close() error {
	b.once.Do(func() { close(b.release) })
	return b.stuckBroker.Close()
}

func TestSecondShutdownWaitsForTheFirst(t *testing.T) {
	t.Run("until the first returns", func(t *testing.T) {
		b := newReleasedBroker()
		h := startHub(t, hub.Config{HostName: testHost, Dir: t.TempDir(), Logger: discard(), Brokers: []broker.Broker{b}})
		first, second := make(chan error, 1), make(chan error, 1)
		go func() { first <- h.Shutdown(context.Background()) }()
		<-b.shuttingDown
		go func() {
			err := h.Shutdown(context.Background())
			if !b.released.Load() {
				err = errors.Join(err, errors.New("returned before the first Shutdown's broker drained"))
			}
			second <- err
		}()
		b.released.Store(true)
		b.once.Do(func() { close(b.release) })
		if err := <-first; err != nil {
			t.Errorf("first Shutdown: %v", err)
		}
		if err := <-second; err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
	})
	t.Run("until its own ctx ends", func(t *testing.T) {
		b := newReleasedBroker()
		h := startHub(t, hub.Config{HostName: testHost, Dir: t.TempDir(), Logger: discard(), Brokers: []broker.Broker{b}})
		first := make(chan error, 1)
		go func() { first <- h.Shutdown(context.Background()) }()
		<-b.shuttingDown
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second Shutdown = %v, want DeadlineExceeded", err)
		}
		if b.closed.Load() == 0 {
			t.Error("the second Shutdown did not fall back to Close")
		}
		if err := <-first; err != nil {
			t.Errorf("first Shutdown: %v", err)
		}
		if err := h.Healthy(); !errors.Is(err, hubkit.ErrClosed) {
			t.Errorf("Healthy: %v", err)
		}
	})
}

// flakyBounds is a store whose Bounds of stream fails while fails > 0.
type flakyBounds struct {
	*pebble.Store
	stream string
	fails  atomic.Int32
}

func (f *flakyBounds) Bounds(ctx context.Context, stream string, p int) (uint64, uint64, error) {
	if stream == f.stream && f.fails.Add(-1) >= 0 {
		return 0, 0, errors.New("disk hiccup")
	}
	return f.Store.Bounds(ctx, stream, p)
}

func TestDeliveryResumesAfterStoreError(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	fn := endpoint.Func("fn", func(ctx context.Context, b []*hubkit.Message) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range b {
			seen[string(m.Body)] = true
		}
		return len(b), nil
	})
	delivered := func(bodies ...string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bodies {
			if !seen[b] {
				return false
			}
		}
		return true
	}
	var store *flakyBounds
	r := newRig(t, rigOptions{config: func(c *hub.Config) {
		store = &flakyBounds{Store: c.Queue.(*pebble.Store), stream: "fn"}
		c.Queue, c.Router = store, routeAllTo(t, "fn")
		c.Endpoints = []hub.Endpoint{{Name: "fn", Endpoint: fn}}
	}})
	health := func() endpoint.Health { return r.Endpoints()[0].Health }
	ingestOne(t, r.Hub, "m0")
	poll.Until(t, "m0", func() bool { return delivered("m0") })

	store.fails.Store(1)
	for _, b := range []string{"m1", "m2", "m3"} {
		ingestOne(t, r.Hub, b)
	}
	// The delivery waits for the hub clock before it runs again.
	poll.Until(t, "the store error in the endpoint's health", func() bool {
		h := health()
		return h.Status == endpoint.Unhealthy && strings.Contains(h.LastKnownError, "disk hiccup")
	})
	poll.Until(t, "every message and a healthy endpoint", func() bool {
		r.clock.Advance(time.Second)
		return delivered("m1", "m2", "m3") && health().Status == endpoint.Healthy
	})
}
