package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/internal/closing"
)

// Options configure an AMQP [Endpoint].
type Options struct {
	// Name names the endpoint in errors. Empty means "amqp".
	Name string
	// URL is the peer: amqp://host[:5672] or amqps://host[:5671]. A user
	// and password in it select SASL PLAIN unless Username is set. Required.
	URL string
	// Address is the target node: a queue ("telemetry", "/amq/queue/q" on
	// RabbitMQ), an Event Hubs entity, a Service Bus queue or topic. Required.
	Address string
	// Username and Password select SASL PLAIN, as for Event Hubs with a
	// shared access key ("RootManageSharedAccessKey" and the key).
	Username, Password string
	// Anonymous selects SASL ANONYMOUS when no user is given.
	Anonymous bool
	// TLSConfig is used for amqps. Nil means the system roots and the URL's host.
	TLSConfig *tls.Config
	// HostName is sent in the AMQP open frame (the virtual host or
	// namespace). Empty means the URL's host.
	HostName string
	// HubName names the hub in the AMQP container id ("hubkit-" + HubName).
	// Empty means "hubkit".
	HubName string
	// MaxMessageSize refuses messages whose body is larger than this, in
	// bytes, without sending them. Zero means 1 MiB, the Event Hubs
	// premium limit; the peer may refuse smaller ones.
	MaxMessageSize int
	// DialTimeout bounds connecting and attaching. Zero means 30 s.
	DialTimeout time.Duration
	// OmitUserID leaves the user-id property out. RabbitMQ ends the
	// session when a message's user-id differs from the authenticated user.
	OmitUserID bool
}

// Endpoint sends messages over one AMQP connection, redialled when lost.
// It is safe for concurrent use.
type Endpoint struct {
	opts Options
	dial *goamqp.ConnOptions
	life *closing.State

	mu     sync.Mutex // guards the fields below and serialises sends
	conn   *goamqp.Conn
	sender *goamqp.Sender
}

var _ endpoint.Endpoint = (*Endpoint)(nil)

// New checks opts and returns an Endpoint. It connects on the first Send.
func New(opts Options) (*Endpoint, error) {
	var problems []error
	if opts.Name == "" {
		opts.Name = "amqp"
	}
	if opts.HubName == "" {
		opts.HubName = "hubkit"
	}
	u, err := url.Parse(opts.URL)
	switch {
	case err != nil:
		problems = append(problems, errors.New("URL cannot be parsed")) // its text may hold a password
	case (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "":
		problems = append(problems, fmt.Errorf("URL %q is not an amqp or amqps URL", u.Redacted()))
	}
	if opts.Address == "" {
		problems = append(problems, errors.New("Address is empty"))
	}
	if opts.MaxMessageSize < 0 || opts.DialTimeout < 0 {
		problems = append(problems, errors.New("negative MaxMessageSize or DialTimeout"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("amqp: invalid options: %w", errors.Join(problems...))
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = 1 << 20
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 30 * time.Second
	}
	dial := &goamqp.ConnOptions{
		ContainerID:  "hubkit-" + opts.HubName,
		HostName:     opts.HostName,
		TLSConfig:    opts.TLSConfig,
		WriteTimeout: opts.DialTimeout,
	}
	switch {
	case opts.Username != "":
		dial.SASLType = goamqp.SASLTypePlain(opts.Username, opts.Password)
	case opts.Anonymous && u.User == nil:
		dial.SASLType = goamqp.SASLTypeAnonymous()
	}
	return &Endpoint{opts: opts, dial: dial, life: closing.New()}, nil
}

// Send sends batch unsettled, pipelined, and returns how many leading
// messages the peer accepted. See [endpoint.Endpoint]. A message larger
// than MaxMessageSize, or one the peer rejects as too large, is refused
// with a non-retryable error wrapping hubkit.ErrMessageTooLarge; one the
// peer rejects as malformed (decode-error, invalid-field) is refused as
// invalid; every other failure is retryable.
func (e *Endpoint) Send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	ctx, cancel, err := e.life.Bind(ctx)
	if err != nil {
		return 0, endpoint.Retry(e.opts.Name, err)
	}
	defer cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	if ctx.Err() != nil {
		return 0, endpoint.Retry(e.opts.Name, e.life.Cause(ctx))
	}

	limit := len(batch)
	var refused error
	for i, m := range batch {
		if len(m.Body) > e.opts.MaxMessageSize {
			limit = i
			refused = endpoint.Skip(e.opts.Name, fmt.Errorf("amqp: body of %d bytes, the limit is %d: %w", len(m.Body), e.opts.MaxMessageSize, hubkit.ErrMessageTooLarge))
			break
		}
	}
	if limit == 0 {
		return 0, refused
	}
	sender, err := e.senderLocked(ctx)
	if err != nil {
		return 0, e.fail(ctx, err)
	}
	receipts := make([]goamqp.SendReceipt, 0, limit)
	var sendErr error
	for _, m := range batch[:limit] {
		am := Message(m)
		if e.opts.OmitUserID {
			am.Properties.UserID = nil
		}
		r, err := sender.SendWithReceipt(ctx, am, nil)
		if err != nil {
			sendErr = err
			break
		}
		receipts = append(receipts, r)
	}
	for i := range receipts {
		state, err := receipts[i].Wait(ctx)
		if err != nil {
			return i, e.fail(ctx, err)
		}
		switch st := state.(type) {
		case *goamqp.StateAccepted:
		case *goamqp.StateRejected:
			return i, e.rejected(st.Error)
		default:
			return i, endpoint.Retry(e.opts.Name, fmt.Errorf("amqp: the peer settled the message as %T", state))
		}
	}
	if sendErr != nil {
		return len(receipts), e.fail(ctx, sendErr)
	}
	return limit, refused
}

// rejected turns the peer's rejection into a SendError.
func (e *Endpoint) rejected(cause *goamqp.Error) error {
	if cause == nil {
		return endpoint.Retry(e.opts.Name, errors.New("amqp: the peer rejected the message"))
	}
	err := fmt.Errorf("amqp: the peer rejected the message: %w", cause)
	switch cause.Condition {
	case goamqp.ErrCondMessageSizeExceeded:
		return endpoint.Skip(e.opts.Name, fmt.Errorf("%w (%w)", err, hubkit.ErrMessageTooLarge))
	case goamqp.ErrCondDecodeError, goamqp.ErrCondInvalidField:
		return endpoint.Skip(e.opts.Name, err)
	}
	return endpoint.Retry(e.opts.Name, err)
}

// fail drops the connection after err, since after a connection, session
// or link error (or a cancelled wait) its state is unknown, and returns
// the retryable SendError for err.
func (e *Endpoint) fail(ctx context.Context, err error) error {
	e.dropLocked()
	if ctx.Err() != nil {
		err = e.life.Cause(ctx)
	} else if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		// go-amqp turns ctx's deadline into socket deadlines, which can
		// fire a moment before ctx itself reports it.
		err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return endpoint.Retry(e.opts.Name, fmt.Errorf("amqp: %w", err))
}

// senderLocked returns the sender, dialling first when there is none.
func (e *Endpoint) senderLocked(ctx context.Context) (*goamqp.Sender, error) {
	if e.conn != nil {
		select {
		case <-e.conn.Done():
			e.dropLocked()
		default:
			return e.sender, nil
		}
	}
	dctx, cancel := context.WithTimeout(ctx, e.opts.DialTimeout)
	defer cancel()
	conn, err := goamqp.Dial(dctx, e.opts.URL, e.dial)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	// One session per link: a failed attach ends the whole session on some brokers.
	session, err := conn.NewSession(dctx, nil)
	if err == nil {
		e.sender, err = session.NewSender(dctx, e.opts.Address, nil)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("attach to %s: %w", e.opts.Address, err)
	}
	e.conn = conn
	return e.sender, nil
}

// dropLocked closes the connection. We never close the link alone: some
// brokers (RabbitMQ before 4.0) never answer a link close, and go-amqp
// then waits for ever; closing the connection always ends.
func (e *Endpoint) dropLocked() {
	if e.conn != nil {
		e.conn.Close()
		e.conn, e.sender = nil, nil
	}
}

// Close cancels a Send in progress, closes the connection and makes later
// sends return hubkit.ErrClosed. It is idempotent.
func (e *Endpoint) Close() error {
	if e.life.Close() {
		e.mu.Lock() // the Send in progress ends: its ctx was just cancelled
		e.dropLocked()
		e.mu.Unlock()
	}
	return nil
}

// Message returns the AMQP message for m, mapped as the package
// documentation says.
func Message(m *hubkit.Message) *goamqp.Message {
	s := &m.System
	str := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	props := &goamqp.MessageProperties{
		To:              str(s.To),
		ContentType:     str(s.ContentType),
		ContentEncoding: str(s.ContentEncoding),
	}
	if s.MessageID != "" {
		props.MessageID = s.MessageID
	}
	if s.CorrelationID != "" {
		props.CorrelationID = s.CorrelationID
	}
	if s.UserID != "" {
		props.UserID = []byte(s.UserID)
	}
	if !s.ExpiryTime.IsZero() {
		t := s.ExpiryTime
		props.AbsoluteExpiryTime = &t
	}
	if t, err := time.Parse(time.RFC3339Nano, s.CreationTime); err == nil {
		props.CreationTime = &t
	} else if !s.EnqueuedTime.IsZero() {
		t := s.EnqueuedTime
		props.CreationTime = &t
	}
	ann := goamqp.Annotations{}
	if !s.EnqueuedTime.IsZero() {
		ann["iothub-enqueuedtime"] = s.EnqueuedTime
	}
	for _, a := range []struct{ k, v string }{
		{"iothub-connection-device-id", s.ConnectionDeviceID},
		{"iothub-connection-module-id", s.ConnectionModuleID},
		{"iothub-connection-auth-generation-id", s.ConnectionAuthGenerationID},
		{"iothub-connection-auth-method", s.ConnectionAuthMethod},
		{"iothub-message-source", s.MessageSource},
		{"iothub-creation-time-utc", s.CreationTime},
		{"iothub-interface-id", s.InterfaceID},
		{"dt-dataschema", s.DataSchema},
		{"dt-subject", s.Subject},
		{"x-opt-partition-key", s.ConnectionDeviceID},
	} {
		if a.v != "" {
			ann[a.k] = a.v
		}
	}
	var app map[string]any
	if len(m.Properties) > 0 {
		app = make(map[string]any, len(m.Properties))
		for _, p := range m.Properties {
			app[p.Name] = p.Value
		}
	}
	return &goamqp.Message{
		Header:                &goamqp.MessageHeader{Durable: true},
		Properties:            props,
		Annotations:           ann,
		ApplicationProperties: app,
		Data:                  [][]byte{m.Body},
	}
}
