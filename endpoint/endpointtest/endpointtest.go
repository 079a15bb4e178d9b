package endpointtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint"
)

// Harness tells Run how to build the endpoint under test and watch its sink.
type Harness struct {
	// New returns a new endpoint and the sink it writes to. Run closes the
	// endpoint; New registers the cleanup of everything else with t.
	New func(t *testing.T) (endpoint.Endpoint, Sink)
	// TooLarge returns a message the endpoint must refuse with a
	// non-retryable error wrapping hubkit.ErrMessageTooLarge. Nil means the
	// endpoint has no size limit of its own; Run then checks that a 1 MiB
	// message is delivered.
	TooLarge func() *hubkit.Message
	// Timeout bounds each wait of the suite. Zero means 20 s.
	Timeout time.Duration
	// CannotStall says that the sink cannot hold a send (files on a local
	// disk): Run then skips, with a message naming this field, the checks
	// that need a Send blocked in the sink (ContextTimeoutWhileStalled and
	// CloseDuringSend). Otherwise the Sink must be a [HoldingSink].
	CannotStall bool
}

// A Sink is the far side of an endpoint under test. Its methods are called
// from the test goroutine.
type Sink interface {
	// Received returns every message the sink holds so far, in the order it
	// received them, duplicates included. Messages must keep their body,
	// message id and application properties.
	Received(t *testing.T) []*hubkit.Message
	// SetFailing makes the sink refuse or be unreachable while on is true,
	// so that sends fail with a retryable error.
	SetFailing(t *testing.T, on bool)
	// SetStalled makes the sink stop answering, without failing, while on
	// is true, so that a send blocks until its ctx ends or the endpoint
	// closes. Run calls it only when Harness.CannotStall is false.
	SetStalled(t *testing.T, on bool)
}

// A HoldingSink is a Sink that can tell when a send reached it while
// stalled. Run closes the endpoint only once the sink holds a send, so
// that CloseDuringSend checks a Send that is really in progress.
type HoldingSink interface {
	Sink
	// Holding reports whether the stalled sink has received something of
	// a send (a request, a transfer, a call) that it has not answered.
	Holding(t *testing.T) bool
}

// Run runs the conformance suite against the harness.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Timeout == 0 {
		h.Timeout = 20 * time.Second
	}
	s := &suite{h: h, run: rand.Uint64()}
	t.Run("OrderAcrossBatches", s.order)
	t.Run("AtLeastOnceUnderFailures", s.atLeastOnce)
	t.Run("Oversized", s.oversized)
	t.Run("ContextCancel", s.ctxCancel)
	t.Run("ContextTimeoutWhileStalled", s.ctxTimeout)
	t.Run("CloseDuringSend", s.closeDuringSend)
	t.Run("CloseIdempotent", s.closeIdempotent)
}

type suite struct {
	h Harness
	// run is a random number in every message id of this Run, so that two
	// Runs against one sink (a broker queue shared by tests, -count=2) never
	// see each other's messages as their own.
	run uint64
}

func (s *suite) open(t *testing.T) (endpoint.Endpoint, Sink) {
	t.Helper()
	ep, sink := s.h.New(t)
	if ep == nil || sink == nil {
		t.Fatal("Harness.New returned a nil endpoint or sink")
	}
	t.Cleanup(func() { ep.Close() })
	return ep, sink
}

// messages returns n messages with ids unique to the test.
func (s *suite) messages(t *testing.T, n, bodySize int) []*hubkit.Message {
	prefix := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	msgs := make([]*hubkit.Message, n)
	for i := range msgs {
		id := fmt.Sprintf("%s.%x.%d", prefix, s.run, i)
		body := []byte(fmt.Sprintf(`{"n":%d}`, i))
		if bodySize > len(body) {
			body = append(body, bytes.Repeat([]byte{' '}, bodySize-len(body))...)
		}
		msgs[i] = &hubkit.Message{
			Body: body,
			System: hubkit.SystemProperties{
				MessageID: id, ContentType: "application/json", ContentEncoding: "utf-8",
				ConnectionDeviceID: "dev-1", EnqueuedTime: time.Date(2026, 1, 2, 3, 4, 5, 6000000, time.UTC),
			},
			Properties: hubkit.Properties{{Name: "n", Value: fmt.Sprint(i)}, {Name: "test", Value: prefix}},
		}
	}
	return msgs
}

// deliver sends msgs like the delivery engine: the rest again after a
// partial accept, the next one after a non-retryable error (which must be
// for a message in skip).
func (s *suite) deliver(t *testing.T, ep endpoint.Endpoint, msgs []*hubkit.Message, onError func(error)) {
	t.Helper()
	deadline := time.Now().Add(s.h.Timeout)
	for rest := msgs; len(rest) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("delivering: %d of %d messages still not accepted after %v", len(rest), len(msgs), s.h.Timeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		n, err := ep.Send(ctx, rest)
		cancel()
		if n < 0 || n > len(rest) {
			t.Fatalf("rule broken: Send accepted %d of a batch of %d", n, len(rest))
		}
		rest = rest[n:]
		if err == nil {
			continue
		}
		var se *endpoint.SendError
		if !errors.As(err, &se) {
			t.Fatalf("rule broken: Send error %v (%T) is no *endpoint.SendError", err, err)
		}
		if onError == nil {
			t.Fatalf("Send: %v", err)
		}
		onError(err)
		if !se.Retryable {
			rest = rest[1:]
		}
	}
}

// waitReceived polls the sink until it holds every message of want and
// checks at-least-once ordered delivery: after the first copy of a message,
// the ones after it in want follow in order.
func (s *suite) waitReceived(t *testing.T, sink Sink, want []*hubkit.Message) []*hubkit.Message {
	t.Helper()
	ids := map[string]int{}
	for i, m := range want {
		ids[m.System.MessageID] = i
	}
	deadline := time.Now().Add(s.h.Timeout)
	for {
		var got []*hubkit.Message
		for _, m := range sink.Received(t) {
			if _, ok := ids[m.System.MessageID]; ok {
				got = append(got, m)
			}
		}
		first := map[string]*hubkit.Message{}
		for _, m := range got {
			if _, ok := first[m.System.MessageID]; !ok {
				first[m.System.MessageID] = m
			}
		}
		if len(first) == len(want) {
			checkOrder(t, got, ids)
			for _, w := range want {
				g := first[w.System.MessageID]
				if !bytes.Equal(bytes.TrimSpace(g.Body), bytes.TrimSpace(w.Body)) {
					t.Fatalf("rule broken: message %s arrived with body %q, sent %q", w.System.MessageID, g.Body, w.Body)
				}
				for _, p := range w.Properties {
					if v, _ := g.Properties.Get(p.Name); v != p.Value {
						t.Fatalf("rule broken: message %s arrived with property %s=%q, sent %q", w.System.MessageID, p.Name, v, p.Value)
					}
				}
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("rule broken (at-least-once): sink holds %d of %d messages after %v", len(first), len(want), s.h.Timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling the sink, not waiting for time to pass
	}
}

// checkOrder checks the IoT Hub ordering rule: a redelivery starts again
// from an earlier message and goes on in order, so each message follows
// its predecessor or restarts at one already seen.
func checkOrder(t *testing.T, got []*hubkit.Message, ids map[string]int) {
	t.Helper()
	next := 0 // index in want of the first message not yet seen
	prev := -1
	for _, m := range got {
		i := ids[m.System.MessageID]
		switch {
		case i == prev+1 && i <= next:
			if i == next {
				next++
			}
		case i < next && i <= prev: // a redelivery restarting at a seen message
		default:
			t.Fatalf("rule broken (order): message %d arrived after %d with only %d seen before", i, prev, next)
		}
		prev = i
	}
}

func (s *suite) order(t *testing.T) {
	ep, sink := s.open(t)
	msgs := s.messages(t, 300, 1024)
	for _, b := range [][]*hubkit.Message{msgs[:1], msgs[1:50], msgs[50:]} {
		s.deliver(t, ep, b, nil)
	}
	if got := s.waitReceived(t, sink, msgs); len(got) != len(msgs) {
		t.Errorf("sink holds %d copies of %d messages sent without failures", len(got), len(msgs))
	}
}

func (s *suite) atLeastOnce(t *testing.T) {
	ep, sink := s.open(t)
	msgs := s.messages(t, 60, 64)
	failures := 0
	for i := 0; i < len(msgs); i += 10 {
		failing := i%20 == 0
		sink.SetFailing(t, failing)
		s.deliver(t, ep, msgs[i:i+10], func(err error) {
			if !endpoint.IsRetryable(err) {
				t.Fatalf("rule broken: a failing sink gave a non-retryable error: %v", err)
			}
			failures++
			sink.SetFailing(t, false)
		})
	}
	sink.SetFailing(t, false)
	if failures == 0 {
		t.Error("no Send failed while the sink was failing")
	}
	s.waitReceived(t, sink, msgs)
}

func (s *suite) oversized(t *testing.T) {
	ep, sink := s.open(t)
	msgs := s.messages(t, 3, 0)
	if s.h.TooLarge == nil {
		msgs[1].Body = append(msgs[1].Body, bytes.Repeat([]byte{' '}, 1<<20)...)
		s.deliver(t, ep, msgs, nil)
		s.waitReceived(t, sink, msgs)
		return
	}
	big := s.h.TooLarge()
	big.System.MessageID = msgs[1].System.MessageID + ".big"
	batch := []*hubkit.Message{msgs[0], big, msgs[2]}
	var refused []error
	s.deliver(t, ep, batch, func(err error) { refused = append(refused, err) })
	if len(refused) != 1 || endpoint.IsRetryable(refused[0]) || !errors.Is(refused[0], hubkit.ErrMessageTooLarge) {
		t.Fatalf("rule broken: want one non-retryable error wrapping ErrMessageTooLarge, got %v", refused)
	}
	s.waitReceived(t, sink, []*hubkit.Message{msgs[0], msgs[2]})
	for _, m := range sink.Received(t) {
		if m.System.MessageID == big.System.MessageID {
			t.Fatal("rule broken: the refused message reached the sink")
		}
	}
}

func (s *suite) ctxCancel(t *testing.T) {
	ep, sink := s.open(t)
	msgs := s.messages(t, 5, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := ep.Send(ctx, msgs)
	if !errors.Is(err, context.Canceled) || !endpoint.IsRetryable(err) {
		t.Fatalf("rule broken: Send with a cancelled ctx returned %d, %v; want a retryable error matching context.Canceled", n, err)
	}
	s.deliver(t, ep, msgs, nil)
	s.waitReceived(t, sink, msgs)
}

// stallable returns the sink as a HoldingSink, or skips the test when the
// harness says its sink cannot stall.
func (s *suite) stallable(t *testing.T, sink Sink) HoldingSink {
	t.Helper()
	if s.h.CannotStall {
		t.Skip("Harness.CannotStall: the sink cannot hold a send, so this rule cannot be checked")
	}
	hs, ok := sink.(HoldingSink)
	if !ok {
		t.Fatalf("the Sink (%T) is no endpointtest.HoldingSink: implement Holding, or set Harness.CannotStall", sink)
	}
	return hs
}

func (s *suite) ctxTimeout(t *testing.T) {
	ep, sink := s.open(t)
	hs := s.stallable(t, sink)
	msgs := s.messages(t, 5, 0)
	hs.SetStalled(t, true)
	t.Cleanup(func() { hs.SetStalled(t, false) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if n, err := ep.Send(ctx, msgs); n != 0 || !errors.Is(err, context.DeadlineExceeded) || !endpoint.IsRetryable(err) {
		t.Fatalf("rule broken: Send to a stalled sink whose ctx timed out returned %d, %v; want 0 and a retryable error matching context.DeadlineExceeded", n, err)
	}
	if d := time.Since(start); d > s.h.Timeout {
		t.Fatalf("rule broken: Send took %v past its ctx deadline", d)
	}
	hs.SetStalled(t, false)
	s.deliver(t, ep, msgs, nil)
	s.waitReceived(t, sink, msgs)
}

func (s *suite) closeDuringSend(t *testing.T) {
	ep, sink := s.open(t)
	hs := s.stallable(t, sink)
	msgs := s.messages(t, 5, 0)
	hs.SetStalled(t, true)
	t.Cleanup(func() { hs.SetStalled(t, false) })
	done := make(chan error, 1)
	go func() {
		_, err := ep.Send(context.Background(), msgs)
		done <- err
	}()
	// Close only once the Send is blocked in the sink.
	deadline := time.Now().Add(s.h.Timeout)
	for !hs.Holding(t) {
		select {
		case err := <-done:
			t.Fatalf("rule broken: Send to a stalled sink returned %v before Close", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled sink held no send within %v", s.h.Timeout)
		}
		time.Sleep(time.Millisecond) // polling the sink, not waiting for time to pass
	}
	closed := make(chan error, 1)
	go func() { closed <- ep.Close() }()
	timer := time.NewTimer(s.h.Timeout)
	defer timer.Stop()
	for range 2 {
		select {
		case err := <-done:
			if err != nil && !endpoint.IsRetryable(err) {
				t.Errorf("rule broken: Send cut by Close returned a non-retryable error: %v", err)
			}
			done = nil
		case err := <-closed:
			if err != nil {
				t.Errorf("Close: %v", err)
			}
			closed = nil
		case <-timer.C:
			t.Fatalf("rule broken: Close during a Send did not end both within %v", s.h.Timeout)
		}
	}
	if _, err := ep.Send(context.Background(), msgs); !errors.Is(err, hubkit.ErrClosed) {
		t.Fatalf("rule broken: Send after Close returned %v, want hubkit.ErrClosed", err)
	}
}

func (s *suite) closeIdempotent(t *testing.T) {
	ep, _ := s.open(t)
	for i := range 2 {
		if err := ep.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := ep.Send(context.Background(), s.messages(t, 1, 0)); !errors.Is(err, hubkit.ErrClosed) {
		t.Fatalf("rule broken: Send after Close returned %v, want hubkit.ErrClosed", err)
	}
}
