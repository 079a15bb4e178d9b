package hubkit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hubkit/hubkit"
)

func TestErrorCodeAndStatus(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		want   *hubkit.Error
		status int
	}{
		{"ArgumentInvalid", hubkit.ErrArgumentInvalid, hubkit.ErrArgumentInvalid, 400},
		{"wrapped", fmt.Errorf("queue: enqueue: %w", hubkit.ErrDeviceMaximumQueueDepthExceeded), hubkit.ErrDeviceMaximumQueueDepthExceeded, 403},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", hubkit.ErrDeviceNotFound)), hubkit.ErrDeviceNotFound, 404},
		{"joined", errors.Join(errors.New("other"), hubkit.ErrPreconditionFailed), hubkit.ErrPreconditionFailed, 412},
		{"lock lost", hubkit.ErrDeviceMessageLockLost, hubkit.ErrDeviceMessageLockLost, 412},
		{"too large", hubkit.ErrMessageTooLarge, hubkit.ErrMessageTooLarge, 413},
		{"throttled", hubkit.ErrThrottling, hubkit.ErrThrottling, 429},
		{"unauthorized", hubkit.ErrUnauthorized, hubkit.ErrUnauthorized, 401},
		{"plain error", errors.New("boom"), hubkit.ErrServerError, 500},
		{"context", context.Canceled, hubkit.ErrServerError, 500},
		{"closed", hubkit.ErrClosed, hubkit.ErrServerError, 500},
		{"nil", nil, hubkit.ErrServerError, 500},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := hubkit.ErrorCode(c.err)
			if got != c.want {
				t.Errorf("ErrorCode = %v, want %v", got, c.want)
			}
			if s := got.HTTPStatus(); s != c.status {
				t.Errorf("HTTPStatus = %d, want %d", s, c.status)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	if got, want := hubkit.ErrMessageTooLarge.Error(), "hubkit: MessageTooLarge (413001)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(fmt.Errorf("x: %w", hubkit.ErrMessageTooLarge), hubkit.ErrMessageTooLarge) {
		t.Error("errors.Is does not see a wrapped *Error")
	}
}
