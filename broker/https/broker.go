package https

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker"
)

// Options configure a [Broker]. The zero value is valid for [Broker.Handler];
// [Broker.Start] also needs TLSConfig.
type Options struct {
	// Addr is the TCP address Start listens on, e.g. "127.0.0.1:8443".
	// Empty means ":443", the only port the device SDKs dial.
	Addr string

	// TLSConfig is the server side of TLS, with Certificates or
	// GetCertificate set. Start requires it; the broker uses a clone. When
	// its ClientAuth is tls.NoClientCert, the clone asks for a client
	// certificate (tls.RequestClientCert) so that X.509 devices can present
	// one: the hub's Authenticator, not TLS, decides whether it is valid.
	TLSConfig *tls.Config

	// MaxMessageSize is the largest device-to-cloud message, and the largest
	// batch, in bytes as counted by [hubkit.Message.Size]. Zero means
	// [hubkit.MaxD2CSize] (256 KiB).
	MaxMessageSize int

	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
}

// A Broker serves IoT Hub's HTTPS device API. Its methods are safe for
// concurrent use.
type Broker struct {
	opts Options // defaults filled in
	log  *slog.Logger
	now  func() time.Time // stamps error bodies; tests may replace it

	// ctx is the parent of every request's context: Close cancels it, so
	// that requests in progress, on our server or on one Handler is
	// mounted on, stop calling the hub.
	ctx    context.Context
	cancel context.CancelFunc
	// reqs counts the requests in Handler's handlers; Shutdown and Close
	// wait for it, so that no handler calls the hub after they returned.
	// Add happens under mu while !closed, never after Wait began.
	reqs sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	closed bool
	srv    *http.Server // nil until Start
	ln     net.Listener
	group  errgroup.Group // runs Serve; joined by Shutdown and Close
}

var _ broker.Broker = (*Broker)(nil)

// New checks opts and returns a Broker. It binds nothing and starts no
// goroutine: call Start, or mount Handler on a server of your own.
func New(opts Options) (*Broker, error) {
	var problems []error
	if opts.MaxMessageSize < 0 {
		problems = append(problems, fmt.Errorf("MaxMessageSize %d is negative", opts.MaxMessageSize))
	}
	if c := opts.TLSConfig; c != nil && len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
		problems = append(problems, errors.New("TLSConfig has no certificate: set Certificates or GetCertificate"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("https: invalid options: %w", errors.Join(problems...))
	}
	if opts.Addr == "" {
		opts.Addr = ":443"
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = hubkit.MaxD2CSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TLSConfig != nil {
		opts.TLSConfig = opts.TLSConfig.Clone()
		if opts.TLSConfig.ClientAuth == tls.NoClientCert {
			opts.TLSConfig.ClientAuth = tls.RequestClientCert
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Broker{
		opts:   opts,
		log:    opts.Logger.With("component", "broker", "protocol", "https"),
		now:    time.Now,
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// Start listens on Options.Addr with TLS and serves the device API for h
// until Shutdown or Close. It returns once the listener is bound; ctx bounds
// only that. It fails when h or TLSConfig is nil, when the broker was
// started before, and with hubkit.ErrClosed after Shutdown or Close. The
// server reads request headers within 30 s and closes connections idle for
// 2 minutes, so that silent clients cannot pile up.
func (b *Broker) Start(ctx context.Context, h broker.Hub) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return hubkit.ErrClosed
	case h == nil:
		return errors.New("https: Start with a nil Hub")
	case b.srv != nil:
		return errors.New("https: already started")
	case b.opts.TLSConfig == nil:
		return errors.New("https: Options.TLSConfig is required to Start; without TLS, mount Handler on your own server")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", b.opts.Addr)
	if err != nil {
		return fmt.Errorf("https: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           b.Handler(h),
		TLSConfig:         b.opts.TLSConfig,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
	b.srv, b.ln = srv, ln
	b.group.Go(func() error {
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("https: serve: %w", err)
		}
		return nil
	})
	b.log.LogAttrs(ctx, slog.LevelInfo, "listening", slog.String("addr", ln.Addr().String()))
	return nil
}

// Addr returns the address Start bound, or nil before Start.
func (b *Broker) Addr() net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return nil
	}
	return b.ln.Addr()
}

// Disconnect does nothing: HTTPS devices hold no session, and every request
// is authenticated on its own, so a disabled or deleted device is refused
// from its next request on.
func (b *Broker) Disconnect(deviceID, moduleID string) {}

// Shutdown stops accepting requests, waits for those in progress (a send
// waits for the hub to report its messages durable) and closes every
// connection. When ctx ends first it closes at once and returns ctx.Err().
// It waits for the requests in Handler's handlers too, also when Handler is
// mounted on another server. It is idempotent; Handler's handlers answer
// 503 afterwards.
func (b *Broker) Shutdown(ctx context.Context) error {
	srv, first := b.beginClose()
	if !first {
		return nil
	}
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	if err == nil {
		err = b.waitRequests(ctx)
	}
	return errors.Join(err, b.stop(srv))
}

// Close closes the listener and every connection at once, also while a
// Shutdown waits; requests in progress end without an answer. It cancels
// the requests in Handler's handlers, also when Handler is mounted on
// another server, and returns once they have returned, so that none calls
// the hub afterwards. It is idempotent; Handler's handlers answer 503
// afterwards.
func (b *Broker) Close() error {
	srv, _ := b.beginClose()
	return b.stop(srv)
}

// beginClose marks the broker closed, so that no request enters a handler
// from now on. It returns the server to stop, nil before Start, and
// whether this was the first call.
func (b *Broker) beginClose() (srv *http.Server, first bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	first = !b.closed
	b.closed = true
	if first && b.srv != nil {
		b.log.Info("closing")
	}
	return b.srv, first
}

// stop closes srv unless it is nil, cancels the requests in progress and
// waits for the handlers and Serve to return. The wait is bounded as long
// as the hub honours the requests' contexts.
func (b *Broker) stop(srv *http.Server) error {
	var err error
	if srv != nil {
		err = srv.Close() // first, so that cancelled requests get no answer
	}
	b.cancel()
	b.reqs.Wait()
	return errors.Join(err, b.group.Wait())
}

// waitRequests waits for the requests in Handler's handlers to return, or
// for ctx to end.
func (b *Broker) waitRequests(ctx context.Context) error {
	done := make(chan struct{})
	go func() { // ends with the last request, at the latest once stop cancelled them
		b.reqs.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enter counts a request in a handler and returns its context, a child of
// parent that Close cancels, and done, to call when the handler returns.
// It returns ok false once Shutdown or Close began.
func (b *Broker) enter(parent context.Context) (ctx context.Context, done func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, false
	}
	b.reqs.Add(1)
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(b.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
		b.reqs.Done()
	}, true
}
