package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/hub/service"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

const host = "svc.example.com"

type env struct {
	h       *hub.Hub
	handler *service.Handler
	srv     *httptest.Server
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t testing.TB) *env {
	t.Helper()
	q, err := pebble.Open(t.TempDir(), pebble.Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	sink := endpoint.Func("sink", func(ctx context.Context, batch []*hubkit.Message) (int, error) { return len(batch), nil })
	h, err := hub.New(hub.Config{HostName: host, Queue: q, Logger: discard(), FeedbackBatchSize: 1,
		Endpoints: []hub.Endpoint{{Name: "sink", Endpoint: sink}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(errors.Join(err, h.Close(), q.Close()))
	}
	handler := service.New(h, service.Options{Logger: discard()})
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		srv.Close()
		if err := errors.Join(h.Close(), q.Close()); err != nil {
			t.Error(err)
		}
	})
	return &env{h: h, handler: handler, srv: srv}
}

// token returns a SAS token of the named policy.
func (e *env) token(t testing.TB, policy string, expiry time.Time) string {
	t.Helper()
	p, ok := e.h.Policies().Get(policy)
	if !ok {
		t.Fatalf("no policy %s", policy)
	}
	tok, err := auth.NewSAS(host, p.PrimaryKey, policy, expiry)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request signed by policy ("" for none).
func (e *env) do(t *testing.T, policy, method, path string, body []byte, headers ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if policy != "" {
		req.Header.Set("Authorization", e.token(t, policy, time.Now().Add(time.Hour)))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// wantError checks an IoT Hub error answer.
func (r response) wantError(t *testing.T, e *hubkit.Error) {
	t.Helper()
	if r.status != e.HTTPStatus() || r.header.Get("iothub-errorcode") != e.Name {
		t.Fatalf("got %d %q %s, want %d %s", r.status, r.header.Get("iothub-errorcode"), r.body, e.HTTPStatus(), e.Name)
	}
	var body struct{ Message, ExceptionMessage string }
	if err := json.Unmarshal(r.body, &body); err != nil || !strings.HasPrefix(body.Message, "ErrorCode:"+e.Name+";") ||
		!strings.HasPrefix(body.ExceptionMessage, "Tracking ID:") {
		t.Fatalf("error body %s (%v)", r.body, err)
	}
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.h.Policies().Get("iothubowner")
	other, err := auth.NewSAS("other.example.com", owner.PrimaryKey, "iothubowner", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	badSig, err := auth.NewSAS(host, base64.StdEncoding.EncodeToString(make([]byte, 32)), "iothubowner", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, authz string
		ok          bool
	}{
		{"none", "", false},
		{"garbage", "Bearer x", false},
		{"good", e.token(t, "registryRead", time.Now().Add(time.Hour)), true},
		{"owner", e.token(t, "iothubowner", time.Now().Add(time.Hour)), true},
		{"expired", e.token(t, "registryRead", time.Now().Add(-time.Hour)), false},
		{"wrong permission", e.token(t, "service", time.Now().Add(time.Hour)), false},
		{"device policy", e.token(t, "device", time.Now().Add(time.Hour)), false},
		{"other hub", other, false},
		{"bad signature", badSig, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, "", "GET", "/devices?top=10", nil, "Authorization", c.authz)
			if c.ok {
				if r.status != 200 || string(r.body) != "[]" {
					t.Fatalf("got %d %s", r.status, r.body)
				}
				return
			}
			r.wantError(t, hubkit.ErrUnauthorized)
		})
	}
	// Health and metrics need no token.
	if r := e.do(t, "", "GET", "/health", nil); r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("health: %d %s", r.status, r.body)
	}
}

func TestDevices(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "registryReadWrite", "PUT", "/devices/d1", []byte(`{"deviceId":"d1"}`))
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var d auth.Device
	if err := json.Unmarshal(r.body, &d); err != nil || d.DeviceID != "d1" || d.GenerationID == "" || d.ETag == "" ||
		d.Authentication.SymmetricKey.PrimaryKey == "" || r.header.Get("ETag") != `"`+d.ETag+`"` {
		t.Fatalf("created %s, ETag %s (%v)", r.body, r.header.Get("ETag"), err)
	}
	e.do(t, "registryReadWrite", "PUT", "/devices/d1", []byte(`{}`)).wantError(t, hubkit.ErrDeviceAlreadyExists)
	e.do(t, "registryReadWrite", "PUT", "/devices/d1", []byte(`{"status":"disabled"}`), "If-Match", `"nope"`).wantError(t, hubkit.ErrPreconditionFailed)
	e.do(t, "registryReadWrite", "PUT", "/devices/d1", []byte(`{"deviceId":"d2"}`)).wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, "registryReadWrite", "PUT", "/devices/d1", []byte(`{"deviceId":`)).wantError(t, hubkit.ErrArgumentInvalid)
	r = e.do(t, "registryReadWrite", "PUT", "/devices/d1", []byte(`{"status":"disabled"}`), "If-Match", `"`+d.ETag+`"`)
	var u auth.Device
	if err := json.Unmarshal(r.body, &u); r.status != 200 || err != nil || u.Status != auth.StatusDisabled || u.ETag == d.ETag {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	e.do(t, "registryReadWrite", "PUT", "/devices/d2", nil).wantError(t, hubkit.ErrArgumentInvalid) // no body
	if r := e.do(t, "registryReadWrite", "PUT", "/devices/d2", []byte(`{}`)); r.status != 200 {
		t.Fatalf("create d2: %d %s", r.status, r.body)
	}
	r = e.do(t, "registryRead", "GET", "/devices/d1", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"disabled"`) || !strings.Contains(string(r.body), `"cloudToDeviceMessageCount":0`) {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	r = e.do(t, "registryRead", "GET", "/devices?top=1", nil)
	var list []auth.Device
	if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 1 || list[0].DeviceID != "d1" {
		t.Fatalf("list top=1: %s", r.body)
	}
	e.do(t, "registryRead", "GET", "/devices?top=1001", nil).wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, "registryReadWrite", "DELETE", "/devices/d1", nil, "If-Match", `"nope"`).wantError(t, hubkit.ErrPreconditionFailed)
	if r := e.do(t, "registryReadWrite", "DELETE", "/devices/d1", nil, "If-Match", "*"); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	e.do(t, "registryRead", "GET", "/devices/d1", nil).wantError(t, hubkit.ErrDeviceNotFound)
	e.do(t, "registryRead", "GET", "/nothing/here", nil).wantError(t, &hubkit.Error{Code: 404000, Name: "NotFound"})
	e.do(t, "registryRead", "PATCH", "/devices/d2", nil).wantError(t, &hubkit.Error{Code: 405000, Name: "MethodNotAllowed"})
}

func TestC2DAndFeedback(t *testing.T) {
	e := newEnv(t)
	if r := e.do(t, "iothubowner", "PUT", "/devices/d1", []byte(`{}`)); r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	expiry := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	r := e.do(t, "service", "POST", "/devices/d1/messages/deviceBound", []byte("hello"),
		"iothub-messageid", "m1", "iothub-correlationid", "c1", "iothub-ack", "full",
		"iothub-expiry", expiry.Format(time.RFC3339Nano), "iothub-app-color", "red")
	if r.status != 204 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	e.do(t, "service", "POST", "/devices/d1/messages/devicebound", nil, "iothub-ack", "maybe").wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, "service", "POST", "/devices/d1/messages/devicebound", nil, "iothub-app-bad", "a b").wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, "service", "POST", "/devices/d1/messages/devicebound", nil, "iothub-expiry", "2000-01-01T00:00:00Z").wantError(t, hubkit.ErrInvalidMessageExpiryTime)
	e.do(t, "service", "POST", "/devices/nobody/messages/devicebound", nil).wantError(t, hubkit.ErrDeviceNotFound)
	e.do(t, "service", "POST", "/devices/d1/messages/devicebound", make([]byte, hubkit.MaxC2DSize+1)).wantError(t, hubkit.ErrMessageTooLarge)
	e.do(t, "registryRead", "POST", "/devices/d1/messages/devicebound", nil).wantError(t, hubkit.ErrUnauthorized)

	ctx := t.Context()
	d, err := e.h.ReceiveC2D(ctx, "d1", queue.ReceiveOptions{Lock: time.Minute, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	s := d.Message.System
	if string(d.Message.Body) != "hello" || s.MessageID != "m1" || s.CorrelationID != "c1" || s.Ack != hubkit.AckFull || !s.ExpiryTime.Equal(expiry) {
		t.Fatalf("delivered %+v", d)
	}
	if v, _ := d.Message.Properties.Get("color"); v != "red" {
		t.Fatalf("property color = %q", v)
	}
	if err := e.h.Settle(ctx, "d1", d.LockToken, broker.Complete); err != nil {
		t.Fatal(err)
	}

	r = e.do(t, "service", "GET", "/messages/serviceBound/feedback?timeout=10s", nil)
	if r.status != 200 {
		t.Fatalf("feedback: %d %s", r.status, r.body)
	}
	var recs []hub.FeedbackRecord
	if err := json.Unmarshal(r.body, &recs); err != nil || len(recs) != 1 || recs[0].OriginalMessageID != "m1" || recs[0].StatusCode != "Success" {
		t.Fatalf("feedback body %s (%v)", r.body, err)
	}
	if r.header.Get("Content-Type") != hub.FeedbackContentType {
		t.Errorf("feedback content type %q", r.header.Get("Content-Type"))
	}
	lock := strings.Trim(r.header.Get("ETag"), `"`)
	if r := e.do(t, "service", "POST", "/messages/serviceBound/feedback/"+lock+"/abandon", nil); r.status != 204 {
		t.Fatalf("abandon: %d %s", r.status, r.body)
	}
	r = e.do(t, "service", "GET", "/messages/servicebound/feedback", nil)
	if r.status != 200 {
		t.Fatalf("feedback after abandon: %d %s", r.status, r.body)
	}
	e.do(t, "service", "DELETE", "/messages/serviceBound/feedback/"+lock, nil).wantError(t, hubkit.ErrDeviceMessageLockLost)
	// The ETag as sent, quotes included, names the lock too.
	if r := e.do(t, "service", "DELETE", "/messages/serviceBound/feedback/"+url.PathEscape(r.header.Get("ETag")), nil); r.status != 204 {
		t.Fatalf("complete: %d %s", r.status, r.body)
	}
	if r := e.do(t, "service", "GET", "/messages/serviceBound/feedback", nil); r.status != 204 {
		t.Fatalf("feedback when empty: %d %s", r.status, r.body)
	}

	for range 3 {
		if r := e.do(t, "service", "POST", "/devices/d1/messages/devicebound", nil); r.status != 204 {
			t.Fatalf("send: %d", r.status)
		}
	}
	r = e.do(t, "service", "DELETE", "/devices/d1/commands", nil)
	if r.status != 200 || string(r.body) != `{"deviceId":"d1","moduleId":null,"totalMessagesPurged":3}` {
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	e.do(t, "service", "DELETE", "/devices/nobody/commands", nil).wantError(t, hubkit.ErrDeviceNotFound)
}

func TestEventsAndConsumerGroups(t *testing.T) {
	e := newEnv(t)
	id := auth.Identity{DeviceID: "dev", GenerationID: "g1", Method: auth.AuthMethod{Scope: "device", Type: "sas", Issuer: "iothub"}}
	for i := range 3 {
		done := make(chan error, 1)
		m := &hubkit.Message{Body: []byte(fmt.Sprint("m", i)), System: hubkit.SystemProperties{MessageID: fmt.Sprint(i)}}
		m.Properties.Set("k", "v")
		e.h.Ingest(t.Context(), id, m, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	p := e.h.Partition("dev")
	base := fmt.Sprintf("/messages/events/consumerGroups/%%24Default/partitions/%d", p)
	type event struct {
		Partition        int
		Offset           string
		SequenceNumber   uint64
		EnqueuedTimeUTC  time.Time
		SystemProperties map[string]string
		Properties       map[string]string
		Body             []byte
	}
	read := func(query string) []event {
		t.Helper()
		r := e.do(t, "service", "GET", base+query, nil)
		var evs []event
		if err := json.Unmarshal(r.body, &evs); r.status != 200 || err != nil {
			t.Fatalf("read %s: %d %s", query, r.status, r.body)
		}
		return evs
	}
	evs := read("?from=earliest")
	if len(evs) != 3 || string(evs[0].Body) != "m0" || evs[0].Partition != p || evs[2].SequenceNumber != 2 || evs[2].Offset != "2" ||
		evs[0].SystemProperties["iothub-connection-device-id"] != "dev" || evs[0].SystemProperties["message-id"] != "0" ||
		evs[0].SystemProperties["iothub-connection-auth-generation-id"] != "g1" || evs[0].Properties["k"] != "v" || evs[0].EnqueuedTimeUTC.IsZero() {
		t.Fatalf("events %+v", evs)
	}
	for _, c := range []struct {
		query string
		first uint64
		n     int
	}{
		{"?sequenceNumber=1", 2, 1},
		{"?sequenceNumber=1&inclusive=true", 1, 2},
		{"?offset=0", 1, 2},
		{"?offset=-1&max=1", 0, 1},
		{"?enqueuedTime=" + evs[0].EnqueuedTimeUTC.Format(time.RFC3339Nano), 0, 3},
		{"", 0, 3}, // from the checkpoint, of which there is none
	} {
		if got := read(c.query); len(got) != c.n || got[0].SequenceNumber != c.first {
			t.Errorf("%s: %d events from %d, want %d from %d", c.query, len(got), got[0].SequenceNumber, c.n, c.first)
		}
	}
	if got := read("?from=latest&timeout=10ms"); len(got) != 0 {
		t.Errorf("latest: %+v", got)
	}
	e.do(t, "service", "GET", base+"?from=sometime", nil).wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, "service", "GET", base+"?timeout=2m", nil).wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, "service", "GET", base+"?timeout=0s", nil).wantError(t, hubkit.ErrArgumentInvalid)
	e.do(t, "service", "GET", "/messages/events/consumerGroups/%24Default/partitions/99", nil).wantError(t, hubkit.ErrArgumentInvalid)

	e.do(t, "service", "GET", base+"/checkpoint", nil).wantError(t, &hubkit.Error{Code: 404000, Name: "NotFound"})
	if r := e.do(t, "service", "POST", base+"/checkpoint", []byte(`{"sequenceNumber":1}`)); r.status != 204 {
		t.Fatalf("checkpoint: %d %s", r.status, r.body)
	}
	e.do(t, "service", "POST", base+"/checkpoint", []byte(`{}`)).wantError(t, hubkit.ErrArgumentInvalid)
	if r := e.do(t, "service", "GET", base+"/checkpoint", nil); r.status != 200 || string(r.body) != `{"sequenceNumber":2}` {
		t.Fatalf("get checkpoint: %d %s", r.status, r.body)
	}
	if got := read("?from=checkpoint"); len(got) != 1 || got[0].SequenceNumber != 2 {
		t.Errorf("from checkpoint: %+v", got)
	}

	if r := e.do(t, "service", "PUT", "/messages/events/consumerGroups/analytics", nil); r.status != 201 {
		t.Fatalf("create group: %d %s", r.status, r.body)
	}
	e.do(t, "service", "PUT", "/messages/events/consumerGroups/analytics", nil).wantError(t, hub.ErrConsumerGroupExists)
	e.do(t, "service", "PUT", "/messages/events/consumerGroups/a%20b", nil).wantError(t, hubkit.ErrArgumentInvalid)
	if r := e.do(t, "service", "GET", "/messages/events/consumerGroups", nil); string(r.body) != `["$Default","analytics"]` {
		t.Fatalf("groups: %s", r.body)
	}
	if r := e.do(t, "service", "DELETE", "/messages/events/consumerGroups/analytics", nil); r.status != 204 {
		t.Fatalf("delete group: %d %s", r.status, r.body)
	}
	e.do(t, "service", "GET", "/messages/events/consumerGroups/analytics/partitions/0", nil).wantError(t, hub.ErrConsumerGroupNotFound)

	r := e.do(t, "", "GET", "/metrics", nil)
	if r.status != 200 || !strings.Contains(string(r.body), "\nhubkit_d2c_messages_total 3\n") ||
		!strings.Contains(string(r.body), "# TYPE hubkit_connections gauge\n") ||
		!strings.Contains(string(r.body), "\nhubkit_endpoint_delivered_total{endpoint=\"sink\"} 0\n") {
		t.Fatalf("metrics: %d %s", r.status, r.body)
	}
}

func TestEndpointsHealth(t *testing.T) {
	e := newEnv(t)
	e.do(t, "registryRead", "GET", "/routing/endpointsHealth", nil).wantError(t, hubkit.ErrUnauthorized)
	r := e.do(t, "service", "GET", "/routing/endpointsHealth", nil)
	if r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	var got struct {
		Value []endpoint.Health `json:"value"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || len(got.Value) != 1 || got.Value[0].EndpointID != "sink" || got.Value[0].Status == "" {
		t.Fatalf("endpoints health %s (%v)", r.body, err)
	}
}

// TestDevicesFallback mounts a device API behind the service API: requests
// that match no service route by method and path reach it, the others
// stay with the service.
func TestDevicesFallback(t *testing.T) {
	e := newEnv(t)
	devices := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(service.New(e.h, service.Options{Logger: discard(), Devices: devices}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		method, path string
		device       bool
	}{
		{"POST", "/devices/d1/messages/events", true},
		{"GET", "/devices/d1/messages/deviceBound", true},
		{"DELETE", "/devices/d1/messages/deviceBound/lock-1", true},
		{"POST", "/devices/d1/messages/deviceBound/lock-1/abandon", true},
		{"POST", "/devices/d1/messages/devicebound", false}, // the service's C2D send
		{"GET", "/devices/d1", false},
		{"GET", "/health", false},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.StatusCode == http.StatusTeapot; got != tc.device {
			t.Errorf("%s %s: status %d, device API %v, want %v", tc.method, tc.path, res.StatusCode, got, tc.device)
		}
	}
}
