package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
	"github.com/hubkit/hubkit/endpoint/internal/record"
	"github.com/hubkit/hubkit/endpoint/webhook"
)

// server is a webhook receiver that keeps what it is sent.
type server struct {
	*httptest.Server
	mu       sync.Mutex // guards the fields below
	got      []*hubkit.Message
	requests int
	status   int           // answer instead of accepting, when non-zero
	stalled  chan struct{} // non-nil while stalled
	held     int           // requests waiting on stalled
	header   http.Header   // of the last request
}

func newServer(t *testing.T) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.header = r.Header.Clone()
	stalled, status := s.stalled, s.status
	s.mu.Unlock()
	if stalled != nil {
		s.hold(1)
		defer s.hold(-1)
		select {
		case <-stalled:
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	var body bytes.Buffer
	body.ReadFrom(r.Body)
	var recs []record.Record
	if bytes.HasPrefix(body.Bytes(), []byte("[")) {
		if err := json.Unmarshal(body.Bytes(), &recs); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		recs = make([]record.Record, 1)
		if err := json.Unmarshal(body.Bytes(), &recs[0]); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	var msgs []*hubkit.Message
	for _, rec := range recs {
		m, err := rec.Message()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msgs = append(msgs, m)
	}
	s.mu.Lock()
	s.got = append(s.got, msgs...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) Received(*testing.T) []*hubkit.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*hubkit.Message(nil), s.got...)
}

func (s *server) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func (s *server) SetFailing(_ *testing.T, on bool) {
	if on {
		s.setStatus(http.StatusServiceUnavailable)
	} else {
		s.setStatus(0)
	}
}

func (s *server) hold(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held += n
}

// Holding reports whether a request waits for the stall to end.
func (s *server) Holding(*testing.T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held > 0
}

func (s *server) SetStalled(_ *testing.T, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case on && s.stalled == nil:
		s.stalled = make(chan struct{})
	case !on && s.stalled != nil:
		close(s.stalled)
		s.stalled = nil
	}
}

func newEndpoint(t *testing.T, opts webhook.Options) *webhook.Endpoint {
	t.Helper()
	ep, err := webhook.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func TestConformance(t *testing.T) {
	for _, batch := range []bool{false, true} {
		name := "OnePerRequest"
		if batch {
			name = "Batch"
		}
		t.Run(name, func(t *testing.T) {
			endpointtest.Run(t, endpointtest.Harness{
				New: func(t *testing.T) (endpoint.Endpoint, endpointtest.Sink) {
					s := newServer(t)
					return newEndpoint(t, webhook.Options{URL: s.URL, Batch: batch, MaxRequestBytes: 64 << 10, MaxMessageSize: 2 << 20}), s
				},
				TooLarge: func() *hubkit.Message { return &hubkit.Message{Body: make([]byte, 3<<20)} },
			})
		})
	}
}

func TestStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
		tooLarge  bool
	}{
		{http.StatusTooManyRequests, true, false},
		{http.StatusInternalServerError, true, false},
		{http.StatusBadGateway, true, false},
		{http.StatusServiceUnavailable, true, false},
		{http.StatusBadRequest, false, false},
		{http.StatusUnauthorized, false, false},
		{http.StatusNotFound, false, false},
		{http.StatusRequestEntityTooLarge, false, true},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			s := newServer(t)
			s.setStatus(tc.status)
			ep := newEndpoint(t, webhook.Options{URL: s.URL})
			n, err := ep.Send(context.Background(), []*hubkit.Message{{Body: []byte("x")}})
			var se *endpoint.SendError
			if n != 0 || !errors.As(err, &se) || se.Retryable != tc.retryable || errors.Is(err, hubkit.ErrMessageTooLarge) != tc.tooLarge {
				t.Fatalf("Send = %d, %v; want retryable=%v tooLarge=%v", n, err, tc.retryable, tc.tooLarge)
			}
		})
	}
}

func TestBatchRefusalFindsTheBadMessage(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		if strings.Contains(body.String(), `"bad"`) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var recs []record.Record
		if err := json.Unmarshal(body.Bytes(), &recs); err != nil {
			recs = make([]record.Record, 1)
			json.Unmarshal(body.Bytes(), &recs[0])
		}
		mu.Lock()
		for _, r := range recs {
			got = append(got, r.SystemProperties["messageId"])
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	ep := newEndpoint(t, webhook.Options{URL: srv.URL, Batch: true})
	var batch []*hubkit.Message
	for _, id := range []string{"a", "b", "bad", "c"} {
		batch = append(batch, &hubkit.Message{Body: []byte(id), System: hubkit.SystemProperties{MessageID: id}})
	}
	n, err := ep.Send(context.Background(), batch)
	if n != 2 || endpoint.IsRetryable(err) {
		t.Fatalf("Send = %d, %v; want 2 accepted and a non-retryable error", n, err)
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("server got %v", got)
	}
}

func TestHeadersAndShape(t *testing.T) {
	s := newServer(t)
	ep := newEndpoint(t, webhook.Options{URL: s.URL, Header: http.Header{"Authorization": {"Bearer t0ken"}}})
	m := &hubkit.Message{Body: []byte(`{"t":21.5}`), System: hubkit.SystemProperties{ContentType: "application/json", ContentEncoding: "utf-8", ConnectionDeviceID: "dev-1"}}
	if _, err := ep.Send(context.Background(), []*hubkit.Message{m}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.header.Get("Authorization") != "Bearer t0ken" || s.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", s.header)
	}
	if len(s.got) != 1 || string(s.got[0].Body) != `{"t":21.5}` || s.got[0].System.ConnectionDeviceID != "dev-1" {
		t.Errorf("server got %+v", s.got)
	}
}

func TestNewErrors(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "://", "ftp://user:s3cret@x", "http://user:s3cret@x:bad port"} {
		_, err := webhook.New(webhook.Options{URL: u})
		if err == nil {
			t.Errorf("New(URL %q) = nil error", u)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(URL %q) = %v: the error shows the password", u, err)
		}
	}
}
