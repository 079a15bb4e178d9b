package endpoint_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
)

// memSink is an in-process sink for Func endpoints: it keeps what it is
// given and can fail or stall on request.
type memSink struct {
	mu       sync.Mutex // guards the fields below
	got      []*hubkit.Message
	failing  bool
	stalled  chan struct{} // non-nil while stalled; closed to release
	held     int           // calls waiting on stalled
	maxBytes int
}

func (s *memSink) send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	s.mu.Lock()
	stalled := s.stalled
	s.mu.Unlock()
	if stalled != nil {
		s.hold(1)
		defer s.hold(-1)
		select {
		case <-stalled:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return 0, fmt.Errorf("sink is failing")
	}
	for i, m := range batch {
		if s.maxBytes > 0 && m.Size() > s.maxBytes {
			return i, endpoint.Skip("mem", fmt.Errorf("%w: %d bytes", hubkit.ErrMessageTooLarge, m.Size()))
		}
		s.got = append(s.got, m.Clone())
	}
	return len(batch), nil
}

func (s *memSink) Received(*testing.T) []*hubkit.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*hubkit.Message(nil), s.got...)
}

func (s *memSink) SetFailing(_ *testing.T, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = on
}

func (s *memSink) hold(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held += n
}

// Holding reports whether a send waits for the stall to end.
func (s *memSink) Holding(*testing.T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held > 0
}

func (s *memSink) SetStalled(_ *testing.T, on bool) {
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

func TestFuncConformance(t *testing.T) {
	endpointtest.Run(t, endpointtest.Harness{
		New: func(t *testing.T) (endpoint.Endpoint, endpointtest.Sink) {
			s := &memSink{maxBytes: hubkit.MaxD2CSize}
			return endpoint.Func("mem", s.send), s
		},
		TooLarge: func() *hubkit.Message { return &hubkit.Message{Body: make([]byte, hubkit.MaxD2CSize+1)} },
	})
}

func TestFuncWithoutLimit(t *testing.T) {
	endpointtest.Run(t, endpointtest.Harness{
		New: func(t *testing.T) (endpoint.Endpoint, endpointtest.Sink) {
			s := &memSink{}
			return endpoint.Func("mem", s.send), s
		},
	})
}
