package httperr_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/httperr"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		e      *hubkit.Error
		err    error
		status int
		reason string // the text after "ErrorCode:<Name>;"
	}{
		{"refused request tells why", hubkit.ErrMessageTooLarge, fmt.Errorf("body of 300000 bytes: %w", hubkit.ErrMessageTooLarge), 413, "body of 300000 bytes: hubkit: MessageTooLarge (413001)"},
		{"refused credential does not", hubkit.ErrUnauthorized, fmt.Errorf("SAS signature of key secondary does not match: %w", hubkit.ErrUnauthorized), 401, "Unauthorized"},
		{"internal failure does not", hubkit.ErrServerError, fmt.Errorf("queue: write failed in /var/lib/hub: disk full"), 500, "Internal Server Error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			httperr.Write(w, tc.e, tc.err, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			code := w.Header()["iothub-errorcode"] // as IoT Hub spells it, not canonical
			if w.Code != tc.status || len(code) != 1 || code[0] != tc.e.Name {
				t.Errorf("status %d, iothub-errorcode %q; want %d, %q", w.Code, code, tc.status, tc.e.Name)
			}
			var b struct{ Message, ExceptionMessage string }
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			if want := "ErrorCode:" + tc.e.Name + ";" + tc.reason; b.Message != want {
				t.Errorf("Message %q, want %q", b.Message, want)
			}
			if !strings.HasPrefix(b.ExceptionMessage, "Tracking ID:") || !strings.HasSuffix(b.ExceptionMessage, "-TimeStamp:01/02/2026 03:04:05") {
				t.Errorf("ExceptionMessage %q", b.ExceptionMessage)
			}
		})
	}
}
