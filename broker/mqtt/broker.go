package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/broker"
)

// Broker serves IoT Hub's MQTT dialect. Create it with [New], then Start,
// and end it with Shutdown or Close. It is safe for concurrent use.
type Broker struct {
	opts Options
	log  *slog.Logger

	hub       broker.Hub
	server    *mochi.Server
	listeners []*listener
	ctx       context.Context // the broker's lifetime: cancelled by Close once connections are closed
	cancel    context.CancelFunc
	admitCtx  context.Context // bounds authentication: cancelled as soon as Close begins
	stopAdmit context.CancelFunc

	conns    sync.Map // net.Conn -> *conn, for every connection past CONNECT
	inflight atomic.Int64
	draining atomic.Bool
	drained  chan struct{} // capacity 1: inflight reached zero while draining

	mu         sync.Mutex // guards the fields below
	state      int        // stateNew, stateStarted, stateClosed
	stopping   bool       // no new goroutines may start
	byIdentity map[string]*conn
	sessions   map[string]byte // cleanSession=0 identities subscribed to C2D -> QoS
	wg         sync.WaitGroup  // goroutines started through goFunc
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

var _ broker.Broker = (*Broker)(nil)

// New checks opts and returns a Broker; nothing runs until Start.
func New(opts Options) (*Broker, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Broker{
		opts:       o,
		log:        o.Logger.With("component", "broker", "protocol", "mqtt"),
		drained:    make(chan struct{}, 1),
		byIdentity: make(map[string]*conn),
		sessions:   make(map[string]byte),
	}, nil
}

// Start binds the listeners and returns once devices can connect, talking
// to h. ctx bounds startup only. Start may be called once.
func (b *Broker) Start(ctx context.Context, h broker.Hub) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateClosed:
		return hubkit.ErrClosed
	case stateStarted:
		return errors.New("mqtt: Start called twice")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.hub = h
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.admitCtx, b.stopAdmit = context.WithCancel(b.ctx)
	b.server = mochi.New(&mochi.Options{
		Capabilities: &mochi.Capabilities{
			MaximumClients:               math.MaxInt64,
			MaximumClientWritesPending:   1, // we write to devices ourselves; mochi never queues for them
			MaximumSessionExpiryInterval: 0, // we keep the only session state that matters (the C2D subscription)
			MaximumPacketSize:            uint32(b.opts.MaxPacketSize),
			ReceiveMaximum:               uint16(b.opts.MaxInflight),
			MaximumInflight:              uint16(b.opts.MaxInflight),
			MinimumProtocolVersion:       4,
			MaximumQos:                   1,
			WildcardSubAvailable:         1,
		},
		ClientNetReadBufferSize:  b.opts.ReadBufferSize,
		ClientNetWriteBufferSize: 1024,
		Logger:                   slog.New(slog.DiscardHandler),
		SysTopicResendInterval:   1 << 30, // seconds: we publish no $SYS topics
	})
	if err := b.server.AddHook(&hooks{b: b}, nil); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	for _, l := range []struct {
		id, addr string
		tls, ws  bool
	}{
		{"tcp", b.opts.TCPAddr, false, false},
		{"tls", b.opts.TLSAddr, true, false},
		{"ws", b.opts.WebSocketAddr, b.opts.TLSConfig != nil, true},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			b.closeListeners()
			return fmt.Errorf("mqtt: listen %s on %s: %w", l.id, l.addr, err)
		}
		if l.tls {
			ln = tls.NewListener(ln, b.opts.TLSConfig)
		}
		ml := &listener{id: l.id, ln: ln, timeout: b.opts.ConnectTimeout, ended: b.connEnded}
		if l.ws {
			ml.ws = &http.Server{ReadHeaderTimeout: b.opts.ConnectTimeout, ErrorLog: nil}
		}
		b.listeners = append(b.listeners, ml)
		if err := b.server.AddListener(ml); err != nil {
			b.closeListeners()
			return fmt.Errorf("mqtt: %w", err)
		}
	}
	if err := b.server.Serve(); err != nil {
		b.closeListeners()
		return fmt.Errorf("mqtt: %w", err)
	}
	b.state = stateStarted
	for _, l := range b.listeners {
		b.log.InfoContext(ctx, "listening", "listener", l.id, "addr", l.Address())
	}
	return nil
}

func (b *Broker) closeListeners() {
	for _, l := range b.listeners {
		l.stop()
	}
	b.listeners = nil
}

// TCPAddr returns the bound address of the plain MQTT listener, or nil.
func (b *Broker) TCPAddr() net.Addr { return b.addr("tcp") }

// TLSAddr returns the bound address of the MQTT over TLS listener, or nil.
func (b *Broker) TLSAddr() net.Addr { return b.addr("tls") }

// WebSocketAddr returns the bound address of the WebSocket listener, or nil.
func (b *Broker) WebSocketAddr() net.Addr { return b.addr("ws") }

func (b *Broker) addr(id string) net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.listeners {
		if l.id == id {
			return l.ln.Addr()
		}
	}
	return nil
}

// Disconnect closes the connection of the identity, as when it is disabled
// or deleted: with moduleID empty, the device's connection and those of
// all its modules; otherwise only that module's. It does not wait for the
// connections to end. It looks at every connection when closing a device,
// which is fine for a call as rare as disabling a device.
func (b *Broker) Disconnect(deviceID, moduleID string) {
	var closing []*conn
	b.mu.Lock()
	if moduleID != "" {
		if c := b.byIdentity[deviceID+"/"+moduleID]; c != nil {
			closing = append(closing, c)
		}
	} else {
		for _, c := range b.byIdentity {
			if c.id.DeviceID == deviceID {
				closing = append(closing, c)
			}
		}
	}
	b.mu.Unlock()
	for _, c := range closing {
		c.close(errDisconnected)
	}
}

// Shutdown stops accepting connections, stops reading new messages, waits
// until every message already handed to the hub is settled and its PUBACK
// written, then closes every connection (unacknowledged C2D deliveries are
// released) and waits for the broker's goroutines. When ctx ends first it
// falls back to Close and returns ctx.Err().
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	started := b.state == stateStarted
	b.mu.Unlock()
	if started {
		for _, l := range b.listeners {
			l.stop()
		}
		b.draining.Store(true)
		for b.inflight.Load() > 0 {
			select {
			case <-b.drained:
			case <-ctx.Done():
				b.Close()
				return ctx.Err()
			}
		}
	}
	return b.Close()
}

// Close closes every listener and connection at once and waits for the
// broker's goroutines. Acknowledgements not yet written are lost (devices
// send those messages again). Close is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.state == stateClosed {
		b.mu.Unlock()
		return nil
	}
	started := b.state == stateStarted
	b.state = stateClosed
	b.mu.Unlock()
	if !started {
		return nil
	}
	b.draining.Store(true)
	b.stopAdmit() // an authentication in progress must not hold Close
	// Close connections ourselves first: mochi would send MQTT 3.1.1
	// clients a DISCONNECT, which only MQTT 5 allows a server to send.
	// All at once, since each close may wait a little for a device that
	// does not read (conn.close).
	var closing sync.WaitGroup
	b.conns.Range(func(_, v any) bool {
		closing.Go(func() { v.(*conn).close(errShutdown) })
		return true
	})
	closing.Wait()
	_ = b.server.Close() // closes the listeners and every connection they accepted; waits for mochi's client goroutines
	b.cancel()
	b.conns.Range(func(k, _ any) bool { b.connEnded(k.(net.Conn)); return true })
	b.mu.Lock()
	b.stopping = true
	b.mu.Unlock()
	b.wg.Wait()
	b.log.Info("stopped")
	return nil
}

// goFunc runs f in a goroutine that Close waits for, unless Close has
// begun; it reports whether f runs.
func (b *Broker) goFunc(f func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopping {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
	return true
}

// done records that n messages handed to the hub were settled.
func (b *Broker) done(n int) {
	if b.inflight.Add(int64(-n)) == 0 && b.draining.Load() {
		select {
		case b.drained <- struct{}{}:
		default:
		}
	}
}

// connEnded tears down the state of a connection mochi is done with.
func (b *Broker) connEnded(nc net.Conn) {
	if v, ok := b.conns.Load(nc); ok {
		v.(*conn).teardown()
	}
}

// Errors that end connections, for logs and MQTT 5 reason strings.
var (
	errDisconnected = errors.New("mqtt: disconnected by the hub")
	errReplaced     = errors.New("mqtt: replaced by a new connection of the same identity")
	errExpired      = errors.New("mqtt: SAS token expired")
	errShutdown     = errors.New("mqtt: broker shutting down")
)
