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

// Hub states.
const (
	stateNew int32 = iota
	stateRunning
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

	state atomic.Int32

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
	enricher      route.Enricher  // nil when router is not one
	streams       map[string]bool // the endpoint streams: events and each custom endpoint
	unknownWarned sync.Map        // endpoint name → *atomic.Int64: unix nanoseconds of the last warning that a route names it
	deliveries    []*endpoint.Delivery

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
}

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
	for _, e := range cfg.Endpoints {
		h.streams[e.Name] = true
	}
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
// bounds startup only. Start may be called once.
func (h *Hub) Start(ctx context.Context) error {
	if !h.state.CompareAndSwap(stateNew, stateRunning) {
		if h.state.Load() == stateClosed {
			return hubkit.ErrClosed
		}
		return errors.New("hub: already started")
	}
	h.q = h.cfg.Queue
	if h.q == nil {
		q, err := h.openStore()
		if err != nil {
			return fmt.Errorf("hub: open store in %s: %w", h.cfg.Dir, err)
		}
		h.q, h.ownQueue = q, true
	}
	h.commits = groupcommit.New(h.q, groupcommit.Options{OnError: h.commitFailed})
	if err := h.openAuth(ctx); err != nil {
		return err
	}
	if err := h.q.SetRetention(EventsStream, queue.Retention{MaxAge: h.cfg.Retention}); err != nil {
		return fmt.Errorf("hub: set retention of %s: %w", EventsStream, err)
	}
	for _, e := range h.cfg.Endpoints {
		if err := h.q.SetRetention(e.Name, queue.Retention{MaxAge: storeRetention(e.Delivery)}); err != nil {
			return fmt.Errorf("hub: set retention of %s: %w", e.Name, err)
		}
		dc := e.Delivery
		dc.Name, dc.Endpoint, dc.Streams, dc.Stream, dc.Partitions = e.Name, e.Endpoint, h.q, e.Name, h.cfg.Partitions
		if dc.Logger == nil {
			dc.Logger = h.cfg.Logger
		}
		if dc.Clock == nil {
			dc.Clock = h.cfg.Clock
		}
		d, err := endpoint.NewDelivery(dc)
		if err != nil {
			return fmt.Errorf("hub: endpoint %s: %w", e.Name, err)
		}
		h.deliveries = append(h.deliveries, d)
	}
	if err := h.ensureDefaultGroup(ctx); err != nil {
		return err
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
		h.group.Go(func() error {
			// A store failure stops this endpoint only, never the hub.
			if err := d.Run(h.ctx); err != nil {
				h.log.LogAttrs(h.ctx, slog.LevelError, "endpoint delivery stopped", slog.String("endpoint", d.Health().EndpointID), slog.Any("err", err))
			}
			return nil
		})
	}
	for i, b := range h.cfg.Brokers {
		if err := b.Start(ctx, h); err != nil {
			return fmt.Errorf("hub: start broker %d: %w", i, err)
		}
	}
	h.group.Go(func() error { return h.runDisconnects(h.ctx) })
	h.log.InfoContext(ctx, "hub started", "host", h.cfg.HostName, "partitions", h.cfg.Partitions)
	return nil
}

// storeRetention is the store retention of an endpoint's stream: as long
// as its delivery may still send a message (DeliveryConfig.Retention, with
// the delivery's defaults), so that the store never trims one first; 0, no
// age limit, for a delivery that keeps messages forever.
func storeRetention(dc endpoint.DeliveryConfig) time.Duration {
	switch {
	case dc.Retention < 0:
		return 0
	case dc.Retention > 0:
		return dc.Retention
	case dc.RetryPeriod > 0:
		return dc.RetryPeriod
	}
	return time.Hour
}

// Shutdown stops the hub gracefully: it shuts the brokers down (they let
// messages already handed over finish), stops accepting new work, commits
// what is pending, flushes pending feedback, waits for every goroutine and
// closes the store if the hub opened it. When ctx ends first it falls back
// to Close and returns ctx.Err(). Shutdown and Close are idempotent;
// afterwards every method returns hubkit.ErrClosed.
func (h *Hub) Shutdown(ctx context.Context) error {
	if was := h.state.Swap(stateClosed); was != stateRunning {
		return h.close(was)
	}
	done := make(chan error, 1)
	go func() { // joined below, or abandoned only after Close has stopped all it waits for
		var errs []error
		for i, b := range h.cfg.Brokers {
			if err := b.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("hub: shut down broker %d: %w", i, err))
			}
		}
		if h.commits != nil { // nil when Start failed before it
			h.commits.Stop()
			select { // every pending ingest is committed and done
			case <-h.commits.Drained():
			case <-h.ctx.Done(): // Close, or a Start that failed before the committer ran
			}
		}
		h.fb.stop() // flushes what is batched, then returns
		h.cancel()
		errs = append(errs, h.group.Wait())
		done <- errors.Join(errs...)
	}()
	select {
	case err := <-done:
		return errors.Join(err, h.close(stateRunning))
	case <-ctx.Done():
		h.close(stateRunning)
		<-done
		return ctx.Err()
	}
}

// Close stops the hub at once: it closes the brokers, fails pending
// ingests with hubkit.ErrClosed, stops every goroutine and waits for them,
// and closes the store if the hub opened it. Close is idempotent; afterwards
// every method returns hubkit.ErrClosed.
func (h *Hub) Close() error { return h.close(h.state.Swap(stateClosed)) }

// close stops everything once; was is the state before closing began, so
// that brokers never started are not closed.
func (h *Hub) close(was int32) error {
	h.closeOnce.Do(func() {
		var errs []error
		if was != stateNew {
			for i, b := range h.cfg.Brokers {
				if err := b.Close(); err != nil {
					errs = append(errs, fmt.Errorf("hub: close broker %d: %w", i, err))
				}
			}
		}
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
	})
	return h.closeErr
}

// running returns nil when the hub may serve calls.
func (h *Hub) running() error {
	switch h.state.Load() {
	case stateNew:
		return ErrNotStarted
	case stateClosed:
		return hubkit.ErrClosed
	}
	return nil
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
	if err != nil && h.state.Load() == stateClosed && !errors.Is(err, hubkit.ErrClosed) {
		return fmt.Errorf("%w: %w", hubkit.ErrClosed, err)
	}
	return err
}

// Authenticate checks a connection attempt with the configured
// Authenticator.
func (h *Hub) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	if err := h.running(); err != nil {
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
