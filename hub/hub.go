package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/internal/groupcommit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/route"
)

// ErrNotStarted is returned by calls that need the store before Start
// has opened it.
var ErrNotStarted = errors.New("hub: not started")

// Hub states. A hub goes from new to starting (Start runs, or failed)
// and to running, then through stopping (Shutdown or Close stops the
// brokers) to closed; Close of a hub that never ran goes to closed at once.
const (
	stateNew int32 = iota
	stateStarting
	stateRunning
	stateStopping // only the brokers' calls are served, until every broker has returned
	stateClosed
)

// A Hub is a running IoT hub: it takes device-to-cloud messages from its
// brokers, routes them to endpoint streams, serves the built-in events
// endpoint, queues cloud-to-device messages and reports their feedback.
// Its methods are safe for concurrent use. *Hub implements [broker.Hub].
type Hub struct {
	cfg  Config
	log  *slog.Logger
	name string // the hub name: first label of HostName

	// lifeMu is held by Start throughout and by Shutdown and Close while
	// they change state, so that Close never tears down what a running
	// Start is still making: it ends startup through startCtx, then waits
	// for lifeMu.
	lifeMu      sync.Mutex
	state       atomic.Int32
	startCtx    context.Context // cancelled by Shutdown and Close, ending a Start in progress
	cancelStart context.CancelFunc

	// Set by Start, read-only afterwards.
	q        queue.DurableQueue
	ownQueue bool
	reg      Registry
	authn    auth.Authenticator
	svcAuth  *auth.HubAuthenticator // checks service tokens
	policies *auth.Policies

	ctx    context.Context // the hub's lifetime: cancelled by Close
	cancel context.CancelFunc
	group  *errgroup.Group

	commits *groupcommit.Committer // the D2C committer, made by Start

	router        route.Router
	enricher      route.Enricher       // nil when router is not one
	streams       map[string]bool      // the endpoint streams: events and each custom endpoint
	unknownWarned sync.Map             // endpoint name → *throttle.Gate of the warnings that a route names it
	deliveries    []*endpoint.Delivery // made by New
	store         *storeRef            // the deliveries' store, set by Start
	delivering    sync.WaitGroup       // the delivery loops, joined by Shutdown before it cancels the rest
	endDelivery   chan struct{}        // closed by Shutdown: delivery loops return instead of retrying

	// deviceLocks order SendC2D against DeleteDevice per device, striped
	// by device id (see deviceLock). Lock order: a stripe, then the
	// registry's write lock, then disconnects.mu, which the registry's
	// OnChange takes under it.
	deviceLocks [64]sync.RWMutex

	groupsMu sync.Mutex // serialises consumer group changes
	groups   sync.Map   // consumer group name → groupRecord, for those read or created

	fb          *feedback
	states      *connectionStates // connection states on their way to the registry
	disconnects disconnects       // connections registry changes close, on their way to the brokers

	eventSeq atomic.Uint64 // the last connection event sequence number given out
	metrics  metrics

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed when close has finished
}

// storeRef is the store as the deliveries see it: New makes them, so that
// a bad DeliveryConfig fails New, before Start opens the store and sets
// Streams.
type storeRef struct{ queue.Streams }

var _ broker.Hub = (*Hub)(nil)

// New checks cfg and builds a hub. It reports every problem with cfg at
// once and starts nothing: call Start to run the hub.
func New(cfg Config) (*Hub, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	name, _, _ := strings.Cut(cfg.HostName, ".")
	h := &Hub{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "hub"),
		name:   name,
		states: newConnectionStates(),
	}
	h.disconnects.wake = make(chan struct{}, 1)
	h.router = cfg.Router
	if h.router == nil {
		eps := make([]string, len(cfg.Endpoints))
		for i, e := range cfg.Endpoints {
			eps[i] = e.Name
		}
		t, err := route.New(route.Config{HubName: name, Logger: cfg.Logger, Endpoints: eps})
		if err != nil {
			return nil, fmt.Errorf("hub: default router: %w", err)
		}
		h.router = t
	}
	h.enricher, _ = h.router.(route.Enricher)
	h.streams = map[string]bool{EventsStream: true}
	h.store = &storeRef{}
	var problems []error
	for _, e := range cfg.Endpoints {
		h.streams[e.Name] = true
		dc := e.Delivery
		dc.Name, dc.Endpoint, dc.Streams, dc.Stream, dc.Partitions = e.Name, e.Endpoint, h.store, e.Name, cfg.Partitions
		if dc.Logger == nil {
			dc.Logger = cfg.Logger
		}
		if dc.Clock == nil {
			dc.Clock = cfg.Clock
		}
		d, err := endpoint.NewDelivery(dc)
		if err != nil {
			problems = append(problems, fmt.Errorf("endpoint %s: %w", e.Name, err))
			continue
		}
		h.deliveries = append(h.deliveries, d)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("hub: invalid config: %w", errors.Join(problems...))
	}
	h.endDelivery = make(chan struct{})
	h.closed = make(chan struct{})
	h.startCtx, h.cancelStart = context.WithCancel(context.Background())
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.group, h.ctx = errgroup.WithContext(h.ctx)
	return h, nil
}

// Router returns the router the hub routes by: Config.Router, or the
// default *route.Table, whose Replace changes the routes, fallback route
// and enrichments while the hub runs, refusing endpoints the hub does not
// have; call [Hub.WakeEndpoints] after a replacement so that dead endpoints
// are tried again at once.
func (h *Hub) Router() route.Router { return h.router }

// Name returns the hub name: the first label of Config.HostName.
func (h *Hub) Name() string { return h.name }

// HostName returns Config.HostName.
func (h *Hub) HostName() string { return h.cfg.HostName }

// Start opens the store, recovers the hub's state, starts its background
// work and then its brokers, and returns once devices can connect. ctx
// bounds startup only; Shutdown or Close called meanwhile ends it too, and
// Start then returns an error wrapping hubkit.ErrClosed. Start may be
// called once. After it failed, Shutdown or Close stops what it started.
func (h *Hub) Start(ctx context.Context) error {
	h.lifeMu.Lock()
	defer h.lifeMu.Unlock()
	switch h.state.Load() {
	case stateNew:
	case stateStopping, stateClosed:
		return hubkit.ErrClosed
	default:
		return errors.New("hub: already started")
	}
	h.state.Store(stateStarting)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.startCtx, cancel)()
	if err := h.start(ctx); err != nil {
		if h.startCtx.Err() != nil {
			return fmt.Errorf("%w: start interrupted: %w", hubkit.ErrClosed, err)
		}
		return err
	}
	h.log.InfoContext(ctx, "hub started", "host", h.cfg.HostName, "partitions", h.cfg.Partitions)
	return nil
}

// start is Start's work; Start holds lifeMu.
func (h *Hub) start(ctx context.Context) error {
	h.q = h.cfg.Queue
	if h.q == nil {
		q, err := h.openStore()
		if err != nil {
			return fmt.Errorf("hub: open store in %s: %w", h.cfg.Dir, err)
		}
		h.q, h.ownQueue = q, true
	}
	h.store.Streams = h.q
	h.commits = groupcommit.New(h.q, groupcommit.Options{OnError: h.commitFailed})
	if err := h.openAuth(ctx); err != nil {
		return err
	}
	if err := h.q.SetRetention(EventsStream, queue.Retention{MaxAge: h.cfg.Retention}); err != nil {
		return fmt.Errorf("hub: set retention of %s: %w", EventsStream, err)
	}
	for i, e := range h.cfg.Endpoints {
		// The store keeps a message as long as its delivery may still send
		// it; a delivery that keeps messages forever gets no age limit.
		if err := h.q.SetRetention(e.Name, queue.Retention{MaxAge: max(h.deliveries[i].Retention(), 0)}); err != nil {
			return fmt.Errorf("hub: set retention of %s: %w", e.Name, err)
		}
	}
	fb, err := h.newFeedback(ctx)
	if err != nil {
		return err
	}
	h.fb = fb
	h.group.Go(func() error { return h.commits.Run(h.ctx) })
	h.group.Go(fb.run)
	h.group.Go(func() error { return h.runConnectionStates(h.ctx) })
	for _, d := range h.deliveries {
		h.delivering.Add(1)
		h.group.Go(func() error {
			defer h.delivering.Done()
			h.deliver(d)
			return nil
		})
	}
	h.group.Go(func() error { return h.runDisconnects(h.ctx) })
	// The hub serves calls from here on, its own first; a Start failing
	// later leaves a hub that Shutdown drains like any other.
	h.state.Store(stateRunning)
	if err := h.ensureDefaultGroup(ctx); err != nil {
		return err
	}
	for i, b := range h.cfg.Brokers {
		if err := b.Start(ctx, h); err != nil {
			return fmt.Errorf("hub: start broker %d: %w", i, err)
		}
	}
	return nil
}

// deliver runs an endpoint's delivery until the hub stops. A store failure
// ends d.Run, which records it in the endpoint's health; deliver runs it
// again after a wait on the hub clock, 1 s doubling up to a minute and
// back to 1 s once a send succeeded, so that a passing store error never
// stops an endpoint for good.
func (h *Hub) deliver(d *endpoint.Delivery) {
	wait := time.Second
	for {
		err := d.Run(h.ctx)
		if err == nil { // stopped, or the hub closes
			return
		}
		failed := h.cfg.Clock.Now()
		h.log.LogAttrs(h.ctx, slog.LevelWarn, "endpoint delivery failed: retrying", slog.String("endpoint", d.Health().EndpointID),
			slog.Duration("retry_in", wait), slog.Any("err", err))
		select {
		case <-h.cfg.Clock.After(wait):
		case <-h.endDelivery:
			return
		case <-h.ctx.Done():
			return
		}
		wait = min(2*wait, time.Minute)
		if d.Health().LastSuccessfulSendAttemptTime.After(failed) {
			wait = time.Second
		}
	}
}

// Shutdown stops the hub gracefully: it shuts the brokers down (they let
// messages already handed over finish, and the hub serves their calls
// until every broker has returned), commits what is pending, flushes
// pending feedback, lets each endpoint's send in flight finish, waits for
// every goroutine and closes the store if the hub opened it. When ctx ends
// first it falls back to Close and returns ctx.Err(). A Shutdown called
// while another runs waits for it (or for its own ctx, then closes). A hub
// that is not running (never started, or its Start failed or is still
// running) has nothing to drain: Shutdown closes it. Shutdown and Close
// are idempotent; afterwards every method returns hubkit.ErrClosed.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.cancelStart()
	h.lifeMu.Lock()
	was := h.state.Load()
	if was == stateRunning {
		h.state.Store(stateStopping)
	}
	h.lifeMu.Unlock()
	switch was {
	case stateStopping: // another Shutdown or a Close
		select {
		case <-h.closed:
		case <-ctx.Done():
			h.close()
			return ctx.Err()
		}
		return h.close()
	case stateRunning:
	default:
		return h.close()
	}
	done := make(chan error, 1)
	go func() { done <- h.drain(ctx) }() // joined below, or abandoned only after Close has stopped all it waits for
	select {
	case err := <-done:
		return errors.Join(err, h.close())
	case <-ctx.Done():
		h.close()
		<-done
		return ctx.Err()
	}
}

// drain is Shutdown's graceful part: brokers first, since their calls
// still commit and settle, then the committer, feedback and deliveries.
// Close ends every wait.
func (h *Hub) drain(ctx context.Context) error {
	var errs []error
	for i, b := range h.cfg.Brokers {
		if err := b.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("hub: shut down broker %d: %w", i, err))
		}
	}
	h.commits.Stop()
	select { // every pending ingest is committed and done
	case <-h.commits.Drained():
	case <-h.ctx.Done(): // Close
	}
	h.fb.stop() // flushes what is batched, then returns
	close(h.endDelivery)
	for _, d := range h.deliveries {
		d.Stop() // the send in flight finishes; Close cancels it
	}
	h.delivering.Wait()
	return errors.Join(errs...)
}

// Close stops the hub at once: it closes the brokers (serving their calls
// until they have returned), fails pending ingests with hubkit.ErrClosed,
// stops every goroutine and waits for them, and closes the store if the
// hub opened it. Close during Start ends Start first. Close is idempotent;
// afterwards every method returns hubkit.ErrClosed.
func (h *Hub) Close() error { return h.close() }

// close stops everything once; brokers are closed only if Start got to
// them.
func (h *Hub) close() error {
	h.closeOnce.Do(func() {
		h.cancelStart()
		h.lifeMu.Lock() // a Start in progress returns soon: its ctx has ended
		was := h.state.Load()
		if was == stateRunning {
			h.state.Store(stateStopping)
		} else if was != stateStopping {
			h.state.Store(stateClosed)
		}
		h.lifeMu.Unlock()
		var errs []error
		if was != stateNew {
			for i, b := range h.cfg.Brokers {
				if err := b.Close(); err != nil {
					errs = append(errs, fmt.Errorf("hub: close broker %d: %w", i, err))
				}
			}
		}
		h.state.Store(stateClosed)
		h.cancel()
		if h.commits != nil {
			h.commits.Stop()
		}
		if err := h.group.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, hubkit.ErrClosed) {
			errs = append(errs, err)
		}
		if h.commits != nil {
			h.commits.Fail(hubkit.ErrClosed) // what the committer left
		}
		for _, d := range h.deliveries {
			errs = append(errs, d.Close())
		}
		for _, e := range h.cfg.Endpoints {
			if err := e.Endpoint.Close(); err != nil {
				errs = append(errs, fmt.Errorf("hub: close endpoint %s: %w", e.Name, err))
			}
		}
		if h.ownQueue {
			if err := h.q.Close(); err != nil {
				errs = append(errs, fmt.Errorf("hub: close store: %w", err))
			}
		}
		h.closeErr = errors.Join(errs...)
		h.log.Info("hub closed")
		close(h.closed)
	})
	return h.closeErr
}

// running returns nil when the hub may serve calls.
func (h *Hub) running() error {
	switch h.state.Load() {
	case stateNew, stateStarting:
		return ErrNotStarted
	case stateStopping, stateClosed:
		return hubkit.ErrClosed
	}
	return nil
}

// serving returns nil when the hub may serve a broker's call: while it
// runs, and while Shutdown or Close stop the brokers, whose teardown
// still ingests, settles, releases and reports disconnects.
func (h *Hub) serving() error {
	if h.state.Load() == stateStopping {
		return nil
	}
	return h.running()
}

// bound returns a context that ends with ctx or when the hub closes, so
// that no call outlives the hub.
func (h *Hub) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(h.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// closedErr turns an error caused by the hub closing into hubkit.ErrClosed.
func (h *Hub) closedErr(err error) error {
	if err != nil && h.state.Load() >= stateStopping && !errors.Is(err, hubkit.ErrClosed) {
		return fmt.Errorf("%w: %w", hubkit.ErrClosed, err)
	}
	return err
}

// Authenticate checks a connection attempt with the configured
// Authenticator.
func (h *Hub) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	if err := h.serving(); err != nil {
		return auth.Identity{}, err
	}
	return h.authn.Authenticate(ctx, c)
}

// openAuth sets up the registry, the policies and the authenticators.
func (h *Hub) openAuth(ctx context.Context) error {
	h.reg = h.cfg.Registry
	areg, _ := h.reg.(*auth.Registry)
	if h.reg == nil {
		r, err := auth.NewRegistry(auth.RegistryConfig{KV: h.q, OnChange: h.registryChanged, Now: h.cfg.Clock.Now})
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		h.reg, areg = r, r
	}
	if areg == nil {
		// Only AuthorizeService is used, which never reads the registry.
		r, err := auth.NewRegistry(auth.RegistryConfig{KV: h.q})
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		areg = r
	}
	pol := h.cfg.Policies
	if pol == nil {
		p, err := auth.NewPolicies(ctx, h.q, "")
		if err != nil {
			return fmt.Errorf("hub: load policies: %w", err)
		}
		pol = p
	}
	a, err := auth.New(auth.Config{Registry: areg, HostName: h.cfg.HostName, Policies: pol, CACertificates: h.cfg.CACertificates, Now: h.cfg.Clock.Now})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.svcAuth, h.policies = a, pol
	h.authn = h.cfg.Authenticator
	if h.authn == nil {
		h.authn = a
	}
	return nil
}

// Registry returns the device registry the hub uses, once started.
func (h *Hub) Registry() Registry { return h.reg }

// Policies returns the shared access policies the hub uses, once started.
func (h *Hub) Policies() *auth.Policies { return h.policies }

// AuthorizeService checks a service-side SAS token (an HTTP Authorization
// header): it must be signed by a shared access policy holding need,
// scoped to the hub, and not expired. It returns the policy name, or an
// error wrapping auth.ErrDenied and hubkit.ErrUnauthorized.
func (h *Hub) AuthorizeService(token string, need auth.Permission) (string, error) {
	if err := h.running(); err != nil {
		return "", err
	}
	return h.svcAuth.AuthorizeService(token, need)
}

// Healthy returns nil while the hub runs: started and not closed.
func (h *Hub) Healthy() error { return h.running() }
