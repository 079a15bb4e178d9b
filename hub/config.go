package hub

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/route"
)

// Config configures a [Hub]. Its zero value runs a hub named "hubkit" on a
// Pebble store in the directory "hubdata", with IoT Hub's defaults. [New]
// takes it by value and fills the defaults in its own copy.
type Config struct {
	// HostName is the hub's host name, e.g. myhub.example.com. Its first
	// label is the hub name, stamped as user-id on hub-generated messages
	// and as hubName on device events. Empty means "hubkit".
	HostName string

	// Dir holds the Pebble database when Queue is nil. Empty means
	// "hubdata" in the working directory.
	Dir string
	// Queue stores messages, cursors, queues and the registry. Nil means
	// Pebble in Dir. The hub closes a store it opened itself, never one
	// given here.
	Queue queue.DurableQueue
	// Registry is the device registry. Nil means an [auth.Registry] kept
	// in Queue's key-value space under "registry/".
	Registry Registry
	// Policies are the shared access policies that sign service tokens
	// (see [Hub.AuthorizeService]) and DeviceConnect tokens. Nil means
	// those kept in Queue's key-value space under "policies/", created
	// with IoT Hub's five default policies and random keys on first Start.
	Policies *auth.Policies
	// Authenticator decides who may connect. Nil means IoT Hub's rules
	// ([auth.HubAuthenticator]): SAS tokens signed with a device key or a
	// DeviceConnect policy, X.509 thumbprints, checked against Registry,
	// which must then be an *auth.Registry.
	Authenticator auth.Authenticator
	// CACertificates are the trusted roots of certificateAuthority devices
	// and modules when Authenticator is nil: a device certificate whose
	// chain leads to one of them, with the device id as common name,
	// authenticates the device. Nil means none, so such devices cannot
	// connect. The caller vouches for these certificates: hubkit does not
	// run IoT Hub's proof-of-possession step before trusting a CA.
	CACertificates []*x509.Certificate
	// Brokers serve devices. The hub starts them in Start, after it is
	// ready, and stops them first in Shutdown. Nil means none: devices
	// then reach the hub only through Go calls.
	Brokers []broker.Broker
	// Router decides which endpoints a device-to-cloud message or device
	// event goes to; when it is also a [route.Enricher], the hub enriches
	// each endpoint's copy before storing it. Nil means a [route.Table]
	// without routes, which [Hub.Router] returns for changes at run time:
	// telemetry goes to the built-in endpoint ("events") by the fallback
	// route and device events are dropped. New refuses a *route.Table
	// whose routes, fallback route or enrichments name an endpoint that is
	// neither "events" nor in Endpoints; build it with
	// route.Config.Endpoints so that its later Replace calls refuse them too.
	Router route.Router
	// Endpoints are the custom endpoints routes may name. Each gets its
	// own stream in Queue, named after it, and its own delivery loop, so
	// that a slow endpoint never delays another. The hub closes them.
	Endpoints []Endpoint

	// Partitions is the number of partitions of the built-in events
	// stream, 2 to 32. Zero means 4. It must not change between runs on
	// the same store: a device's partition is hash(deviceId) mod Partitions.
	Partitions int
	// Retention is how long the built-in events stream keeps messages.
	// Zero means one day.
	Retention time.Duration

	// C2DDefaultTTL is the expiry of a cloud-to-device message sent
	// without one, 1 minute to 48 hours. Zero means one hour.
	C2DDefaultTTL time.Duration
	// C2DMaxDeliveryCount dead-letters a cloud-to-device message abandoned
	// this many times, 1 to 100. Zero means 10.
	C2DMaxDeliveryCount int
	// C2DMaxQueueDepth is the most messages a device queue holds; a send
	// beyond it fails with 403004. Zero means 50.
	C2DMaxQueueDepth int
	// C2DLockTimeout is how long a received cloud-to-device message stays
	// locked when the broker asks for no particular time. Zero means 60 s.
	C2DLockTimeout time.Duration

	// FeedbackBatchSize is the most records one feedback message carries.
	// Zero means 64.
	FeedbackBatchSize int
	// FeedbackBatchDelay is the longest time between two feedback
	// flushes while records wait: a batch goes out when it is full or this
	// long after the previous flush, whichever comes first. Zero means 15 s.
	FeedbackBatchDelay time.Duration
	// FeedbackTTL is how long a feedback message waits for the service,
	// 1 minute to 48 hours. Zero means one hour.
	FeedbackTTL time.Duration
	// FeedbackLockDuration is how long a received feedback message stays
	// locked, 5 s to 300 s. Zero means 60 s.
	FeedbackLockDuration time.Duration
	// FeedbackMaxDeliveryCount drops a feedback message abandoned this
	// many times, 1 to 100. Zero means 10.
	FeedbackMaxDeliveryCount int

	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger

	// Clock is the hub's time: message and event stamps, C2D expiry,
	// feedback batching, the registry's and the store's times when the hub
	// makes them, and the delivery of endpoints whose DeliveryConfig.Clock
	// is nil. Nil means the real clock. Tests give a fake one (such as
	// endpointtest.Clock) to make time-dependent behaviour exact.
	Clock endpoint.Clock
}

// An Endpoint is a custom endpoint of the hub.
type Endpoint struct {
	// Name is what routes call the endpoint: 1 to 64 ASCII letters,
	// digits, '.', '_' and '-', unique case-insensitively, and none of
	// events, fileNotifications and $default.
	Name string
	// Endpoint receives the messages routed to Name.
	Endpoint endpoint.Endpoint
	// Delivery tunes batching, retry and retention. Its Retention is also
	// the store retention of the endpoint's stream (none when negative),
	// so that the store keeps what delivery may still send. The hub sets its
	// Name, Endpoint, Streams, Stream, Partitions and, when nil, Logger
	// and Clock.
	Delivery endpoint.DeliveryConfig
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

var (
	consumerGroupName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,50}$`)
	endpointName      = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// unknownEndpoints returns a problem for each endpoint r names that is
// neither the built-in one nor one of eps.
func unknownEndpoints(r route.Routing, eps []Endpoint) []error {
	known := map[string]bool{route.BuiltinEndpoint: true}
	for _, e := range eps {
		known[e.Name] = true
	}
	var problems []error
	check := func(what, name string) {
		if !known[name] {
			problems = append(problems, fmt.Errorf("Router: %s names endpoint %q, which is not in Endpoints", what, name))
		}
	}
	for _, rt := range r.Routes {
		check(fmt.Sprintf("route %q", rt.Name), rt.Endpoint)
	}
	if r.Fallback.Endpoint != "" {
		check("the fallback route", r.Fallback.Endpoint)
	}
	for _, en := range r.Enrichments {
		for _, ep := range en.Endpoints {
			check(fmt.Sprintf("enrichment %q", en.Key), ep)
		}
	}
	return problems
}

// withDefaults returns c with zero fields set to their defaults, and every
// problem with the values given.
func (c Config) withDefaults() (Config, error) {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	if c.HostName == "" {
		c.HostName = "hubkit"
	}
	if c.Dir == "" && c.Queue == nil {
		c.Dir = "hubdata"
	}
	defInt(&c.Partitions, 4)
	def(&c.Retention, 24*time.Hour)
	def(&c.C2DDefaultTTL, time.Hour)
	defInt(&c.C2DMaxDeliveryCount, 10)
	defInt(&c.C2DMaxQueueDepth, 50)
	def(&c.C2DLockTimeout, time.Minute)
	defInt(&c.FeedbackBatchSize, 64)
	def(&c.FeedbackBatchDelay, 15*time.Second)
	def(&c.FeedbackTTL, time.Hour)
	def(&c.FeedbackLockDuration, time.Minute)
	defInt(&c.FeedbackMaxDeliveryCount, 10)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}

	if c.Partitions < 2 || c.Partitions > 32 {
		bad("Partitions is %d, want 2 to 32", c.Partitions)
	}
	if c.Retention < 0 {
		bad("Retention is %v, want a positive duration", c.Retention)
	}
	if c.C2DDefaultTTL < time.Minute || c.C2DDefaultTTL > 48*time.Hour {
		bad("C2DDefaultTTL is %v, want 1m to 48h", c.C2DDefaultTTL)
	}
	if c.C2DMaxDeliveryCount < 1 || c.C2DMaxDeliveryCount > 100 {
		bad("C2DMaxDeliveryCount is %d, want 1 to 100", c.C2DMaxDeliveryCount)
	}
	if c.C2DMaxQueueDepth < 1 {
		bad("C2DMaxQueueDepth is %d, want at least 1", c.C2DMaxQueueDepth)
	}
	if c.C2DLockTimeout < time.Second || c.C2DLockTimeout > 5*time.Minute {
		bad("C2DLockTimeout is %v, want 1s to 5m", c.C2DLockTimeout)
	}
	if c.FeedbackBatchSize < 1 {
		bad("FeedbackBatchSize is %d, want at least 1", c.FeedbackBatchSize)
	}
	if c.FeedbackBatchDelay < 0 {
		bad("FeedbackBatchDelay is %v, want a positive duration", c.FeedbackBatchDelay)
	}
	if c.FeedbackTTL < time.Minute || c.FeedbackTTL > 48*time.Hour {
		bad("FeedbackTTL is %v, want 1m to 48h", c.FeedbackTTL)
	}
	if c.FeedbackLockDuration < 5*time.Second || c.FeedbackLockDuration > 5*time.Minute {
		bad("FeedbackLockDuration is %v, want 5s to 5m", c.FeedbackLockDuration)
	}
	if c.FeedbackMaxDeliveryCount < 1 || c.FeedbackMaxDeliveryCount > 100 {
		bad("FeedbackMaxDeliveryCount is %d, want 1 to 100", c.FeedbackMaxDeliveryCount)
	}
	if _, ok := c.Registry.(*auth.Registry); c.Registry != nil && !ok && c.Authenticator == nil {
		bad("Registry is not an *auth.Registry, so the default Authenticator cannot use it: set Authenticator")
	}
	names := map[string]bool{"events": true, "filenotifications": true, "$default": true}
	for i, e := range c.Endpoints {
		switch {
		case !endpointName.MatchString(e.Name):
			bad("Endpoints[%d]: name %q: use 1 to 64 ASCII letters, digits, '.', '_' and '-'", i, e.Name)
		case names[strings.ToLower(e.Name)]:
			bad("Endpoints[%d]: name %q is reserved or used twice", i, e.Name)
		}
		names[strings.ToLower(e.Name)] = true
		if e.Endpoint == nil {
			bad("Endpoints[%d] (%s): Endpoint is nil", i, e.Name)
		}
	}
	if t, ok := c.Router.(*route.Table); ok {
		problems = append(problems, unknownEndpoints(t.Routing(), c.Endpoints)...)
	}
	for i, ca := range c.CACertificates {
		if ca == nil {
			bad("CACertificates[%d] is nil", i)
		}
	}
	for i, b := range c.Brokers {
		if b == nil {
			bad("Brokers[%d] is nil", i)
		}
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("hub: invalid config: %w", errors.Join(problems...))
	}
	return c, nil
}
