package https_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/hubkit/hubkit/broker/https"
)

// fuzzHandler returns the device API over a fake hub that accepts every
// device, as an in-process handler.
func fuzzHandler(t testing.TB) (http.Handler, *fakeHub) {
	b, err := https.New(https.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHub(allowAll)
	return b.Handler(h), h
}

// checkAnswer fails unless rec holds one of the answers the API gives.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	switch rec.Code {
	case 200, 204, 404, 405:
	case 400, 412, 413:
		if len(rec.Header()["iothub-errorcode"]) != 1 {
			t.Errorf("status %d without iothub-errorcode", rec.Code)
		}
	default:
		t.Errorf("unexpected status %d: %s", rec.Code, rec.Body.Bytes())
	}
}

// FuzzSend feeds arbitrary bodies, content types and property headers to a
// send. Whatever comes in, the answer is 204 with the messages stored, or
// a 4xx IoT Hub error with nothing stored; never a panic.
func FuzzSend(f *testing.F) {
	f.Add([]byte(`[{"body":"aGk=","properties":{"iothub-app-k":"v"}}]`), "application/vnd.microsoft.iothub.json", "iothub-app-k", "v")
	f.Add([]byte(`hello`), "", "iothub-expiry", "2030-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, body []byte, contentType, name, value string) {
		hd, hub := fuzzHandler(t)
		req := httptest.NewRequest("POST", "/devices/d1/messages/events?api-version=1", bytes.NewReader(body))
		req.Header.Set("Authorization", "SharedAccessSignature x")
		req.Header.Set("Content-Type", contentType)
		req.Header[name] = []string{value}
		rec := httptest.NewRecorder()
		hd.ServeHTTP(rec, req)
		checkAnswer(t, rec)
		if n := len(hub.messages()); (rec.Code == 204) != (n > 0) {
			t.Errorf("status %d with %d messages stored", rec.Code, n)
		}
	})
}

// FuzzPath feeds arbitrary methods and paths to the router.
func FuzzPath(f *testing.F) {
	f.Add("GET", "/devices/d1/messages/devicebound")
	f.Add("DELETE", "/devices/d%231/messages/deviceBound/lock-1")
	f.Add("POST", "/devices/d1/messages/deviceBound/lock-1/abandon")
	f.Fuzz(func(t *testing.T, method, path string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || !validMethod(method) {
			return
		}
		hd, _ := fuzzHandler(t)
		req := httptest.NewRequest("GET", "/", nil)
		req.Method, req.URL = method, u
		q := u.Query()
		q.Set("api-version", "1")
		u.RawQuery = q.Encode()
		req.Header.Set("Authorization", "SharedAccessSignature x")
		rec := httptest.NewRecorder()
		hd.ServeHTTP(rec, req)
		checkAnswer(t, rec)
	})
}

// validMethod reports whether m is an HTTP token, as net/http requires.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	_, err := http.NewRequest(m, "/", nil)
	return err == nil
}
