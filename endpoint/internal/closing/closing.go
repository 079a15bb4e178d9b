package closing

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hubkit/hubkit"
)

// State tracks whether an endpoint is closed. It is safe for concurrent use.
type State struct {
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// New returns an open State.
func New() *State {
	ctx, cancel := context.WithCancel(context.Background())
	return &State{ctx: ctx, cancel: cancel}
}

// Bind returns a context that ends when ctx ends or the State closes, and
// hubkit.ErrClosed when it is already closed. Call cancel when done.
func (s *State) Bind(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.ctx.Err() != nil {
		return nil, nil, fmt.Errorf("endpoint: %w", hubkit.ErrClosed)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }, nil
}

// Cause returns the error to report for a bound ctx that ended: one
// wrapping hubkit.ErrClosed and context.Canceled when the State closed,
// else ctx.Err() itself.
func (s *State) Cause(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("endpoint: %w", errors.Join(hubkit.ErrClosed, context.Canceled))
	}
	return ctx.Err()
}

// Closed reports whether Close was called.
func (s *State) Closed() bool { return s.ctx.Err() != nil }

// Done is closed when the State closes.
func (s *State) Done() <-chan struct{} { return s.ctx.Done() }

// Close closes the State and reports whether this call closed it.
func (s *State) Close() (first bool) {
	s.once.Do(func() { first = true; s.cancel() })
	return first
}
