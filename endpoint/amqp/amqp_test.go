package amqp_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/amqp"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
	"github.com/hubkit/hubkit/internal/poll"
)

// sink is an AMQP queue seen through a proxy that can cut or stall the
// endpoint's connection.
type sink struct {
	proxy *proxy
	rcv   *receiver
}

func (s *sink) Received(*testing.T) []*hubkit.Message {
	var out []*hubkit.Message
	for _, m := range s.rcv.messages() {
		out = append(out, hubMessage(m))
	}
	return out
}

func (s *sink) SetFailing(_ *testing.T, on bool) { s.proxy.setFailing(on) }
func (s *sink) SetStalled(_ *testing.T, on bool) { s.proxy.setStalled(on) }
func (s *sink) Holding(*testing.T) bool          { return s.proxy.holding() }

// viaProxy returns the broker URL with its host replaced by the proxy's.
func viaProxy(t *testing.T, broker string) (string, *proxy) {
	t.Helper()
	u, err := url.Parse(broker)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.addr()
	return u.String(), p
}

func newEndpoint(t testing.TB, opts amqp.Options) *amqp.Endpoint {
	t.Helper()
	ep, err := amqp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func TestConformance(t *testing.T) {
	broker := brokerURL(t)
	endpointtest.Run(t, endpointtest.Harness{
		New: func(t *testing.T) (endpoint.Endpoint, endpointtest.Sink) {
			q := queueName()
			u, p := viaProxy(t, broker)
			ep := newEndpoint(t, amqp.Options{URL: u, Address: q, MaxMessageSize: 256 << 10, DialTimeout: 5 * time.Second})
			return ep, &sink{proxy: p, rcv: receive(t, broker, q)}
		},
		TooLarge: func() *hubkit.Message { return &hubkit.Message{Body: make([]byte, 256<<10+1)} },
	})
}

func TestRoundTripProperties(t *testing.T) {
	broker := brokerURL(t)
	q := queueName()
	for _, auth := range []string{"url", "options", "anonymous"} {
		t.Run("auth="+auth, func(t *testing.T) {
			// RabbitMQ refuses a user-id other than the user's own: guest, or none with OmitUserID.
			opts := amqp.Options{URL: broker, Address: "/queue/" + q, HubName: "myhub"}
			userID, wantUserID := "guest", "guest"
			u, _ := url.Parse(broker)
			switch auth {
			case "options": // SASL PLAIN from Username and Password, not from the URL
				opts.Username, opts.Password = plainUser(t, u)
				u.User = nil
				opts.URL = u.String()
			case "anonymous":
				u.User = nil
				opts.URL, opts.Anonymous, opts.OmitUserID = u.String(), true, true
				userID, wantUserID = "user-1", ""
			}
			ep := newEndpoint(t, opts)
			enq := time.Date(2026, 3, 1, 12, 0, 0, 123000000, time.UTC)
			exp := enq.Add(time.Hour)
			m := &hubkit.Message{
				Body: []byte{0, 1, 2, 255},
				System: hubkit.SystemProperties{
					MessageID: "mid-1", CorrelationID: "cid-1", UserID: userID, To: "/devices/d/messages/events",
					ContentType: "application/json", ContentEncoding: "utf-8", ExpiryTime: exp, EnqueuedTime: enq,
					ConnectionDeviceID: "dev-1", ConnectionModuleID: "mod-1", ConnectionAuthGenerationID: "636930642531278483",
					ConnectionAuthMethod: `{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}`,
					MessageSource:        hubkit.SourceTelemetry, CreationTime: "2026-03-01T11:59:59Z", DataSchema: "dtmi:x;1", Subject: "thermostat1",
				},
				Properties: hubkit.Properties{{Name: "alert", Value: "high"}, {Name: "$weird name", Value: "ü"}},
			}
			if n, err := ep.Send(context.Background(), []*hubkit.Message{m}); n != 1 || err != nil {
				t.Fatalf("Send = %d, %v", n, err)
			}
			rcv := receive(t, broker, q)
			poll.Until(t, "the message", func() bool { return len(rcv.messages()) > 0 })
			got := rcv.messages()[0]
			p := got.Properties
			checks := []struct {
				name string
				got  any
				want any
			}{
				{"body", string(got.GetData()), string(m.Body)},
				{"durable", got.Header != nil && got.Header.Durable, true},
				{"message-id", p.MessageID, "mid-1"},
				{"correlation-id", p.CorrelationID, "cid-1"},
				{"user-id", string(p.UserID), wantUserID},
				{"to", *p.To, "/devices/d/messages/events"},
				{"content-type", *p.ContentType, "application/json"},
				{"content-encoding", *p.ContentEncoding, "utf-8"},
				{"absolute-expiry-time", p.AbsoluteExpiryTime.UTC(), exp},
				{"creation-time", timeOf(p.CreationTime), time.Date(2026, 3, 1, 11, 59, 59, 0, time.UTC)},
				{"x-opt-partition-key", got.Annotations["x-opt-partition-key"], "dev-1"},
				{"iothub-enqueuedtime", got.Annotations["iothub-enqueuedtime"].(time.Time).UTC(), enq},
				{"iothub-connection-device-id", got.Annotations["iothub-connection-device-id"], "dev-1"},
				{"iothub-connection-module-id", got.Annotations["iothub-connection-module-id"], "mod-1"},
				{"iothub-connection-auth-generation-id", got.Annotations["iothub-connection-auth-generation-id"], "636930642531278483"},
				{"iothub-connection-auth-method", got.Annotations["iothub-connection-auth-method"], m.System.ConnectionAuthMethod},
				{"iothub-message-source", got.Annotations["iothub-message-source"], "Telemetry"},
				{"iothub-creation-time-utc", got.Annotations["iothub-creation-time-utc"], "2026-03-01T11:59:59Z"},
				{"dt-dataschema", got.Annotations["dt-dataschema"], "dtmi:x;1"},
				{"dt-subject", got.Annotations["dt-subject"], "thermostat1"},
				{"app alert", got.ApplicationProperties["alert"], "high"},
				{"app $weird name", got.ApplicationProperties["$weird name"], "ü"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v (%T), want %v", c.name, c.got, c.got, c.want)
				}
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opts amqp.Options
		want string
	}{
		{amqp.Options{Address: "q"}, "not an amqp or amqps URL"},
		{amqp.Options{URL: "http://x", Address: "q"}, "not an amqp or amqps URL"},
		{amqp.Options{URL: "amqp://x"}, "Address is empty"},
		{amqp.Options{URL: "http://user:s3cret@x", Address: "q"}, "not an amqp or amqps URL"},
		{amqp.Options{URL: "amqp://user:s3cret@x:bad port", Address: "q"}, "cannot be parsed"},
	} {
		_, err := amqp.New(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.opts, err, tc.want)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%+v) = %v: the error shows the password", tc.opts, err)
		}
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	ep := newEndpoint(t, amqp.Options{URL: "amqp://127.0.0.1:1", Address: "q", DialTimeout: time.Second})
	_, err := ep.Send(context.Background(), []*hubkit.Message{{Body: []byte("x")}})
	if err == nil || !endpoint.IsRetryable(err) {
		t.Fatalf("Send to a closed port = %v, want a retryable error", err)
	}
}

// plainUser returns the user and password of the broker URL u.
func plainUser(t *testing.T, u *url.URL) (user, password string) {
	t.Helper()
	password, ok := u.User.Password()
	if !ok {
		t.Fatalf("AMQP_TEST_URL %s has no user and password", u.Redacted())
	}
	return u.User.Username(), password
}

// timeOf returns *p in UTC, or the zero time for nil.
func timeOf(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.UTC()
}

// TestSASLPlainFromOptions checks that Username and Password are what the
// endpoint authenticates with: the right password sends, a wrong one is
// refused (RabbitMQ would otherwise let a connection without SASL in as
// its default user).
func TestSASLPlainFromOptions(t *testing.T) {
	u, err := url.Parse(brokerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	user, password := plainUser(t, u)
	u.User = nil
	for _, tc := range []struct {
		password string
		ok       bool
	}{{password, true}, {password + "-wrong", false}} {
		ep := newEndpoint(t, amqp.Options{URL: u.String(), Address: queueName(), Username: user, Password: tc.password, DialTimeout: 5 * time.Second})
		n, err := ep.Send(context.Background(), []*hubkit.Message{{Body: []byte("x")}})
		if tc.ok && (n != 1 || err != nil) {
			t.Errorf("Send with the right password = %d, %v; want 1, nil", n, err)
		}
		if !tc.ok && (n != 0 || err == nil || !endpoint.IsRetryable(err)) {
			t.Errorf("Send with a wrong password = %d, %v; want 0 and a retryable error", n, err)
		}
	}
}

// TestMessageTimesAndPartitionKey checks the mapping of creation-time and
// x-opt-partition-key without a broker.
func TestMessageTimesAndPartitionKey(t *testing.T) {
	enq := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		sys           hubkit.SystemProperties
		wantCreation  time.Time
		wantPartition any
	}{
		{"device time", hubkit.SystemProperties{CreationTime: "2026-03-01T11:59:59.5Z", EnqueuedTime: enq, ConnectionDeviceID: "d1"},
			time.Date(2026, 3, 1, 11, 59, 59, 5e8, time.UTC), "d1"},
		{"no device time", hubkit.SystemProperties{EnqueuedTime: enq, ConnectionDeviceID: "d2"}, enq, "d2"},
		{"bad device time", hubkit.SystemProperties{CreationTime: "yesterday", EnqueuedTime: enq}, enq, nil},
		{"no time", hubkit.SystemProperties{}, time.Time{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := amqp.Message(&hubkit.Message{System: tc.sys})
			if got := timeOf(m.Properties.CreationTime); !got.Equal(tc.wantCreation) {
				t.Errorf("creation-time = %v, want %v", got, tc.wantCreation)
			}
			if got := m.Annotations["x-opt-partition-key"]; got != tc.wantPartition {
				t.Errorf("x-opt-partition-key = %v, want %v", got, tc.wantPartition)
			}
		})
	}
}
