package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/hub"
	"github.com/hubkit/hubkit/internal/httperr"
)

// Options configure a [Handler]. The zero value works.
type Options struct {
	// Logger receives a Debug line per refused request and a Warn line
	// per server error. Nil means slog.Default().
	Logger *slog.Logger
	// Devices, when set, serves every request that matches no service
	// route by method and path: mount the HTTPS device API of
	// broker/https here and both APIs share one port, as on IoT Hub
	// (the C2D send, POST .../messages/devicebound, is the service's; the
	// device's receive, complete, reject and abandon go to Devices).
	Devices http.Handler
}

// A Handler serves the service REST API of one hub. It is safe for
// concurrent use; a request that waits (feedback, events) ends when its
// timeout passes, the client goes away or the hub closes.
type Handler struct {
	h       *hub.Hub
	log     *slog.Logger
	devices http.Handler
	routes  []route
}

var _ http.Handler = (*Handler)(nil)

// A route is one row of the table in the package documentation. Pattern
// segments in braces are variables, handed to serve URL-decoded in order;
// the others compare case-insensitively.
type route struct {
	method  string
	pattern []string
	need    auth.Permission // 0: no authorization
	serve   func(w http.ResponseWriter, r *http.Request, args []string) error
}

// New returns a Handler serving the REST API of h.
func New(h *hub.Hub, opts Options) *Handler {
	s := &Handler{h: h, log: opts.Logger, devices: opts.Devices}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "service")
	add := func(method, path string, need auth.Permission, serve func(http.ResponseWriter, *http.Request, []string) error) {
		s.routes = append(s.routes, route{method, strings.Split(strings.Trim(path, "/"), "/"), need, serve})
	}
	add("PUT", "/devices/{id}", auth.RegistryWrite, s.putDevice)
	add("GET", "/devices/{id}", auth.RegistryRead, s.getDevice)
	add("DELETE", "/devices/{id}", auth.RegistryWrite, s.deleteDevice)
	add("GET", "/devices", auth.RegistryRead, s.listDevices)
	add("PUT", "/devices/{id}/modules/{moduleId}", auth.RegistryWrite, s.putModule)
	add("GET", "/devices/{id}/modules/{moduleId}", auth.RegistryRead, s.getModule)
	add("DELETE", "/devices/{id}/modules/{moduleId}", auth.RegistryWrite, s.deleteModule)
	add("GET", "/devices/{id}/modules", auth.RegistryRead, s.listModules)
	add("POST", "/devices/{id}/messages/devicebound", auth.ServiceConnect, s.sendC2D)
	add("DELETE", "/devices/{id}/commands", auth.ServiceConnect, s.purge)
	add("GET", "/messages/servicebound/feedback", auth.ServiceConnect, s.receiveFeedback)
	add("DELETE", "/messages/servicebound/feedback/{lock}", auth.ServiceConnect, s.completeFeedback)
	add("POST", "/messages/servicebound/feedback/{lock}/abandon", auth.ServiceConnect, s.abandonFeedback)
	add("GET", "/messages/events/consumergroups", auth.ServiceConnect, s.listGroups)
	add("PUT", "/messages/events/consumergroups/{group}", auth.ServiceConnect, s.createGroup)
	add("DELETE", "/messages/events/consumergroups/{group}", auth.ServiceConnect, s.deleteGroup)
	add("GET", "/messages/events/consumergroups/{group}/partitions/{p}", auth.ServiceConnect, s.receiveEvents)
	add("GET", "/messages/events/consumergroups/{group}/partitions/{p}/checkpoint", auth.ServiceConnect, s.getCheckpoint)
	add("POST", "/messages/events/consumergroups/{group}/partitions/{p}/checkpoint", auth.ServiceConnect, s.checkpoint)
	add("GET", "/routing/endpointsHealth", auth.ServiceConnect, s.endpointsHealth)
	add("GET", "/health", 0, s.health)
	add("GET", "/metrics", 0, s.metrics)
	return s
}

// Errors of the HTTP layer itself.
var (
	errNotFound = &hubkit.Error{Code: 404000, Name: "NotFound"}
	errMethod   = &hubkit.Error{Code: 405000, Name: "MethodNotAllowed"}
)

// ServeHTTP finds the request's route, checks its authorization and
// serves it.
func (s *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	pathMatched := false
	for _, rt := range s.routes {
		args, ok := match(rt.pattern, segs)
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method != r.Method {
			continue
		}
		if rt.need != 0 {
			if _, err := s.h.AuthorizeService(r.Header.Get("Authorization"), rt.need); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if err := rt.serve(w, r, args); err != nil {
			s.writeError(w, r, err)
		}
		return
	}
	if s.devices != nil {
		s.devices.ServeHTTP(w, r)
		return
	}
	if pathMatched {
		s.writeError(w, r, errMethod)
		return
	}
	s.writeError(w, r, errNotFound)
}

// match matches the escaped path segments against a pattern and returns
// the decoded variables.
func match(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var args []string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, false
			}
			args = append(args, v)
			continue
		}
		if !strings.EqualFold(p, segs[i]) {
			return nil, false
		}
	}
	return args, true
}

// writeError answers err as IoT Hub does: the HTTP status of its error
// code, the iothub-errorcode header and a JSON body.
func (s *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := hubkit.ErrorCode(err)
	if errors.Is(err, auth.ErrDenied) && e == hubkit.ErrServerError {
		e = hubkit.ErrUnauthorized
	}
	status := e.HTTPStatus()
	level := slog.LevelDebug
	if status >= 500 && !errors.Is(err, hubkit.ErrClosed) {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), level, "request refused", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", status), slog.Any("err", err))
	httperr.Write(w, e, err, time.Now())
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b) // a failed write means the client went away
	return nil
}

// readJSON decodes the request body, of at most limit bytes, into v.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return hubkit.ErrMessageTooLarge
		}
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.Join(hubkit.ErrArgumentInvalid, err)
	}
	return nil
}

// waitContext returns the request context bounded by the timeout query
// parameter: a Go duration from 0 to 60 s, def when absent. A zero wait
// leaves the context unbounded: the caller then asks not to wait.
func waitContext(r *http.Request, def time.Duration) (context.Context, context.CancelFunc, time.Duration, error) {
	d := def
	if v := r.URL.Query().Get("timeout"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 0 || d > time.Minute {
			return nil, nil, 0, errors.Join(hubkit.ErrArgumentInvalid, errors.New("timeout must be a duration from 0s to 60s"))
		}
	}
	if d == 0 {
		ctx, cancel := context.WithCancel(r.Context())
		return ctx, cancel, 0, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, d, nil
}

// endpointsHealth answers the health of every custom endpoint, in the
// shape of IoT Hub's routingEndpointsHealth: {"value":[{"endpointId",
// "healthStatus", "lastKnownError", ...}]}.
func (s *Handler) endpointsHealth(w http.ResponseWriter, r *http.Request, _ []string) error {
	eps := s.h.Endpoints()
	out := struct {
		Value []endpoint.Health `json:"value"`
	}{Value: make([]endpoint.Health, 0, len(eps))}
	for _, e := range eps {
		out.Value = append(out.Value, e.Health)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Handler) health(w http.ResponseWriter, r *http.Request, _ []string) error {
	if err := s.h.Healthy(); err != nil {
		return writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": err.Error()})
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
