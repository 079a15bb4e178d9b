// Devicesim simulates a fleet of MQTT devices against a hub (devhub, or
// any hub speaking IoT Hub's MQTT dialect): each connects with a SAS token,
// sends JSON telemetry with application properties at a steady rate and
// prints the cloud-to-device messages it receives, until the run time is
// over or Ctrl-C.
//
// Given a service connection string whose policy may write the registry
// (iothubowner), it creates the devices sim-001 ... sim-N through the
// service REST API, or reads them when they exist, and uses their keys.
// With -register=false it signs the devices' tokens with the policy key
// instead, which needs a policy with DeviceConnect (device, iothubowner)
// and devices that exist. Given a device connection string, it simulates
// that one device.
//
//	go run ./examples/devicesim -cs 'HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=...' \
//	  -cafile hubdata/certs/ca.pem -n 10 -rate 2 -duration 1m
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sync/errgroup"

	"github.com/hubkit/hubkit/auth"
)

const apiVersion = "2021-04-12"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("devicesim stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cs := flag.String("cs", "", "device connection string, or service connection string of a policy with RegistryWrite (required)")
	n := flag.Int("n", 3, "number of devices to simulate with a service connection string")
	brokerURL := flag.String("broker", "", "MQTT broker URL, tcp://, ssl:// or wss://...; empty means ssl://{HostName}:8883")
	apiURL := flag.String("api", "", "service REST API URL; empty means https://{HostName}:8443")
	caFile := flag.String("cafile", "", "PEM file of the CA to trust, e.g. devhub's hubdata/certs/ca.pem; empty means the system's")
	rate := flag.Float64("rate", 1, "telemetry messages per second per device")
	duration := flag.Duration("duration", time.Minute, "how long to run")
	register := flag.Bool("register", true, "with a service connection string, create or read the devices through the service API; false signs their tokens with the policy key")
	flag.Parse()

	conn, err := auth.ParseConnectionString(*cs)
	if err != nil {
		return fmt.Errorf("-cs: %w", err)
	}
	if *rate <= 0 || *duration <= 0 || *n < 1 {
		return errors.New("devicesim: -rate, -duration and -n must be positive")
	}
	if *brokerURL == "" {
		*brokerURL = "ssl://" + conn.HostName + ":8883"
	}
	if *apiURL == "" {
		*apiURL = "https://" + conn.HostName + ":8443"
	}
	tlsConfig := &tls.Config{}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("devicesim: %s holds no PEM certificate", *caFile)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	devices := []auth.ConnectionString{conn}
	if conn.DeviceID == "" && !*register {
		devices = devices[:0]
		for i := 1; i <= *n; i++ {
			d := conn // a token for the device's resource, signed by the policy
			d.DeviceID = fmt.Sprintf("sim-%03d", i)
			devices = append(devices, d)
		}
	} else if conn.DeviceID == "" {
		api := &registry{base: *apiURL, conn: conn, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}}
		devices = devices[:0]
		for i := 1; i <= *n; i++ {
			d, err := api.ensure(ctx, fmt.Sprintf("sim-%03d", i))
			if err != nil {
				return err
			}
			devices = append(devices, auth.ConnectionString{HostName: conn.HostName, DeviceID: d.DeviceID, SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey})
		}
	}

	var sent, received atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range devices {
		g.Go(func() error {
			return simulate(gctx, log, d, *brokerURL, tlsConfig, time.Duration(float64(time.Second) / *rate), *duration, &sent, &received)
		})
	}
	log.Info("ready", "devices", len(devices), "broker", *brokerURL, "rate", *rate, "duration", *duration)
	err = g.Wait()
	log.Info("done", "devices", len(devices), "sent", sent.Load(), "received", received.Load())
	return err
}

// simulate runs one device until ctx ends: it connects, subscribes to its
// cloud-to-device messages and publishes telemetry every interval.
func simulate(ctx context.Context, log *slog.Logger, d auth.ConnectionString, brokerURL string, tlsConfig *tls.Config, interval, valid time.Duration, sent, received *atomic.Int64) error {
	token, err := d.Token(time.Now().Add(valid + time.Hour))
	if err != nil {
		return err
	}
	opts := paho.NewClientOptions().
		AddBroker(brokerURL).
		SetClientID(d.DeviceID).
		SetUsername(d.HostName + "/" + d.DeviceID + "/?api-version=" + apiVersion).
		SetPassword(token).
		SetProtocolVersion(4).
		SetTLSConfig(tlsConfig).
		SetConnectTimeout(30 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn("connection lost", "device_id", d.DeviceID, "err", err)
		})
	c := paho.NewClient(opts)
	if err := wait(ctx, c.Connect()); err != nil {
		return fmt.Errorf("devicesim: connect %s: %w", d.DeviceID, err)
	}
	defer c.Disconnect(250)
	if err := wait(ctx, c.Subscribe("devices/"+d.DeviceID+"/messages/devicebound/#", 1, func(_ paho.Client, m paho.Message) {
		received.Add(1)
		// The topic ends with the message's properties, URL-encoded.
		props := m.Topic()[len("devices/"+d.DeviceID+"/messages/devicebound/"):]
		fmt.Printf("c2d to %s: %s (%s)\n", d.DeviceID, m.Payload(), props)
	})); err != nil {
		return fmt.Errorf("devicesim: subscribe %s: %w", d.DeviceID, err)
	}
	log.Info("connected", "device_id", d.DeviceID)

	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		temperature := 20 + 15*rand.Float64()
		path := "cold"
		if seq%5 == 0 {
			path = "hot"
		}
		// The property bag sets the content type and encoding, which
		// routing queries on $body need, and two application properties.
		topic := fmt.Sprintf("devices/%s/messages/events/$.ct=application%%2Fjson&$.ce=utf-8&seq=%d&processingPath=%s", d.DeviceID, seq, path)
		body := fmt.Sprintf(`{"deviceId":%q,"seq":%d,"temperature":%.1f}`, d.DeviceID, seq, temperature)
		if err := wait(ctx, c.Publish(topic, 1, false, body)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("devicesim: publish from %s: %w", d.DeviceID, err)
		}
		sent.Add(1)
	}
}

// wait waits for a paho token until ctx ends.
func wait(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// registry creates and reads devices through the hub's service REST API.
type registry struct {
	base   string
	conn   auth.ConnectionString // a policy with RegistryWrite
	client *http.Client
}

// ensure creates the device with a generated key, or reads it when it
// exists, and returns it.
func (r *registry) ensure(ctx context.Context, id string) (auth.Device, error) {
	d, status, err := r.do(ctx, http.MethodPut, id, `{"deviceId":"`+id+`"}`)
	if status == http.StatusConflict {
		d, _, err = r.do(ctx, http.MethodGet, id, "")
	}
	return d, err
}

func (r *registry) do(ctx context.Context, method, id, body string) (auth.Device, int, error) {
	var d auth.Device
	token, err := r.conn.Token(time.Now().Add(time.Hour))
	if err != nil {
		return d, 0, err
	}
	u := r.base + "/devices/" + url.PathEscape(id) + "?api-version=" + apiVersion
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return d, 0, err
	}
	req.Header.Set("Authorization", token)
	req.Header.Set("Content-Type", "application/json")
	res, err := r.client.Do(req)
	if err != nil {
		return d, 0, fmt.Errorf("devicesim: %s device %s: %w", method, id, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return d, res.StatusCode, err
	}
	if res.StatusCode != http.StatusOK {
		return d, res.StatusCode, fmt.Errorf("devicesim: %s device %s: %s: %s", method, id, res.Status, data)
	}
	return d, res.StatusCode, json.Unmarshal(data, &d)
}
