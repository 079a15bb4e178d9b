package httperr

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"time"

	"github.com/hubkit/hubkit"
)

// body is IoT Hub's JSON error body.
type body struct {
	Message          string
	ExceptionMessage string
}

// Write answers err as IoT Hub does: the HTTP status of e's six-digit code,
// an iothub-errorcode header with e's name, and the JSON body
// {"Message":"ErrorCode:<Name>;<reason>","ExceptionMessage":"Tracking ID:<id>-TimeStamp:<now>"}.
// The reason is err's text for a refused request (4xx) but a fixed text
// for refused credentials (401) and for the hub's own failures (5xx): why
// a credential failed and what broke inside are for the hub's log, which
// the caller writes, not for the client. A failed write is ignored: it
// means the client went away.
func Write(w http.ResponseWriter, e *hubkit.Error, err error, now time.Time) {
	reason := err.Error()
	switch status := e.HTTPStatus(); {
	case status == http.StatusUnauthorized:
		reason = "Unauthorized"
	case status >= 500:
		reason = http.StatusText(status)
	}
	b, _ := json.Marshal(body{
		Message:          "ErrorCode:" + e.Name + ";" + reason,
		ExceptionMessage: "Tracking ID:" + rand.Text() + "-TimeStamp:" + now.UTC().Format("01/02/2006 15:04:05"),
	})
	hd := w.Header()
	hd["iothub-errorcode"] = []string{e.Name}
	hd.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.HTTPStatus())
	w.Write(b)
}
