package https

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/broker"
	"github.com/hubkit/hubkit/internal/httperr"
	"github.com/hubkit/hubkit/queue"
)

// IoT Hub errors this package answers with besides the shared ones.
var (
	// errUnauthorizedAccess answers credentials the Authenticator denied.
	errUnauthorizedAccess = &hubkit.Error{Code: 401002, Name: "IotHubUnauthorizedAccess"}
	// errServiceUnavailable answers requests after Shutdown or Close; the
	// device SDKs retry it.
	errServiceUnavailable = &hubkit.Error{Code: 503000, Name: "ServiceUnavailable"}
)

// Lock timeouts of a receive, from the IotHub-MessageLockTimeout header.
const (
	defaultLock = 60 * time.Second
	maxLock     = 300 * time.Second
)

// op is what a request asks for.
type op uint8

const (
	opSend op = iota + 1
	opReceive
	opSettle // complete or reject
	opAbandon
)

// route is a parsed request path.
type route struct {
	op        op
	deviceID  string
	lockToken string
	allow     string // the methods the path allows; set when the method was wrong
}

// parseRoute matches method and the escaped path against the device API.
// The fixed segments compare case-insensitively; the device id and lock
// token are URL-decoded. It returns false when no route has that path.
func parseRoute(method, escapedPath string) (route, bool) {
	seg := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	if len(seg) < 4 || len(seg) > 6 || !strings.EqualFold(seg[0], "devices") || !strings.EqualFold(seg[2], "messages") {
		return route{}, false
	}
	var r route
	var err error
	if r.deviceID, err = url.PathUnescape(seg[1]); err != nil || r.deviceID == "" {
		return route{}, false
	}
	want := ""
	switch {
	case len(seg) == 4 && strings.EqualFold(seg[3], "events"):
		r.op, want = opSend, http.MethodPost
	case len(seg) == 4 && strings.EqualFold(seg[3], "deviceBound"):
		r.op, want = opReceive, http.MethodGet
	case len(seg) == 5 && strings.EqualFold(seg[3], "deviceBound"):
		r.op, want = opSettle, http.MethodDelete
	case len(seg) == 6 && strings.EqualFold(seg[3], "deviceBound") && strings.EqualFold(seg[5], "abandon"):
		r.op, want = opAbandon, http.MethodPost
	default:
		return route{}, false
	}
	if len(seg) > 4 {
		if r.lockToken, err = url.PathUnescape(seg[4]); err != nil || r.lockToken == "" {
			return route{}, false
		}
	}
	if method != want {
		r.op, r.allow = 0, want
	}
	return r, true
}

// Handler returns the device API for h, for an embedding program to mount
// on its own server at the root path. The server must use TLS with client
// certificates requested if X.509 devices connect: the handler reads them
// from Request.TLS. Requests are served concurrently; after Shutdown or
// Close every request is answered 503 ServiceUnavailable. It panics when h
// is nil, a wiring mistake.
func (b *Broker) Handler(h broker.Hub) http.Handler {
	if h == nil {
		panic("https: Handler with a nil Hub")
	}
	return &handler{b: b, hub: h}
}

type handler struct {
	b   *Broker
	hub broker.Hub
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := parseRoute(r.Method, r.URL.EscapedPath())
	switch {
	case !ok:
		http.NotFound(w, r)
		return
	case rt.allow != "":
		w.Header().Set("Allow", rt.allow)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx, done, ok := h.b.enter(r.Context())
	if !ok {
		h.writeError(w, r, rt.deviceID, fmt.Errorf("%w: %w", errServiceUnavailable, hubkit.ErrClosed))
		return
	}
	defer done()
	if err := h.serve(ctx, w, r, rt); err != nil {
		if ctx.Err() != nil && r.Context().Err() == nil {
			// Close cut the request, not the device: one still listening
			// (Handler on another server) is told to retry.
			err = fmt.Errorf("%w: %w: %w", errServiceUnavailable, hubkit.ErrClosed, err)
		}
		h.writeError(w, r, rt.deviceID, err)
	}
}

// serve answers a routed request, or returns the error to answer with. It
// calls the hub with ctx, which ends with the request or at Close.
func (h *handler) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, rt route) error {
	if r.URL.Query().Get("api-version") == "" {
		return fmt.Errorf("%w: the api-version query parameter is required", hubkit.ErrArgumentInvalid)
	}
	id, err := h.authenticate(ctx, r, rt.deviceID)
	if err != nil {
		return err
	}
	switch rt.op {
	case opSend:
		err = h.send(ctx, w, r, id)
	case opReceive:
		err = h.receive(ctx, w, r, id)
	case opSettle, opAbandon:
		err = h.settle(ctx, w, r, id, rt)
	}
	return err
}

// authenticate asks the hub who sent r and checks that it is the device
// named in the path.
func (h *handler) authenticate(ctx context.Context, r *http.Request, deviceID string) (auth.Identity, error) {
	c := auth.Credentials{
		Protocol:   auth.HTTPS,
		DeviceID:   deviceID,
		Password:   r.Header.Get("Authorization"),
		RemoteAddr: r.RemoteAddr,
	}
	if r.TLS != nil {
		c.PeerCertificates = r.TLS.PeerCertificates
	}
	if c.Password == "" && len(c.PeerCertificates) == 0 {
		return auth.Identity{}, fmt.Errorf("%w: Authorization header missing", errUnauthorizedAccess)
	}
	id, err := h.hub.Authenticate(ctx, c)
	if err != nil {
		// Refusals keep their own code (DeviceDisabled, DeviceNotFound);
		// every 401 becomes IotHubUnauthorizedAccess, as IoT Hub answers
		// a bad token over HTTP.
		var e *hubkit.Error
		if errors.Is(err, auth.ErrDenied) && (!errors.As(err, &e) || e.HTTPStatus() == http.StatusUnauthorized) {
			err = fmt.Errorf("%w: %w", errUnauthorizedAccess, err)
		}
		return auth.Identity{}, err
	}
	if id.DeviceID != deviceID || id.ModuleID != "" {
		return auth.Identity{}, fmt.Errorf("%w: credentials are not those of device %q", errUnauthorizedAccess, deviceID)
	}
	return id, nil
}

// send ingests one message, or a batch, and answers 204 once the hub
// reports all of them durable.
func (h *handler) send(ctx context.Context, w http.ResponseWriter, r *http.Request, id auth.Identity) error {
	max := h.b.opts.MaxMessageSize
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	batch := strings.EqualFold(ct, batchContentType)
	limit := max
	if batch {
		limit = 2 * max // base64 and JSON; the decoded size is checked below
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fmt.Errorf("%w: the body is larger than %d bytes", hubkit.ErrMessageTooLarge, limit)
		}
		return fmt.Errorf("%w: reading the body: %w", hubkit.ErrArgumentInvalid, err)
	}
	var msgs []*hubkit.Message
	if batch {
		msgs, err = decodeBatch(body)
	} else {
		var m *hubkit.Message
		m, err = messageFromHeaders(r.Header, body)
		msgs = []*hubkit.Message{m}
	}
	if err != nil {
		return err
	}
	size := 0
	for _, m := range msgs {
		size += m.Size()
	}
	if size > max {
		return fmt.Errorf("%w: the message is %d bytes, the limit is %d", hubkit.ErrMessageTooLarge, size, max)
	}
	if err := h.ingest(ctx, id, msgs); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ingest hands msgs to the hub and waits until it reported each durable or
// refused, or ctx ended. It returns the first refusal.
func (h *handler) ingest(ctx context.Context, id auth.Identity, msgs []*hubkit.Message) error {
	done := make(chan error, len(msgs)) // never blocks the hub's goroutine
	for _, m := range msgs {
		h.hub.Ingest(ctx, id, m, func(err error) { done <- err })
	}
	var first error
	for range msgs {
		select {
		case err := <-done:
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

// receive locks the device's next C2D message and answers it with 200, or
// answers 204 when none is visible.
func (h *handler) receive(ctx context.Context, w http.ResponseWriter, r *http.Request, id auth.Identity) error {
	lock := defaultLock
	if v := r.Header.Get("IotHub-MessageLockTimeout"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil || s < 1 || time.Duration(s)*time.Second > maxLock {
			return fmt.Errorf("%w: IotHub-MessageLockTimeout %q is not a number of seconds from 1 to 300", hubkit.ErrArgumentInvalid, v)
		}
		lock = time.Duration(s) * time.Second
	}
	d, err := h.hub.ReceiveC2D(ctx, id.DeviceID, queue.ReceiveOptions{Lock: lock, NoWait: true})
	if errors.Is(err, queue.ErrEmpty) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	writeDelivery(w, id.DeviceID, d)
	return nil
}

// settle completes, rejects or abandons the delivery named in the path.
func (h *handler) settle(ctx context.Context, w http.ResponseWriter, r *http.Request, id auth.Identity, rt route) error {
	if m := r.Header.Get("If-Match"); m != "" && strings.Trim(m, `"`) != rt.lockToken {
		return fmt.Errorf("%w: If-Match %q does not name lock token %q", hubkit.ErrPreconditionFailed, m, rt.lockToken)
	}
	how := broker.Abandon
	if rt.op == opSettle {
		how = broker.Complete
		if q := r.URL.Query(); q.Has("reject") {
			switch strings.ToLower(q.Get("reject")) {
			case "", "true":
				how = broker.Reject
			case "false":
			default:
				return fmt.Errorf("%w: reject=%q: use reject, reject= or reject=true", hubkit.ErrArgumentInvalid, q.Get("reject"))
			}
		}
	}
	if err := h.hub.Settle(ctx, id.DeviceID, rt.lockToken, how); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeError answers err as IoT Hub does: the HTTP status of its error
// code, the iothub-errorcode header and a JSON body.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, deviceID string, err error) {
	if r.Context().Err() != nil {
		// The device went away, or Close cut the request: nobody reads an answer.
		h.b.log.LogAttrs(r.Context(), slog.LevelDebug, "request ended", slog.String("device_id", deviceID), slog.Any("err", err))
		return
	}
	e := hubkit.ErrorCode(err)
	status := e.HTTPStatus()
	level := slog.LevelDebug
	if status >= 500 && !errors.Is(err, hubkit.ErrClosed) {
		level = slog.LevelWarn
	}
	h.b.log.LogAttrs(r.Context(), level, "request refused",
		slog.String("device_id", deviceID), slog.String("method", r.Method),
		slog.Int("status", status), slog.Any("err", err))
	httperr.Write(w, e, err, h.b.now())
}
