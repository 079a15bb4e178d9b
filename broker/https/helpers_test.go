package https_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/https"
	"github.com/hubkit/hubkit/internal/devcert"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

// Devices known to the test authenticator.
const (
	host     = "localhost"
	key1     = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
	key2     = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	disabled = "disabled-dev" // registered, disabled
	unknown  = "ghost-dev"    // not registered
)

// token returns a SAS token for the device valid for an hour.
func token(deviceID, key string) string {
	return brokertest.Token(host, deviceID, "", key, time.Now().Add(time.Hour))
}

// testPKI is a CA the test generates, a server certificate for 127.0.0.1
// and localhost, and client certificates it signs on demand.
type testPKI struct {
	*devcert.CA
	caFile string // PEM of the CA, for NODE_EXTRA_CA_CERTS
	server tls.Certificate
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, err := devcert.NewCA("hubkit test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{CA: ca, caFile: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(p.caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if p.server, err = ca.Server("localhost", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	return p
}

// clientCert signs a client certificate for cn with the CA.
func (p *testPKI) clientCert(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	c, err := p.Client(cn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// client returns an HTTP/1.1 client that trusts the test CA, with the
// given client certificates.
func (p *testPKI) client(t testing.TB, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Pool(), Certificates: certs}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// startBroker starts a Broker for h on 127.0.0.1:0 and returns it with its
// base URL. It is closed when the test ends.
func startBroker(t testing.TB, p *testPKI, h broker.Hub) (*https.Broker, string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, bench := t.(*testing.B); bench {
		log = slog.New(slog.DiscardHandler)
	}
	b, err := https.New(https.Options{
		Addr:      "127.0.0.1:0",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{p.server}},
		Logger:    log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, "https://" + b.Addr().String()
}

// fakeHub is a broker.Hub for failure paths: it authenticates with the
// given Authenticator, records D2C messages and reports them durable (or
// refuses them) from another goroutine, and holds no C2D message.
type fakeHub struct {
	auth.Authenticator
	refuse error // Ingest refuses every message with it when set

	mu  sync.Mutex // guards d2c
	d2c []hubkit.Message
}

// allowAll accepts every request as the device it names.
var allowAll = auth.AuthenticatorFunc(func(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	return auth.Identity{DeviceID: c.DeviceID}, nil
})

func newFakeHub(a auth.Authenticator) *fakeHub { return &fakeHub{Authenticator: a} }

func (h *fakeHub) Ingest(ctx context.Context, id auth.Identity, msg *hubkit.Message, done func(error)) {
	if h.refuse != nil {
		go done(h.refuse)
		return
	}
	h.mu.Lock()
	h.d2c = append(h.d2c, *msg.Clone())
	h.mu.Unlock()
	go done(nil)
}

func (h *fakeHub) messages() []hubkit.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hubkit.Message(nil), h.d2c...)
}

func (h *fakeHub) Connected(ctx context.Context, id auth.Identity)    {}
func (h *fakeHub) Disconnected(ctx context.Context, id auth.Identity) {}

func (h *fakeHub) ReceiveC2D(ctx context.Context, deviceID string, opts queue.ReceiveOptions) (queue.Delivery, error) {
	return queue.Delivery{}, queue.ErrEmpty
}

func (h *fakeHub) Settle(ctx context.Context, deviceID, lockToken string, how broker.Settlement) error {
	return fmt.Errorf("fake hub: settle %q: %w", lockToken, queue.ErrLockLost)
}

// clock is a store clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// realHub is brokertest's Hub over a store, with hubkit's own
// authenticator over a registry kept in the same store.
type realHub struct {
	*brokertest.Hub
	q     queue.DurableQueue
	clock *clock
}

// newRealHub opens a Pebble store in a temporary directory and returns
// newHubOn over it.
func newRealHub(t testing.TB, p *testPKI) *realHub {
	t.Helper()
	c := &clock{t: time.Now()}
	q, err := pebble.Open(t.TempDir(), pebble.Options{Now: c.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return newHubOn(t, p, q, c)
}

// newHubOn registers dev-1 and "dev#1?x%" (key1), dev-2 (key2), a
// disabled device and cert-dev, whose certificate the test CA signs, in
// q's registry, and returns a Hub over q, which it closes when the test ends.
func newHubOn(t testing.TB, p *testPKI, q queue.DurableQueue, c *clock) *realHub {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() { q.Close() })
	reg, err := auth.NewRegistry(auth.RegistryConfig{KV: q})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []auth.Device{
		{DeviceID: "dev-1", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: key1}}},
		{DeviceID: "dev#1?x%", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: key1}}},
		{DeviceID: "dev-2", Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: key2}}},
		{DeviceID: disabled, Status: auth.StatusDisabled, Authentication: auth.Authentication{SymmetricKey: auth.SymmetricKey{PrimaryKey: key1}}},
		{DeviceID: "cert-dev", Authentication: auth.Authentication{Type: auth.AuthCertificateAuthority}},
	} {
		if _, err := reg.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	a, err := auth.New(auth.Config{Registry: reg, HostName: host, CACertificates: []*x509.Certificate{p.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	h := brokertest.New(a, q)
	t.Cleanup(func() { h.Close() })
	return &realHub{Hub: h, q: q, clock: c}
}

// enqueue puts msg in the device's C2D queue as the hub's service API
// would, journaling its outcome.
func (h *realHub) enqueue(t testing.TB, deviceID string, msg hubkit.Message) {
	t.Helper()
	msg.System.To = "/devices/" + deviceID + "/messages/deviceBound"
	if _, err := h.q.Enqueue(context.Background(), deviceID, &msg, queue.EnqueueOptions{Journal: true}); err != nil {
		t.Fatal(err)
	}
}

// outcomes returns the journal so far as "Status:messageId".
func (h *realHub) outcomes(t testing.TB, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		os, err := h.q.Outcomes(ctx, uint64(len(out)), n-len(out))
		if err != nil {
			t.Fatalf("outcomes: %v (have %q)", err, out)
		}
		for _, o := range os {
			out = append(out, o.Status.String()+":"+o.Message.System.MessageID)
		}
	}
	return out
}

// stored returns the D2C messages stored so far, waiting for at least n.
func (h *realHub) stored(t testing.TB, n int) []hubkit.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := h.Messages(ctx, n)
	if err != nil {
		t.Fatalf("reading %d stored messages: %v (have %d)", n, err, len(ms))
	}
	_, next, err := h.q.Bounds(ctx, brokertest.Stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	if next != uint64(n) {
		t.Fatalf("store holds %d messages, want %d", next, n)
	}
	return ms
}
