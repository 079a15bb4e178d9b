package https_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/https"
	"github.com/hubkit/hubkit/queue"
)

// Devices known to the test authenticator.
const (
	host     = "localhost"
	key1     = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
	key2     = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	disabled = "disabled-dev" // the authenticator refuses it with DeviceDisabled
	unknown  = "ghost-dev"    // the authenticator refuses it with DeviceNotFound
)

// token returns a SAS token for the device valid for an hour.
func token(deviceID, key string) string {
	return brokertest.Token(host, deviceID, "", key, time.Now().Add(time.Hour))
}

// testPKI is a CA the test generates, a server certificate for 127.0.0.1
// and localhost, and client certificates it signs on demand.
type testPKI struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	caFile string // PEM of the CA, for NODE_EXTRA_CA_CERTS
	server tls.Certificate
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hubkit test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{ca: ca, caKey: caKey, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	p.server = p.issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	return p
}

// issue signs a certificate for cn with the CA.
func (p *testPKI) issue(t testing.TB, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// authenticator accepts SAS tokens of dev-1 and dev-2 (brokertest.Devices),
// certificates the test CA signed whose CN is the device id, and refuses
// the disabled and unknown devices with IoT Hub's codes.
func (p *testPKI) authenticator() auth.Authenticator {
	var devs brokertest.Devices
	devs.Add("dev-1", "", key1)
	devs.Add("dev-2", "", key2)
	devs.Add("dev#1 ?x", "", key1) // needs URL encoding in a path
	return auth.AuthenticatorFunc(func(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
		switch {
		case c.DeviceID == disabled:
			return auth.Identity{}, fmt.Errorf("%w: %w", auth.ErrDenied, hubkit.ErrDeviceDisabled)
		case c.DeviceID == unknown:
			return auth.Identity{}, fmt.Errorf("%w: %w", auth.ErrDenied, hubkit.ErrDeviceNotFound)
		case c.Password == "" && len(c.PeerCertificates) > 0:
			leaf := c.PeerCertificates[0]
			inter := x509.NewCertPool()
			for _, ic := range c.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := leaf.Verify(x509.VerifyOptions{Roots: p.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			if err != nil || leaf.Subject.CommonName != c.DeviceID {
				return auth.Identity{}, fmt.Errorf("%w: certificate not valid for %q", auth.ErrDenied, c.DeviceID)
			}
			return auth.Identity{DeviceID: c.DeviceID, Method: auth.AuthMethod{Scope: "device", Type: "x509Certificate", Issuer: "external"}}, nil
		}
		return devs.Authenticate(ctx, c)
	})
}

// client returns an HTTP/1.1 client that trusts the test CA, with the
// given client certificates.
func (p *testPKI) client(t testing.TB, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool, Certificates: certs}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// startBroker starts a Broker for h on 127.0.0.1:0 and returns it with its
// base URL. It is closed when the test ends.
func startBroker(t testing.TB, p *testPKI, h broker.Hub) (*https.Broker, string) {
	t.Helper()
	b, err := https.New(https.Options{
		Addr:      "127.0.0.1:0",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{p.server}},
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
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

// fakeHub is a broker.Hub kept in memory: D2C messages are recorded and
// reported durable from another goroutine, and C2D messages wait in
// per-device queues with locks, as queue.DeviceQueues keeps them.
type fakeHub struct {
	auth.Authenticator
	refuse error // Ingest refuses every message with it when set

	mu       sync.Mutex // guards the fields below
	d2c      []hubkit.Message
	c2d      map[string][]*c2dEntry
	seq      uint64
	tokens   int
	lastLock time.Duration
	settled  []string // "complete m1", "reject m2", ...
}

type c2dEntry struct {
	msg         hubkit.Message
	token       string
	lockedUntil time.Time
}

func newFakeHub(a auth.Authenticator) *fakeHub {
	return &fakeHub{Authenticator: a, c2d: map[string][]*c2dEntry{}}
}

func (h *fakeHub) Ingest(ctx context.Context, id auth.Identity, msg *hubkit.Message, done func(error)) {
	if h.refuse != nil {
		go done(h.refuse)
		return
	}
	m := msg.Clone()
	m.System.ConnectionDeviceID = id.DeviceID
	h.mu.Lock()
	h.d2c = append(h.d2c, *m)
	h.mu.Unlock()
	go done(nil)
}

func (h *fakeHub) Connected(ctx context.Context, id auth.Identity)    {}
func (h *fakeHub) Disconnected(ctx context.Context, id auth.Identity) {}

func (h *fakeHub) messages() []hubkit.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hubkit.Message(nil), h.d2c...)
}

// sendC2D enqueues msg for the device as the hub's service API would.
func (h *fakeHub) sendC2D(deviceID string, msg hubkit.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	msg.System.SequenceNumber = h.seq
	msg.System.EnqueuedTime = time.Now()
	msg.System.To = "/devices/" + deviceID + "/messages/deviceBound"
	h.c2d[deviceID] = append(h.c2d[deviceID], &c2dEntry{msg: msg})
}

func (h *fakeHub) ReceiveC2D(ctx context.Context, deviceID string, lock time.Duration, noWait bool) (queue.Delivery, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastLock = lock
	now := time.Now()
	for _, e := range h.c2d[deviceID] {
		if e.token == "" || now.After(e.lockedUntil) {
			h.tokens++
			e.token = "lock-" + strconv.Itoa(h.tokens)
			e.lockedUntil = now.Add(lock)
			return queue.Delivery{Queue: deviceID, Message: *e.msg.Clone(), LockToken: e.token, LockedUntil: e.lockedUntil}, nil
		}
	}
	return queue.Delivery{}, queue.ErrEmpty
}

func (h *fakeHub) Settle(ctx context.Context, deviceID, lockToken string, how broker.Settlement) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.c2d[deviceID]
	for i, e := range q {
		if e.token != lockToken || time.Now().After(e.lockedUntil) {
			continue
		}
		switch how {
		case broker.Complete, broker.Reject:
			h.c2d[deviceID] = append(q[:i], q[i+1:]...)
		case broker.Abandon:
			e.msg.System.DeliveryCount++
			e.token = ""
		case broker.Release:
			e.token = ""
		}
		h.settled = append(h.settled, fmt.Sprintf("%d %s", how, e.msg.System.MessageID))
		return nil
	}
	return fmt.Errorf("fake hub: settle %q: %w", lockToken, queue.ErrLockLost)
}

func (h *fakeHub) state() (lastLock time.Duration, settled []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastLock, append([]string(nil), h.settled...)
}
