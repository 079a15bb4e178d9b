// Devhub is a complete IoT hub for development on one machine: MQTT (plain,
// TLS and WebSockets), the HTTPS device API and the service REST API, with
// its data, a development CA and a server certificate kept in one directory.
//
//	go run ./examples/devhub
//
// On start it prints the CA certificate to trust, the connection strings of
// a demo device and of the iothubowner policy, and commands to try. Every
// telemetry message is logged, read from the built-in events endpoint by a
// consumer group of its own. Stop it with Ctrl-C.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/broker/https"
	"github.com/hubkit/hubkit/broker/mqtt"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/hub/service"
	"github.com/hubkit/hubkit/internal/devcert"
)

const (
	demoDevice    = "demo-device"
	consumerGroup = "devhub"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("devhub stopped", "err", err)
		os.Exit(1)
	}
	log.Info("devhub stopped")
}

func run(log *slog.Logger) error {
	host := flag.String("host", "localhost", "hub host name: the name devices dial, tokens name and the server certificate covers")
	dir := flag.String("data", "hubdata", "directory of the store and the certificates")
	mqttAddr := flag.String("mqtt", "127.0.0.1:1883", "plain MQTT address (empty for none)")
	mqttsAddr := flag.String("mqtts", "127.0.0.1:8883", "MQTT over TLS address")
	wsAddr := flag.String("ws", "127.0.0.1:9443", "MQTT over WebSockets (TLS) address")
	httpsAddr := flag.String("https", "127.0.0.1:8443", "HTTPS address of the device API and the service API")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tlsConfig, caFile, err := devCertificates(filepath.Join(*dir, "certs"), *host)
	if err != nil {
		return err
	}
	mb, err := mqtt.New(mqtt.Options{
		TCPAddr:       *mqttAddr,
		TLSAddr:       *mqttsAddr,
		WebSocketAddr: *wsAddr,
		TLSConfig:     tlsConfig,
		HostName:      *host,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	h, err := hub.New(hub.Config{
		HostName: *host,
		Dir:      filepath.Join(*dir, "store"),
		Brokers:  []broker.Broker{mb},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		return errors.Join(err, h.Close())
	}

	// The HTTPS device API and the service API share one port, as they
	// share 443 at IoT Hub; this program serves both on its own server.
	hb, err := https.New(https.Options{Logger: log})
	if err != nil {
		return errors.Join(err, h.Close())
	}
	ln, err := net.Listen("tcp", *httpsAddr)
	if err != nil {
		return errors.Join(err, h.Close())
	}
	srv := &http.Server{
		Handler:           service.New(h, service.Options{Logger: log, Devices: hb.Handler(h)}),
		TLSConfig:         tlsConfig.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	srv.TLSConfig.ClientAuth = tls.RequestClientCert // for X.509 devices

	// A failed server or telemetry reader stops the program as a signal does.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	err = greet(ctx, h, caFile, mb, ln.Addr())
	if err == nil {
		g.Go(func() error { return logTelemetry(gctx, h, log) })
		log.Info("devhub ready", "host", *host, "data", *dir)
		<-gctx.Done()
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(sctx), hb.Shutdown(sctx), g.Wait(), h.Shutdown(sctx))
}

// greet creates the demo device and the consumer group when absent, and
// prints what a newcomer needs: the CA certificate, the connection
// strings, the addresses and commands to try.
func greet(ctx context.Context, h *hub.Hub, caFile string, mb *mqtt.Broker, httpsAddr net.Addr) error {
	d, err := h.CreateDevice(ctx, auth.Device{DeviceID: demoDevice})
	if errors.Is(err, hubkit.ErrDeviceAlreadyExists) {
		d, err = h.GetDevice(ctx, demoDevice)
	}
	if err != nil {
		return err
	}
	if err := h.CreateConsumerGroup(ctx, consumerGroup); err != nil && !errors.Is(err, hub.ErrConsumerGroupExists) {
		return err
	}
	owner, ok1 := h.Policies().Get("iothubowner")
	sender, ok2 := h.Policies().Get("service") // ServiceConnect only: enough for C2D
	if !ok1 || !ok2 {
		return errors.New("devhub: the iothubowner or service policy was deleted")
	}
	device := auth.ConnectionString{HostName: h.HostName(), DeviceID: demoDevice, SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey}
	svc := auth.ConnectionString{HostName: h.HostName(), SharedAccessKeyName: owner.KeyName, SharedAccessKey: owner.PrimaryKey}
	expiry := time.Now().Add(24 * time.Hour)
	deviceToken, err := device.Token(expiry)
	if err != nil {
		return err
	}
	serviceToken, err := auth.ConnectionString{HostName: h.HostName(), SharedAccessKeyName: sender.KeyName, SharedAccessKey: sender.PrimaryKey}.Token(expiry)
	if err != nil {
		return err
	}
	if abs, err := filepath.Abs(caFile); err == nil {
		caFile = abs
	}

	host := h.HostName()
	tlsPort, wsPort, httpsPort := port(mb.TLSAddr()), port(mb.WebSocketAddr()), port(httpsAddr)
	fmt.Printf(`
devhub is ready
  CA certificate (trust it on devices): %s
  device connection string:  %s
  service connection string: %s
  MQTT:         %v
  MQTT over TLS: %s:%d
  MQTT over WebSockets: wss://%s:%d%s
  HTTPS device and service API: https://%s:%d

Try it (the tokens below are valid for 24 hours):
  mosquitto_pub -V mqttv311 -h %s -p %d --cafile '%s' -i %s \
    -u '%s/%s/?api-version=2021-04-12' -P '%s' \
    -t 'devices/%s/messages/events/' -q 1 -m '{"temperature":21.5}'
  export SERVICE_TOKEN='%s'
  curl --cacert '%s' -X POST -H "Authorization: $SERVICE_TOKEN" \
    -H 'iothub-ack: full' -H 'iothub-messageid: m1' -H 'iothub-app-greeting: hello' -d 'hello device' \
    'https://%s:%d/devices/%s/messages/devicebound?api-version=2021-04-12'
  # a device subscribed to devices/%s/messages/devicebound/# receives it;
  # its feedback record follows within 15 s (the ETag completes it: DELETE .../feedback/{ETag}):
  curl -i --cacert '%s' -H "Authorization: $SERVICE_TOKEN" \
    'https://%s:%d/messages/serviceBound/feedback?timeout=30s&api-version=2021-04-12'

`, caFile, device, svc, mb.TCPAddr(), host, tlsPort, host, wsPort, mqtt.WebSocketPath, host, httpsPort,
		host, tlsPort, caFile, demoDevice, host, demoDevice, deviceToken, demoDevice,
		serviceToken, caFile, host, httpsPort, demoDevice, demoDevice,
		caFile, host, httpsPort)
	return nil
}

// port returns the port of a bound address, or 0 for none.
func port(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

// logTelemetry logs every event of the built-in events endpoint, as the
// consumer group devhub, until ctx ends. Process checkpoints what it
// logged, so that a restart goes on where it stopped. A development hub
// shows what devices send; a production hub would not log message bodies.
func logTelemetry(ctx context.Context, h *hub.Hub, log *slog.Logger) error {
	return h.Process(ctx, consumerGroup, hub.ProcessOptions{}, func(ctx context.Context, p int, events []hub.Event) error {
		for _, e := range events {
			props := make([]any, len(e.Message.Properties))
			for i, p := range e.Message.Properties {
				props[i] = slog.String(p.Name, p.Value)
			}
			log.InfoContext(ctx, "telemetry",
				"device_id", e.Message.System.ConnectionDeviceID,
				"partition", p,
				"offset", e.Offset,
				"content_type", e.Message.System.ContentType,
				slog.Group("properties", props...),
				"body", string(e.Message.Body))
		}
		return nil
	})
}

// devCertificates returns a TLS configuration for host, and the path of
// the CA certificate devices trust. The development CA is made on first
// run and kept in dir (ca.pem, and ca.key to sign more certificates, e.g.
// for X.509 devices). The server certificate is issued from it at every
// start, for host, localhost, 127.0.0.1 and ::1, so that a new -host needs
// nothing deleted; devices trust the CA, never the server certificate.
func devCertificates(dir, host string) (*tls.Config, string, error) {
	caFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	certPEM, err := os.ReadFile(caFile)
	if errors.Is(err, fs.ErrNotExist) {
		certPEM, err = newCA(dir, caFile, keyFile)
	}
	if err != nil {
		return nil, "", fmt.Errorf("devhub: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("devhub: %w", err)
	}
	ca, err := devcert.Load(certPEM, keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("devhub: %s: %w", caFile, err)
	}
	cert, err := ca.Issue(host, x509.ExtKeyUsageServerAuth, 365*24*time.Hour, host, "localhost", "127.0.0.1", "::1")
	if err != nil {
		return nil, "", fmt.Errorf("devhub: server certificate for %q: %w", host, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, caFile, nil
}

// newCA makes the development CA, writes it to caFile and keyFile and
// returns its certificate.
func newCA(dir, caFile, keyFile string) ([]byte, error) {
	ca, err := devcert.NewCA("hubkit development CA", 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The certificate goes last: its presence means "made".
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	return ca.CertPEM(), os.WriteFile(caFile, ca.CertPEM(), 0o644)
}
