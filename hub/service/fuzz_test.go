package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/auth"
)

// FuzzHandler sends arbitrary requests, signed by iothubowner so that they
// reach the parsers, and checks that every answer is well formed: a known
// status, and IoT Hub's error format on errors. The corpus is in
// testdata/fuzz/FuzzHandler.
func FuzzHandler(f *testing.F) {
	e := newEnv(f)
	if _, err := e.h.CreateDevice(context.Background(), auth.Device{DeviceID: "d1"}); err != nil {
		f.Fatal(err)
	}
	token := e.token(f, "iothubowner", time.Now().Add(24*time.Hour))
	f.Add("PUT", "/devices/d2", "", []byte(`{"deviceId":"d2","status":"disabled"}`), "If-Match", "*")
	f.Add("POST", "/devices/d1/messages/devicebound", "", []byte("x"), "iothub-ack", "full")
	f.Add("GET", "/messages/events/consumerGroups/$Default/partitions/1", "sequenceNumber=3&inclusive=true&timeout=1ms", []byte(nil), "", "")
	f.Add("POST", "/messages/events/consumerGroups/$Default/partitions/0/checkpoint", "", []byte(`{"sequenceNumber":18446744073709551615}`), "", "")
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, hname, hvalue string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://hub", strings.NewReader(string(body)))
		if err != nil {
			return // not a request a server could receive
		}
		req.URL.Path, req.URL.RawQuery = path, query
		req.Header.Set("Authorization", token)
		if hname != "" {
			req.Header.Set(hname, hvalue)
		}
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		switch w.Code {
		case 200, 201, 204:
			return
		case 400, 401, 403, 404, 405, 409, 412, 413, 500:
		default:
			t.Fatalf("%s %s?%s: status %d", method, path, query, w.Code)
		}
		var eb struct{ Message string }
		if len(w.Header()["iothub-errorcode"]) == 0 || json.Unmarshal(w.Body.Bytes(), &eb) != nil || !strings.HasPrefix(eb.Message, "ErrorCode:") {
			t.Fatalf("%s %s?%s: error answer %d %q %s", method, path, query, w.Code, w.Header()["iothub-errorcode"], w.Body)
		}
	})
}
