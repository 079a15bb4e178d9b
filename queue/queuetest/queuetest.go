package queuetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// Harness tells [Run] how to build the store under test.
type Harness struct {
	// Open opens the store kept in dir, an empty directory the first time.
	// The store must take every time from now. Open reports its own
	// failures with t.Fatal. Run closes every store it opens.
	Open func(t *testing.T, dir string, now func() time.Time) queue.DurableQueue
	// Persistent makes Run close the store and Open dir again to check that
	// what was committed survived. False (queue/memory) skips those checks.
	Persistent bool
	// Patience is how long Run waits for background work (retention,
	// expiry) and for goroutines to end after Close. Zero means 10 seconds.
	Patience time.Duration
}

// Sweeper is implemented by stores that can do their background work
// (expire device-queue messages, trim streams by retention) on demand. Run
// calls Sweep, when the store has it, instead of waiting for the
// background work to happen.
type Sweeper interface {
	Sweep(ctx context.Context) error
}

// Clock is a clock for tests that moves only when told. Its methods are
// safe for concurrent use. Pass its Now method to a store.
type Clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// epoch is where every test's clock starts: whole milliseconds, so that a
// store keeping times at millisecond precision keeps them exactly.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the conformance suite against the store h opens.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("queuetest: Harness.Open is nil")
	}
	if h.Patience <= 0 {
		h.Patience = 10 * time.Second
	}
	t.Run("Streams", func(t *testing.T) { testStreams(t, h) })
	t.Run("DeviceQueues", func(t *testing.T) { testDeviceQueues(t, h) })
	t.Run("KV", func(t *testing.T) { testKV(t, h) })
	t.Run("Limits", func(t *testing.T) { testLimits(t, h) })
	if hasAsyncAppender(t, h) {
		t.Run("AsyncAppender", func(t *testing.T) { testAsyncAppender(t, h) })
	}
	if hasBatchCompleter(t, h) {
		t.Run("BatchCompleter", func(t *testing.T) { testBatchCompleter(t, h) })
	}
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, h) })
}

// A test case of the suite: a rule and the function that checks it.
type rule struct {
	name string
	run  func(t *testing.T, e *env)
	// persistent marks rules that reopen the store; they run only when
	// Harness.Persistent is set.
	persistent bool
}

// runRules runs each rule on a fresh store.
func runRules(t *testing.T, h Harness, rules []rule) {
	for _, r := range rules {
		if r.persistent && !h.Persistent {
			continue
		}
		t.Run(r.name, func(t *testing.T) { r.run(t, newEnv(t, h)) })
	}
}

// env is one test's store, its directory and its clock.
type env struct {
	h     Harness
	dir   string
	clock *Clock
	q     queue.DurableQueue
	ctx   context.Context
}

func newEnv(t *testing.T, h Harness) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*h.Patience)
	t.Cleanup(cancel)
	e := &env{h: h, dir: t.TempDir(), clock: NewClock(epoch), ctx: ctx}
	e.q = e.open(t)
	return e
}

func (e *env) open(t *testing.T) queue.DurableQueue {
	t.Helper()
	q := e.h.Open(t, e.dir, e.clock.Now)
	if q == nil {
		t.Fatal("queuetest: Harness.Open returned nil")
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// reopen closes the store and opens its directory again.
func (e *env) reopen(t *testing.T) {
	t.Helper()
	if err := e.q.Close(); err != nil {
		t.Fatalf("Close before reopening: %v", err)
	}
	e.q = e.open(t)
}

// sweep has the store do its background work now, when it can.
func (e *env) sweep(t *testing.T) {
	t.Helper()
	if s, ok := e.q.(Sweeper); ok {
		if err := s.Sweep(e.ctx); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
	}
}

// eventually calls cond, sweeping before each call, until it returns ""
// or the harness runs out of patience; then it fails with cond's last answer.
func (e *env) eventually(t *testing.T, cond func() string) {
	t.Helper()
	poll(t, e.h.Patience, func() string {
		e.sweep(t)
		return cond()
	})
}

// poll calls cond until it returns "" or patience runs out; then it fails
// with cond's last answer. It polls a condition with a deadline, as nats'
// checkFor does, rather than sleep for an effect.
func poll(t *testing.T, patience time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", patience, why)
		}
		<-time.After(wait)
	}
}

// result is the outcome of a call run in the background.
type result[T any] struct {
	v   T
	err error
}

// goCall runs f in a goroutine and returns a channel with its result.
func goCall[T any](f func() (T, error)) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		v, err := f()
		ch <- result[T]{v, err}
	}()
	return ch
}

// await returns the result of a call started by goCall, failing the test
// when it takes longer than the harness's patience.
func await[T any](t *testing.T, e *env, ch <-chan result[T], what string) result[T] {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(e.h.Patience):
		t.Fatalf("%s: still blocked after %v", what, e.h.Patience)
		return result[T]{}
	}
}

// waiting checks that the call started by goCall that ch belongs to waits
// inside the store: it fails if the call returns, and returns once n
// goroutines running a function whose name contains fn (the test's closure
// given to goCall) are blocked. A test that acts on a waiting call (appends,
// cancels, closes) thus knows the call was waiting, and did not pass only
// because it started late. The goroutines' states come from runtime.Stack.
func waiting[T any](t *testing.T, e *env, ch <-chan result[T], fn string, n int, what string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	poll(t, e.h.Patience, func() string {
		select {
		case r := <-ch:
			t.Fatalf("%s returned (%v, %v); it should wait", what, r.v, r.err)
		default:
		}
		for {
			m := runtime.Stack(buf, true)
			if m < len(buf) {
				got := 0
				for _, g := range strings.Split(string(buf[:m]), "\n\n") {
					header, _, _ := strings.Cut(g, "\n")
					if strings.Contains(g, fn) && !strings.Contains(header, "[running") &&
						!strings.Contains(header, "[runnable") && !strings.Contains(header, "[syscall") {
						got++
					}
				}
				if got < n {
					return fmt.Sprintf("%s: %d of %d goroutines running %s are waiting", what, got, n, fn)
				}
				return ""
			}
			buf = make([]byte, 2*len(buf))
		}
	})
}

// sameTime reports whether a and b are within a millisecond: stores may
// keep times at millisecond precision.
func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d < time.Millisecond && d > -time.Millisecond
}

// isClosed checks that err reports a closed store.
func isClosed(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, hubkit.ErrClosed) {
		t.Errorf("%s after Close: got %v, want an error wrapping hubkit.ErrClosed", what, err)
	}
}
