package endpointtest_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
	"github.com/hubkit/hubkit/endpoint/endpointtest"
)

// memSink stands for a user's sink: it keeps what it is sent and can be
// made to fail.
type memSink struct {
	mu      sync.Mutex // guards the fields below
	got     []*hubkit.Message
	failing bool
}

func (s *memSink) send(ctx context.Context, batch []*hubkit.Message) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return 0, errors.New("sink unreachable")
	}
	for _, m := range batch {
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

// SetStalled is never called: the harness sets CannotStall.
func (s *memSink) SetStalled(*testing.T, bool) {}

// An endpoint runs the suite from a test of its own; the harness builds
// the endpoint and the sink the suite watches. This sink cannot stall, so
// the checks of a Send blocked in the sink are skipped. Run needs the
// *testing.T that go test gives a test function, so this example is
// compiled but not run: the body of testConformance is what goes in the
// endpoint's func TestConformance(t *testing.T).
func ExampleRun() {
	testConformance := func(t *testing.T) {
		endpointtest.Run(t, endpointtest.Harness{
			New: func(t *testing.T) (endpoint.Endpoint, endpointtest.Sink) {
				s := &memSink{}
				return endpoint.Func("mem", s.send), s
			},
			CannotStall: true,
		})
	}
	_ = testConformance
}
