package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/internal/closing"
	"github.com/hubkit/hubkit/endpoint/internal/record"
)

// Options configure a webhook [Endpoint].
type Options struct {
	// Name names the endpoint in errors. Empty means "webhook".
	Name string
	// URL is where messages are POSTed, http or https. Required.
	URL string
	// Header is added to every request, e.g. Authorization. Nil means none.
	Header http.Header
	// Client sends the requests. Nil means a new http.Client without a
	// timeout: the delivery engine bounds each send with its context.
	Client *http.Client
	// Batch sends a JSON array of records per request instead of one
	// record per request.
	Batch bool
	// MaxRequestBytes caps the body of a batch request; the messages that
	// do not fit go in the next request. Zero means 1 MiB.
	MaxRequestBytes int
	// MaxMessageSize refuses messages larger than this (as
	// hubkit.Message.Size counts) without sending them. Zero means
	// hubkit.MaxD2CSize (256 KiB).
	MaxMessageSize int
}

// Endpoint POSTs messages to a URL. It is safe for concurrent use.
type Endpoint struct {
	opts Options
	life *closing.State
}

var _ endpoint.Endpoint = (*Endpoint)(nil)

// New checks opts and returns an Endpoint. It sends nothing until Send.
func New(opts Options) (*Endpoint, error) {
	if opts.Name == "" {
		opts.Name = "webhook"
	}
	u, err := url.Parse(opts.URL)
	switch {
	case err != nil:
		return nil, errors.New("webhook: invalid options: URL cannot be parsed") // its text may hold a password
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("webhook: invalid options: URL %q is not an http or https URL", u.Redacted())
	}
	if opts.MaxRequestBytes < 0 || opts.MaxMessageSize < 0 {
		return nil, errors.New("webhook: invalid options: negative size limit")
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.MaxRequestBytes == 0 {
		opts.MaxRequestBytes = 1 << 20
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = hubkit.MaxD2CSize
	}
	return &Endpoint{opts: opts, life: closing.New()}, nil
}

// Send POSTs batch, one request per message or, with Batch, as few
// requests as MaxRequestBytes allows, and stops at the first failure. See
// [endpoint.Endpoint].
func (e *Endpoint) Send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	ctx, cancel, err := e.life.Bind(ctx)
	if err != nil {
		return 0, endpoint.Retry(e.opts.Name, err)
	}
	defer cancel()
	sent := 0
	for sent < len(batch) {
		if err := ctx.Err(); err != nil {
			return sent, endpoint.Retry(e.opts.Name, e.life.Cause(ctx))
		}
		body, n, err := e.encode(batch[sent:])
		if err != nil {
			return sent, err
		}
		status, err := e.post(ctx, body)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				err = fmt.Errorf("webhook: %w", e.life.Cause(ctx))
			}
			return sent, endpoint.Retry(e.opts.Name, err)
		case status >= 200 && status < 300:
			sent += n
		case status == http.StatusTooManyRequests || status >= 500:
			return sent, endpoint.Retry(e.opts.Name, fmt.Errorf("webhook: server answered %d", status))
		case n > 1:
			// A refusal of several messages: find the bad one by sending
			// them one at a time.
			k, err := e.sendEach(ctx, batch[sent:sent+n])
			sent += k
			if err != nil {
				return sent, err
			}
		case status == http.StatusRequestEntityTooLarge:
			return sent, endpoint.Skip(e.opts.Name, fmt.Errorf("webhook: server answered %d: %w", status, hubkit.ErrMessageTooLarge))
		default:
			return sent, endpoint.Skip(e.opts.Name, fmt.Errorf("webhook: server refused the message with %d", status))
		}
	}
	return sent, nil
}

func (e *Endpoint) sendEach(ctx context.Context, msgs []*hubkit.Message) (int, error) {
	one := *e
	one.opts.Batch = false
	return one.Send(ctx, msgs)
}

// encode returns the body of the next request and how many messages of
// msgs it carries. A first message larger than MaxMessageSize gives a
// non-retryable error.
func (e *Endpoint) encode(msgs []*hubkit.Message) ([]byte, int, error) {
	var buf bytes.Buffer
	n := 0
	for _, m := range msgs {
		if size := m.Size(); size > e.opts.MaxMessageSize {
			if n > 0 {
				break
			}
			return nil, 0, endpoint.Skip(e.opts.Name, fmt.Errorf("webhook: message of %d bytes, the limit is %d: %w", size, e.opts.MaxMessageSize, hubkit.ErrMessageTooLarge))
		}
		b, err := record.Marshal(m)
		if err != nil {
			return nil, 0, endpoint.Skip(e.opts.Name, err)
		}
		if !e.opts.Batch {
			return b, 1, nil
		}
		if n > 0 && buf.Len()+len(b)+2 > e.opts.MaxRequestBytes {
			break
		}
		if n == 0 {
			buf.WriteByte('[')
		} else {
			buf.WriteByte(',')
		}
		buf.Write(b)
		n++
	}
	buf.WriteByte(']')
	return buf.Bytes(), n, nil
}

func (e *Endpoint) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.opts.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	for k, vs := range e.opts.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.opts.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	// Drain a little so that the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Close cancels the requests in progress and makes later sends return
// hubkit.ErrClosed. It is idempotent.
func (e *Endpoint) Close() error {
	if e.life.Close() {
		e.opts.Client.CloseIdleConnections()
	}
	return nil
}
