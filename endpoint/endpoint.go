package endpoint

import (
	"context"
	"errors"
	"fmt"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint/internal/closing"
)

// An Endpoint delivers routed device-to-cloud messages to a sink: a message
// broker, a web service, files, or a Go function.
//
// The hub's [Delivery] calls Send from one goroutine, one call at a time;
// Close may be called from any goroutine, also while a Send is in progress.
type Endpoint interface {
	// Send offers batch to the sink, in order, and returns how many
	// messages the sink durably accepted: batch[:accepted] are accepted, in
	// order; the rest were not, or may have been (a retry can duplicate
	// them: delivery is at-least-once).
	//
	// Send blocks until the sink answered, ctx ended or the endpoint was
	// closed. An accepted count below len(batch) with a nil error means the
	// sink took only part of the batch (for example, its size limit); the
	// caller sends the rest in another call. A non-nil error is a
	// [*SendError] or wraps one. When it is not Retryable it concerns
	// batch[accepted] alone, which the sink can never take (too large,
	// invalid): the caller drops that message and goes on with the next.
	// Any other error means "try again later". A Send whose ctx ends
	// returns an error that errors.Is matches to ctx.Err().
	//
	// The caller owns batch and the messages: Send must not modify them or
	// keep them after it returns. After Close, Send returns an error
	// wrapping [hubkit.ErrClosed].
	Send(ctx context.Context, batch []*hubkit.Message) (accepted int, err error)

	// Close releases the endpoint's resources. It cancels a Send in
	// progress, does not block without bound, and is idempotent.
	Close() error
}

// A SendError reports why an endpoint did not accept a message.
type SendError struct {
	// Endpoint names the endpoint that failed.
	Endpoint string
	// Retryable is false when the message can never be accepted (too
	// large, invalid): the delivery engine drops it and counts the drop.
	// Otherwise the engine sends it again after a backoff.
	Retryable bool
	// Err is the cause.
	Err error
}

// Error returns "endpoint NAME: cause".
func (e *SendError) Error() string {
	return fmt.Sprintf("endpoint %s: %v", e.Endpoint, e.Err)
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// Retry returns a retryable [*SendError] for err, or nil when err is nil.
// An err that already is or wraps a *SendError is returned unchanged.
func Retry(name string, err error) error {
	return wrap(name, err, true)
}

// Skip returns a non-retryable [*SendError] for err: the message can never
// be accepted. It returns nil when err is nil, and an err that already is
// or wraps a *SendError unchanged.
func Skip(name string, err error) error {
	return wrap(name, err, false)
}

func wrap(name string, err error, retryable bool) error {
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) {
		return err
	}
	return &SendError{Endpoint: name, Retryable: retryable, Err: err}
}

// IsRetryable reports whether a Send error means "try again later": every
// error except a *SendError whose Retryable is false.
func IsRetryable(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Retryable
	}
	return err != nil
}

// Middleware wraps an Endpoint to add behaviour such as metrics or
// logging, like func(http.Handler) http.Handler.
type Middleware func(Endpoint) Endpoint

// Chain wraps ep in mws; the first middleware is the outermost.
func Chain(ep Endpoint, mws ...Middleware) Endpoint {
	for i := len(mws) - 1; i >= 0; i-- {
		ep = mws[i](ep)
	}
	return ep
}

// SendFunc is the signature of [Endpoint.Send].
type SendFunc func(ctx context.Context, batch []*hubkit.Message) (accepted int, err error)

// Func returns an Endpoint named name that calls send in-process, for
// sinks written in Go. send follows the contract of [Endpoint.Send]; an
// error it returns that is no *SendError is made a retryable one. The ctx
// send receives ends when the endpoint is closed.
func Func(name string, send SendFunc) Endpoint {
	return &funcEndpoint{name: name, send: send, life: closing.New()}
}

type funcEndpoint struct {
	name string
	send SendFunc
	life *closing.State
}

func (f *funcEndpoint) Send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	ctx, cancel, err := f.life.Bind(ctx)
	if err != nil {
		return 0, Retry(f.name, err)
	}
	defer cancel()
	if err := ctx.Err(); err != nil {
		return 0, Retry(f.name, f.life.Cause(ctx))
	}
	n, err := f.send(ctx, batch)
	n = max(0, min(n, len(batch)))
	if err != nil && ctx.Err() != nil {
		err = f.life.Cause(ctx)
	}
	return n, Retry(f.name, err)
}

func (f *funcEndpoint) Close() error {
	f.life.Close()
	return nil
}
