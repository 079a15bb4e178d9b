package https_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker/brokertest"
	"github.com/hubkit/hubkit/broker/https"
	"github.com/hubkit/hubkit/queue"
)

const apiVersion = "?api-version=2021-04-12"

// do sends a request and returns the response with its body read.
func do(t *testing.T, c *http.Client, method, u string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// chunked hides the length of a body so that the client sends it chunked,
// as the Node.js SDK does.
type chunked struct{ io.Reader }

var exceptionRE = regexp.MustCompile(`^Tracking ID:[A-Z0-9]+-TimeStamp:\d\d/\d\d/\d{4} \d\d:\d\d:\d\d$`)

// checkError checks an IoT Hub error answer: status, iothub-errorcode and body.
func checkError(t *testing.T, res *http.Response, body []byte, status int, name string) {
	t.Helper()
	if res.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", res.StatusCode, status, body)
	}
	if got := res.Header.Get("iothub-errorcode"); got != name {
		t.Errorf("iothub-errorcode = %q, want %q", got, name)
	}
	var e struct{ Message, ExceptionMessage string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if !strings.HasPrefix(e.Message, "ErrorCode:"+name+";") {
		t.Errorf("Message = %q, want prefix ErrorCode:%s;", e.Message, name)
	}
	if !exceptionRE.MatchString(e.ExceptionMessage) {
		t.Errorf("ExceptionMessage = %q, want Tracking ID:<id>-TimeStamp:<utc>", e.ExceptionMessage)
	}
}

func TestSendWithProperties(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	_, base := startBroker(t, p, h)
	c := p.client(t)

	res, body := do(t, c, "POST", base+"/devices/dev-1/messages/events"+apiVersion, chunked{strings.NewReader(`{"t":21}`)}, map[string]string{
		"Authorization":               token("dev-1", key1),
		"IoTHub-MessageId":            "m-1",
		"IoTHub-CorrelationId":        "c-1",
		"IoTHub-UserId":               "u-1",
		"IoTHub-To":                   "/devices/dev-1/messages/events",
		"IoTHub-Expiry":               "2030-01-02T03:04:05Z",
		"iothub-contenttype":          "application/json",
		"iothub-contentencoding":      "utf-8",
		"iothub-creation-time-utc":    "2026-11-25T10:00:00Z",
		"iothub-interface-id":         "urn:x",
		"dt-subject":                  "thermostat1",
		"iothub-app-temperatureAlert": "true",
		"iothub-app-level":            "3",
	})
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("status = %d, want 204 (body %s)", res.StatusCode, body)
	}
	m := h.stored(t, 1)[0]
	if m.System.MessageSource != hubkit.SourceTelemetry || !strings.Contains(m.System.ConnectionAuthMethod, `"type":"sas"`) {
		t.Errorf("hub-stamped properties: %+v", m.System)
	}
	m.System.EnqueuedTime, m.System.SequenceNumber, m.System.MessageSource = time.Time{}, 0, ""
	m.System.ConnectionAuthMethod, m.System.ConnectionAuthGenerationID = "", ""
	want := hubkit.SystemProperties{
		MessageID: "m-1", CorrelationID: "c-1", UserID: "u-1", To: "/devices/dev-1/messages/events",
		ExpiryTime:  time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		ContentType: "application/json", ContentEncoding: "utf-8", CreationTime: "2026-11-25T10:00:00Z",
		InterfaceID: "urn:x", Subject: "thermostat1", ConnectionDeviceID: "dev-1",
	}
	if m.System != want {
		t.Errorf("system properties\n got %+v\nwant %+v", m.System, want)
	}
	if string(m.Body) != `{"t":21}` {
		t.Errorf("body = %q", m.Body)
	}
	// Names arrive lower-cased; headers are applied in sorted order.
	wantProps := hubkit.Properties{{Name: "level", Value: "3"}, {Name: "temperaturealert", Value: "true"}}
	if len(m.Properties) != 2 || m.Properties[0] != wantProps[0] || m.Properties[1] != wantProps[1] {
		t.Errorf("properties = %+v, want %+v", m.Properties, wantProps)
	}
}

func TestSendBatch(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	_, base := startBroker(t, p, h)
	batch := `[{"body":"aGVsbG8=","properties":{"iothub-app-Zeta":"1","iothub-app-alpha":"2","iothub-messageid":"b1"}},` +
		`{"body":"plain text","base64Encoded":false},{"body":""}]`
	res, body := do(t, p.client(t), "POST", base+"/devices/dev-1/messages/events"+apiVersion, strings.NewReader(batch), map[string]string{
		"Authorization": token("dev-1", key1),
		"Content-Type":  "application/vnd.microsoft.iothub.json",
	})
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("status = %d, want 204 (body %s)", res.StatusCode, body)
	}
	msgs := h.stored(t, 3)
	if string(msgs[0].Body) != "hello" || msgs[0].System.MessageID != "b1" {
		t.Errorf("message 0 = %q, id %q", msgs[0].Body, msgs[0].System.MessageID)
	}
	// JSON keeps the case and the order of names.
	if ps := msgs[0].Properties; len(ps) != 2 || ps[0].Name != "Zeta" || ps[0].Value != "1" || ps[1].Name != "alpha" {
		t.Errorf("message 0 properties = %+v", ps)
	}
	if string(msgs[1].Body) != "plain text" || len(msgs[2].Body) != 0 {
		t.Errorf("bodies = %q, %q", msgs[1].Body, msgs[2].Body)
	}
}

func TestErrors(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	_, base := startBroker(t, p, h)
	c := p.client(t)
	events := base + "/devices/dev-1/messages/events" + apiVersion
	good := token("dev-1", key1)
	big := strings.Repeat("x", hubkit.MaxD2CSize+1)
	tests := []struct {
		name, method, url, body string
		hdr                     map[string]string
		status                  int
		code                    string
	}{
		{"missing api-version", "POST", base + "/devices/dev-1/messages/events", "x", map[string]string{"Authorization": good}, 400, "ArgumentInvalid"},
		{"empty api-version", "GET", base + "/devices/dev-1/messages/deviceBound?api-version=", "", map[string]string{"Authorization": good}, 400, "ArgumentInvalid"},
		{"no credentials", "POST", events, "x", nil, 401, "IotHubUnauthorizedAccess"},
		{"bad signature", "POST", events, "x", map[string]string{"Authorization": token("dev-1", key2)}, 401, "IotHubUnauthorizedAccess"},
		{"not a token", "POST", events, "x", map[string]string{"Authorization": "Bearer abc"}, 401, "IotHubUnauthorizedAccess"},
		{"expired token", "POST", events, "x", map[string]string{"Authorization": brokertest.Token(host, "dev-1", "", key1, time.Now().Add(-time.Hour))}, 401, "IotHubUnauthorizedAccess"},
		{"token of another device", "POST", events, "x", map[string]string{"Authorization": token("dev-2", key2)}, 401, "IotHubUnauthorizedAccess"},
		{"token of another device on receive", "GET", base + "/devices/dev-2/messages/deviceBound" + apiVersion, "", map[string]string{"Authorization": good}, 401, "IotHubUnauthorizedAccess"},
		{"disabled device", "POST", base + "/devices/" + disabled + "/messages/events" + apiVersion, "x", map[string]string{"Authorization": token(disabled, key1)}, 403, "DeviceDisabled"},
		{"unknown device", "GET", base + "/devices/" + unknown + "/messages/deviceBound" + apiVersion, "", map[string]string{"Authorization": token(unknown, key1)}, 404, "DeviceNotFound"},
		{"oversized body", "POST", events, big, map[string]string{"Authorization": good}, 413, "MessageTooLarge"},
		{"oversized with properties", "POST", events, big[:hubkit.MaxD2CSize-10], map[string]string{"Authorization": good, "iothub-app-k": "0123456789"}, 413, "MessageTooLarge"},
		{"oversized batch", "POST", events, `[{"body":"` + strings.Repeat("QUFB", hubkit.MaxD2CSize/3+1) + `"}]`, map[string]string{"Authorization": good, "Content-Type": "application/vnd.microsoft.iothub.json"}, 413, "MessageTooLarge"},
		{"garbage batch", "POST", events, `{"body":`, map[string]string{"Authorization": good, "Content-Type": "application/vnd.microsoft.iothub.json"}, 400, "ArgumentInvalid"},
		{"batch not an array", "POST", events, `{"body":"eA=="}`, map[string]string{"Authorization": good, "Content-Type": "application/vnd.microsoft.iothub.json"}, 400, "ArgumentInvalid"},
		{"empty batch", "POST", events, `[]`, map[string]string{"Authorization": good, "Content-Type": "application/vnd.microsoft.iothub.json; charset=utf-8"}, 400, "ArgumentInvalid"},
		{"batch body not base64", "POST", events, `[{"body":"%%%"}]`, map[string]string{"Authorization": good, "Content-Type": "application/vnd.microsoft.iothub.json"}, 400, "ArgumentInvalid"},
		{"batch property not a string", "POST", events, `[{"body":"","properties":{"iothub-app-k":1}}]`, map[string]string{"Authorization": good, "Content-Type": "application/vnd.microsoft.iothub.json"}, 400, "ArgumentInvalid"},
		{"batch unknown property", "POST", events, `[{"body":"","properties":{"k":"v"}}]`, map[string]string{"Authorization": good, "Content-Type": "application/vnd.microsoft.iothub.json"}, 400, "ArgumentInvalid"},
		{"property value not a token", "POST", events, "x", map[string]string{"Authorization": good, "iothub-app-k": "a b"}, 400, "ArgumentInvalid"},
		{"bad expiry", "POST", events, "x", map[string]string{"Authorization": good, "iothub-expiry": "tomorrow"}, 400, "ArgumentInvalid"},
		{"lock timeout zero", "GET", base + "/devices/dev-1/messages/deviceBound" + apiVersion, "", map[string]string{"Authorization": good, "IotHub-MessageLockTimeout": "0"}, 400, "ArgumentInvalid"},
		{"lock timeout too long", "GET", base + "/devices/dev-1/messages/deviceBound" + apiVersion, "", map[string]string{"Authorization": good, "IotHub-MessageLockTimeout": "301"}, 400, "ArgumentInvalid"},
		{"lock timeout not a number", "GET", base + "/devices/dev-1/messages/deviceBound" + apiVersion, "", map[string]string{"Authorization": good, "IotHub-MessageLockTimeout": "1m"}, 400, "ArgumentInvalid"},
		{"unknown lock token", "DELETE", base + "/devices/dev-1/messages/deviceBound/nope" + apiVersion, "", map[string]string{"Authorization": good}, 412, "DeviceMessageLockLost"},
		{"bad reject value", "DELETE", base + "/devices/dev-1/messages/deviceBound/nope" + apiVersion + "&reject=maybe", "", map[string]string{"Authorization": good}, 400, "ArgumentInvalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := do(t, c, tt.method, tt.url, strings.NewReader(tt.body), tt.hdr)
			checkError(t, res, body, tt.status, tt.code)
			if _, n, _ := h.q.Bounds(context.Background(), brokertest.Stream, 0); n != 0 {
				t.Errorf("the store holds %d messages after refused requests", n)
			}
		})
	}
}

func TestHubRefusal(t *testing.T) {
	p := newPKI(t)
	h := newFakeHub(newRealHub(t, p))
	h.refuse = errors.Join(errors.New("store full"), hubkit.ErrThrottling)
	_, base := startBroker(t, p, h)
	res, body := do(t, p.client(t), "POST", base+"/devices/dev-1/messages/events"+apiVersion, strings.NewReader("x"), map[string]string{"Authorization": token("dev-1", key1)})
	checkError(t, res, body, 429, "ThrottlingException")
}

func TestReceiveCompleteRejectAbandon(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	_, base := startBroker(t, p, h)
	c := p.client(t)
	tok := token("dev-1", key1)
	auth1 := map[string]string{"Authorization": tok}
	bound := base + "/devices/dev-1/messages/devicebound" // the SDKs' casing
	expiry := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	receive := func(hdr map[string]string) (*http.Response, []byte, string) {
		t.Helper()
		res, body := do(t, c, "GET", bound+apiVersion, nil, hdr)
		etag := res.Header.Get("ETag")
		if res.StatusCode == 200 && (len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"') {
			t.Fatalf("ETag %q is not a quoted lock token", etag)
		}
		return res, body, strings.Trim(etag, `"`)
	}

	h.enqueue(t, "dev-1", hubkit.Message{
		Body: []byte("hi"),
		System: hubkit.SystemProperties{MessageID: "m1", CorrelationID: "c1", UserID: "svc", Ack: hubkit.AckFull,
			ContentType: "application/json", ContentEncoding: "utf-8", ExpiryTime: expiry},
		Properties: hubkit.Properties{{Name: "color", Value: "red"}},
	})
	peek, err := h.q.Peek(context.Background(), "dev-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	res, body, lock := receive(auth1)
	if res.StatusCode != 200 || string(body) != "hi" {
		t.Fatalf("receive: status %d body %q, want 200 hi", res.StatusCode, body)
	}
	for name, want := range map[string]string{
		"iothub-messageid": "m1", "iothub-sequencenumber": strconv.FormatUint(peek[0].System.SequenceNumber, 10), "iothub-deliverycount": "0",
		"iothub-to": "/devices/dev-1/messages/deviceBound", "iothub-userid": "svc", "iothub-correlationid": "c1",
		"iothub-ack": "full", "iothub-app-color": "red", "Content-Type": "application/json",
		"iothub-contenttype": "application/json", "iothub-contentencoding": "utf-8", "iothub-expiry": expiry.Format(time.RFC3339),
		"iothub-enqueuedtime": peek[0].System.EnqueuedTime.UTC().Format(time.RFC3339Nano),
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	// The default lock is 60 s: the message stays invisible for 59 s, then
	// comes back under a new lock token, and the old one is lost.
	h.clock.Add(59 * time.Second)
	if res, _, _ := receive(auth1); res.StatusCode != 204 {
		t.Fatalf("receive while locked: status %d, want 204", res.StatusCode)
	}
	h.clock.Add(2 * time.Second)
	res, _, lock2 := receive(auth1)
	if res.StatusCode != 200 || lock2 == lock || res.Header.Get("iothub-messageid") != "m1" {
		t.Fatalf("receive after the lock ended: status %d lock %q (old %q)", res.StatusCode, lock2, lock)
	}
	res, body = do(t, c, "DELETE", bound+"/"+lock+apiVersion, nil, auth1)
	checkError(t, res, body, 412, "DeviceMessageLockLost")
	// Complete as the Node.js SDK does: unquoted If-Match, lock token in the path.
	res, body = do(t, c, "DELETE", bound+"/"+lock2+apiVersion, nil, map[string]string{"Authorization": tok, "If-Match": lock2})
	if res.StatusCode != 204 {
		t.Fatalf("complete: status %d body %s, want 204", res.StatusCode, body)
	}
	if res, body, _ := receive(auth1); res.StatusCode != 204 || len(body) != 0 {
		t.Fatalf("receive from an empty queue: status %d body %q, want 204", res.StatusCode, body)
	}
	res, body = do(t, c, "DELETE", bound+"/"+lock2+apiVersion, nil, auth1)
	checkError(t, res, body, 412, "DeviceMessageLockLost")

	// Reject in the three spellings IoT Hub accepts.
	for i, q := range []string{"&reject", "&reject=", "&reject=true"} {
		h.enqueue(t, "dev-1", hubkit.Message{System: hubkit.SystemProperties{MessageID: "r" + strconv.Itoa(i)}})
		_, _, lock := receive(auth1)
		res, body = do(t, c, "DELETE", bound+"/"+lock+apiVersion+q, nil, map[string]string{"Authorization": tok, "If-Match": `"` + lock + `"`})
		if res.StatusCode != 204 {
			t.Fatalf("reject %s: status %d body %s", q, res.StatusCode, body)
		}
	}

	// IotHub-MessageLockTimeout sets the lock; abandon redelivers at once
	// with one more delivery and a new lock token.
	h.enqueue(t, "dev-1", hubkit.Message{System: hubkit.SystemProperties{MessageID: "a1"}})
	_, _, old := receive(map[string]string{"Authorization": tok, "IotHub-MessageLockTimeout": "5"})
	h.clock.Add(6 * time.Second)
	res, _, old2 := receive(auth1)
	if res.StatusCode != 200 || old2 == old {
		t.Fatalf("receive 6 s after a 5 s lock: status %d lock %q (old %q)", res.StatusCode, old2, old)
	}
	res, body = do(t, c, "POST", bound+"/"+old2+"/abandon"+apiVersion, nil, map[string]string{"Authorization": tok, "If-Match": "other"})
	checkError(t, res, body, 412, "PreconditionFailed")
	res, _ = do(t, c, "POST", bound+"/"+old2+"/Abandon"+apiVersion, nil, map[string]string{"Authorization": tok, "If-Match": old2})
	if res.StatusCode != 204 {
		t.Fatalf("abandon: status %d", res.StatusCode)
	}
	res, _, lock3 := receive(auth1)
	if res.Header.Get("iothub-messageid") != "a1" || res.Header.Get("iothub-deliverycount") != "1" || lock3 == old2 {
		t.Errorf("after abandon: id %q count %q lock %q (old %q)", res.Header.Get("iothub-messageid"), res.Header.Get("iothub-deliverycount"), lock3, old2)
	}
	res, body = do(t, c, "POST", bound+"/"+old2+"/abandon"+apiVersion, nil, auth1)
	checkError(t, res, body, 412, "DeviceMessageLockLost")
	if res, _ := do(t, c, "DELETE", bound+"/"+lock3+apiVersion+"&reject=false", nil, auth1); res.StatusCode != 204 {
		t.Fatalf("complete with reject=false: status %d", res.StatusCode)
	}
	want := []string{"Success:m1", "Rejected:r0", "Rejected:r1", "Rejected:r2", "Success:a1"}
	if got := h.outcomes(t, len(want)); !slices.Equal(got, want) {
		t.Errorf("outcomes %q, want %q", got, want)
	}
}

func TestRoutes(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	_, base := startBroker(t, p, h)
	c := p.client(t)
	weird := "dev#1?x%"
	res, body := do(t, c, "POST", base+"/devices/"+url.PathEscape(weird)+"/Messages/Events"+apiVersion, strings.NewReader("x"), map[string]string{"Authorization": token(weird, key1)})
	if res.StatusCode != 204 {
		t.Fatalf("send for %q: status %d body %s", weird, res.StatusCode, body)
	}
	if got := h.stored(t, 1)[0].System.ConnectionDeviceID; got != weird {
		t.Errorf("device id = %q, want %q", got, weird)
	}
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/devices/dev-1/messages/events", 405, "POST"},
		{"POST", "/devices/dev-1/messages/deviceBound", 405, "GET"},
		{"PUT", "/devices/dev-1/messages/deviceBound/l1", 405, "DELETE"},
		{"GET", "/devices/dev-1/twin", 404, ""},
		{"GET", "/devices//messages/deviceBound", 404, ""},
		{"POST", "/devices/dev-1/messages/deviceBound/l1/complete", 404, ""},
		{"GET", "/", 404, ""},
	} {
		res, _ := do(t, c, tt.method, base+tt.path+apiVersion, nil, map[string]string{"Authorization": token("dev-1", key1)})
		if res.StatusCode != tt.status || res.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: status %d Allow %q, want %d %q", tt.method, tt.path, res.StatusCode, res.Header.Get("Allow"), tt.status, tt.allow)
		}
	}
}

func TestX509(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	_, base := startBroker(t, p, h)
	c := p.client(t, p.clientCert(t, "cert-dev"))
	res, body := do(t, c, "POST", base+"/devices/cert-dev/messages/events"+apiVersion, strings.NewReader("x"), nil)
	if res.StatusCode != 204 {
		t.Fatalf("send with a client certificate: status %d body %s", res.StatusCode, body)
	}
	res, body = do(t, c, "POST", base+"/devices/dev-2/messages/events"+apiVersion, strings.NewReader("x"), nil)
	checkError(t, res, body, 401, "IotHubUnauthorizedAccess")
}

func TestLifecycle(t *testing.T) {
	p := newPKI(t)
	goroutines := runtime.NumGoroutine()
	if _, err := https.New(https.Options{MaxMessageSize: -1}); err == nil {
		t.Error("New accepted a negative MaxMessageSize")
	}
	if _, err := https.New(https.Options{TLSConfig: &tls.Config{}}); err == nil {
		t.Error("New accepted a TLSConfig without certificates")
	}
	b, err := https.New(https.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background(), newFakeHub(allowAll)); err == nil {
		t.Error("Start without TLSConfig succeeded")
	}
	if err := b.Start(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "nil Hub") {
		t.Errorf("Start with a nil Hub: %v", err)
	}
	b, _ = startBroker(t, p, newFakeHub(allowAll))
	if err := b.Start(context.Background(), newFakeHub(allowAll)); err == nil {
		t.Error("second Start succeeded")
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after Close: %v", err)
	}
	if err := b.Start(context.Background(), newFakeHub(allowAll)); !errors.Is(err, hubkit.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	rec := httptest.NewRecorder()
	b.Handler(newFakeHub(allowAll)).ServeHTTP(rec, httptest.NewRequest("GET", "/devices/dev-1/messages/deviceBound"+apiVersion, nil))
	if got := rec.Header()["iothub-errorcode"]; rec.Code != 503 || len(got) != 1 || got[0] != "ServiceUnavailable" {
		t.Errorf("handler after Close: %d %q, want 503 ServiceUnavailable", rec.Code, got)
	}
	p.client(t).Transport.(*http.Transport).CloseIdleConnections()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= goroutines }, "goroutines back to %d", goroutines)
}

// slowHub holds every done callback until release is closed.
type slowHub struct {
	*fakeHub
	ingested chan struct{}
	release  chan struct{}
}

func (h *slowHub) Ingest(ctx context.Context, id auth.Identity, msg *hubkit.Message, done func(error)) {
	close(h.ingested)
	go func() { <-h.release; done(nil) }()
}

func TestShutdownWaitsForDurability(t *testing.T) {
	p := newPKI(t)
	h := &slowHub{fakeHub: newFakeHub(newRealHub(t, p)), ingested: make(chan struct{}), release: make(chan struct{})}
	b, base := startBroker(t, p, h)
	c := p.client(t)
	req, err := http.NewRequest("POST", base+"/devices/dev-1/messages/events"+apiVersion, bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", token("dev-1", key1))
	status := make(chan int, 1)
	go func() {
		res, err := c.Do(req)
		if err != nil {
			status <- 0
			return
		}
		res.Body.Close()
		status <- res.StatusCode
	}()
	<-h.ingested
	shut := make(chan error, 1)
	go func() { shut <- b.Shutdown(context.Background()) }()
	select {
	case s := <-status:
		t.Fatalf("send answered %d before the hub reported it durable", s)
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a send in progress", err)
	default:
	}
	close(h.release)
	if s := <-status; s != 204 {
		t.Errorf("send during Shutdown answered %d, want 204", s)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// closingHub records its calls, in order with the test's "closed" event,
// and holds a receive until its context ends, then finishes the work under
// way for a while, as a store call already queued would.
type closingHub struct {
	*fakeHub
	entered chan struct{} // closed when a receive began
	closed  chan struct{} // closed by the test once Close or Shutdown returned

	mu     sync.Mutex // guards events
	events []string
}

func (h *closingHub) event(e string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

func (h *closingHub) Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error) {
	h.event("authenticate")
	return allowAll(ctx, c)
}

func (h *closingHub) ReceiveC2D(ctx context.Context, deviceID string, opts queue.ReceiveOptions) (queue.Delivery, error) {
	h.event("receive")
	close(h.entered)
	select {
	case <-ctx.Done():
	case <-h.closed:
	}
	select { // a broker that returned from Close without waiting is caught here
	case <-h.closed:
	case <-time.After(100 * time.Millisecond):
	}
	h.event("receive returned")
	return queue.Delivery{}, ctx.Err()
}

// TestCloseWaitsForHandlers checks that Close, and Shutdown when its ctx
// ends, cancel a receive in progress and return only once its handler
// returned, so that no hub call comes after: on the broker's own server and
// with Handler mounted on another one, which answers 503.
func TestCloseWaitsForHandlers(t *testing.T) {
	shutdown := func(b *https.Broker) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		return b.Shutdown(ctx)
	}
	for _, tc := range []struct {
		name    string
		mounted bool // Handler on an httptest server instead of Start
		stop    func(*https.Broker) error
		wantErr error
		status  int // the receive's answer; 0 means none
	}{
		{"Close", false, (*https.Broker).Close, nil, 0},
		{"Shutdown", false, shutdown, context.DeadlineExceeded, 0},
		{"Close/mounted", true, (*https.Broker).Close, nil, 503},
		{"Shutdown/mounted", true, shutdown, context.DeadlineExceeded, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKI(t)
			h := &closingHub{fakeHub: newFakeHub(allowAll), entered: make(chan struct{}), closed: make(chan struct{})}
			var b *https.Broker
			var base string
			c := p.client(t)
			if tc.mounted {
				var err error
				if b, err = https.New(https.Options{}); err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(b.Handler(h))
				t.Cleanup(srv.Close)
				base, c = srv.URL, srv.Client()
			} else {
				b, base = startBroker(t, p, h)
			}
			status := make(chan int, 1)
			go func() {
				req, _ := http.NewRequest("GET", base+"/devices/dev/messages/deviceBound"+apiVersion, nil)
				req.Header.Set("Authorization", "x")
				res, err := c.Do(req)
				if err != nil {
					status <- 0
					return
				}
				res.Body.Close()
				status <- res.StatusCode
			}()
			<-h.entered
			err := tc.stop(b)
			h.event("closed")
			close(h.closed)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("stopping: %v, want %v", err, tc.wantErr)
			}
			h.mu.Lock()
			got := slices.Clone(h.events)
			h.mu.Unlock()
			if want := []string{"authenticate", "receive", "receive returned", "closed"}; !slices.Equal(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}
			if s := <-status; s != tc.status {
				t.Errorf("receive answered %d, want %d", s, tc.status)
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: "+format, args...)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling interval, not a wait for an event
	}
}

// TestHTTP2 sends and receives over HTTP/2, which Start offers by ALPN.
func TestHTTP2(t *testing.T) {
	p := newPKI(t)
	h := newRealHub(t, p)
	_, base := startBroker(t, p, h)
	c := p.client(t)
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	tok := map[string]string{"Authorization": token("dev-1", key1), "iothub-app-k": "v"}
	res, body := do(t, c, "POST", base+"/devices/dev-1/messages/events"+apiVersion, strings.NewReader("x"), tok)
	if res.StatusCode != 204 || res.ProtoMajor != 2 {
		t.Fatalf("send: %s %d %s", res.Proto, res.StatusCode, body)
	}
	if v, _ := h.stored(t, 1)[0].Properties.Get("k"); v != "v" {
		t.Errorf("property k = %q, want v", v)
	}
	h.enqueue(t, "dev-1", hubkit.Message{Body: []byte("hi"), System: hubkit.SystemProperties{MessageID: "m1"}, Properties: hubkit.Properties{{Name: "a", Value: "b"}}})
	res, body = do(t, c, "GET", base+"/devices/dev-1/messages/deviceBound"+apiVersion, nil, tok)
	if res.StatusCode != 200 || string(body) != "hi" || res.Header.Get("iothub-app-a") != "b" || res.Header.Get("iothub-messageid") != "m1" || res.Header.Get("Content-Type") != "" {
		t.Errorf("receive over %s: %d %q %v", res.Proto, res.StatusCode, body, res.Header)
	}
}
