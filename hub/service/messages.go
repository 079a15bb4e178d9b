package service

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// appPrefix starts the header name of every application property.
const appPrefix = "iothub-app-"

// c2dFromRequest builds a cloud-to-device message from the request's
// iothub-* headers and body.
func c2dFromRequest(w http.ResponseWriter, r *http.Request) (*hubkit.Message, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, hubkit.MaxC2DSize+1))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, fmt.Errorf("%w: body is larger than %d bytes", hubkit.ErrMessageTooLarge, hubkit.MaxC2DSize)
		}
		return nil, err
	}
	m := &hubkit.Message{Body: body}
	s := &m.System
	for name, vs := range r.Header {
		v := vs[0]
		switch n := strings.ToLower(name); n {
		case "iothub-messageid":
			s.MessageID = v
		case "iothub-correlationid":
			s.CorrelationID = v
		case "iothub-userid":
			s.UserID = v
		case "iothub-contenttype":
			s.ContentType = v
		case "iothub-contentencoding":
			s.ContentEncoding = v
		case "iothub-ack":
			if s.Ack, err = hubkit.ParseAck(v); err != nil {
				return nil, err
			}
		case "iothub-expiry":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("%w: iothub-expiry %q is not an ISO 8601 time", hubkit.ErrArgumentInvalid, v)
			}
			s.ExpiryTime = t
		default:
			if p, ok := strings.CutPrefix(n, appPrefix); ok && p != "" {
				m.Properties.Set(p, v)
			}
		}
	}
	return m, nil
}

func (s *Handler) sendC2D(w http.ResponseWriter, r *http.Request, args []string) error {
	m, err := c2dFromRequest(w, r)
	if err != nil {
		return err
	}
	if _, err := s.h.SendC2D(r.Context(), args[0], m); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// purgeResult is IoT Hub's answer to a purge.
type purgeResult struct {
	DeviceID            string  `json:"deviceId"`
	ModuleID            *string `json:"moduleId"`
	TotalMessagesPurged int     `json:"totalMessagesPurged"`
}

func (s *Handler) purge(w http.ResponseWriter, r *http.Request, args []string) error {
	n, err := s.h.Purge(r.Context(), args[0])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, purgeResult{DeviceID: args[0], TotalMessagesPurged: n})
}

func (s *Handler) receiveFeedback(w http.ResponseWriter, r *http.Request, _ []string) error {
	ctx, cancel, wait, err := waitContext(r, 0)
	if err != nil {
		return err
	}
	defer cancel()
	b, err := s.h.ReceiveFeedback(ctx, wait == 0)
	if err != nil && (errors.Is(err, queue.ErrEmpty) || ctx.Err() != nil && r.Context().Err() == nil) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("ETag", `"`+b.LockToken+`"`)
	hd["iothub-enqueuedtime"] = []string{b.Message.System.EnqueuedTime.UTC().Format(time.RFC3339Nano)}
	hd["iothub-messageid"] = []string{b.Message.System.MessageID}
	hd.Set("Content-Type", b.Message.System.ContentType)
	w.WriteHeader(http.StatusOK)
	w.Write(b.Message.Body) // a failed write means the client went away
	return nil
}

func (s *Handler) completeFeedback(w http.ResponseWriter, r *http.Request, args []string) error {
	// The lock token is the feedback's ETag, which a client may paste with
	// its quotes.
	if err := s.h.CompleteFeedback(r.Context(), unquote(args[0])); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Handler) abandonFeedback(w http.ResponseWriter, r *http.Request, args []string) error {
	if err := s.h.AbandonFeedback(r.Context(), unquote(args[0])); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
