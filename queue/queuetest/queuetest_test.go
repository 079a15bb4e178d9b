package queuetest_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
	"github.com/hubkit/hubkit/queue/queuetest"
)

// TestPersistentRules runs the suite with Persistent set, on a store whose
// state outlives Close: a memory.Store per directory, seen through a handle
// that Close ends. It checks that the rules about reopening hold for a
// store that keeps everything, so that a failure on a real store points
// at the store, not at the suite.
func TestPersistentRules(t *testing.T) {
	var mu sync.Mutex
	disks := map[string]*memory.Store{}
	queuetest.Run(t, queuetest.Harness{
		Persistent: true,
		Open: func(t *testing.T, dir string, now func() time.Time) queue.DurableQueue {
			mu.Lock()
			defer mu.Unlock()
			s := disks[dir]
			if s == nil {
				s = memory.New(memory.Options{Now: now, SweepInterval: -1})
				disks[dir] = s
				t.Cleanup(func() { s.Close() })
			}
			ctx, cancel := context.WithCancel(context.Background())
			return &handle{Store: s, ctx: ctx, cancel: cancel}
		},
	})
}

// handle is one opening of a store kept across Close: its Close ends the
// handle, not the store.
type handle struct {
	*memory.Store
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	closed atomic.Bool

	mu       sync.Mutex
	volatile map[[2]string]bool // queue and token of each volatile lock taken
}

// Close ends the handle and, as a reopen does, releases the volatile locks
// it took.
func (h *handle) Close() error {
	if h.closed.Swap(true) {
		return nil
	}
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.volatile {
		_ = h.Store.Release(context.Background(), k[0], k[1]) // ErrLockLost when settled since
	}
	return nil
}

// do runs f with a context that also ends when the handle closes, and
// reports hubkit.ErrClosed once it has.
func do[T any](h *handle, ctx context.Context, f func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if h.closed.Load() {
		return zero, hubkit.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.ctx, cancel)()
	v, err := f(ctx)
	if err != nil && h.closed.Load() {
		return zero, hubkit.ErrClosed
	}
	return v, err
}

func do0(h *handle, ctx context.Context, f func(ctx context.Context) error) error {
	_, err := do(h, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

func (h *handle) Append(ctx context.Context, es []queue.Entry) ([]queue.Position, error) {
	return do(h, ctx, func(ctx context.Context) ([]queue.Position, error) { return h.Store.Append(ctx, es) })
}

func (h *handle) AppendAsync(ctx context.Context, es []queue.Entry, done func([]queue.Position, error)) {
	done(h.Append(ctx, es))
}

func (h *handle) Read(ctx context.Context, s string, p int, from uint64, max int, dst []queue.Record) ([]queue.Record, error) {
	return do(h, ctx, func(ctx context.Context) ([]queue.Record, error) { return h.Store.Read(ctx, s, p, from, max, dst) })
}

func (h *handle) Bounds(ctx context.Context, s string, p int) (uint64, uint64, error) {
	var first uint64
	next, err := do(h, ctx, func(ctx context.Context) (uint64, error) {
		f, n, err := h.Store.Bounds(ctx, s, p)
		first = f
		return n, err
	})
	return first, next, err
}

func (h *handle) SeekTime(ctx context.Context, s string, p int, at time.Time) (uint64, error) {
	return do(h, ctx, func(ctx context.Context) (uint64, error) { return h.Store.SeekTime(ctx, s, p, at) })
}

func (h *handle) Commit(ctx context.Context, c, s string, p int, next uint64) error {
	return do0(h, ctx, func(ctx context.Context) error { return h.Store.Commit(ctx, c, s, p, next) })
}

func (h *handle) Cursor(ctx context.Context, c, s string, p int) (uint64, error) {
	return do(h, ctx, func(ctx context.Context) (uint64, error) { return h.Store.Cursor(ctx, c, s, p) })
}

func (h *handle) SetRetention(s string, r queue.Retention) error {
	return do0(h, context.Background(), func(context.Context) error { return h.Store.SetRetention(s, r) })
}

func (h *handle) Enqueue(ctx context.Context, q string, m *hubkit.Message, o queue.EnqueueOptions) (uint64, error) {
	return do(h, ctx, func(ctx context.Context) (uint64, error) { return h.Store.Enqueue(ctx, q, m, o) })
}

func (h *handle) Receive(ctx context.Context, q string, o queue.ReceiveOptions) (queue.Delivery, error) {
	d, err := do(h, ctx, func(ctx context.Context) (queue.Delivery, error) { return h.Store.Receive(ctx, q, o) })
	if err == nil && o.Volatile {
		h.mu.Lock()
		if h.volatile == nil {
			h.volatile = map[[2]string]bool{}
		}
		h.volatile[[2]string{q, d.LockToken}] = true
		h.mu.Unlock()
	}
	return d, err
}

func (h *handle) Complete(ctx context.Context, q, tok string) error {
	return do0(h, ctx, func(ctx context.Context) error { return h.Store.Complete(ctx, q, tok) })
}

func (h *handle) Reject(ctx context.Context, q, tok string) error {
	return do0(h, ctx, func(ctx context.Context) error { return h.Store.Reject(ctx, q, tok) })
}

func (h *handle) Abandon(ctx context.Context, q, tok string) (bool, error) {
	return do(h, ctx, func(ctx context.Context) (bool, error) { return h.Store.Abandon(ctx, q, tok) })
}

func (h *handle) CompleteBatch(ctx context.Context, q string, toks []string) []error {
	errs := make([]error, len(toks))
	if h.closed.Load() {
		for i := range errs {
			errs[i] = hubkit.ErrClosed
		}
		return errs
	}
	return h.Store.CompleteBatch(ctx, q, toks)
}

func (h *handle) Release(ctx context.Context, q, tok string) error {
	return do0(h, ctx, func(ctx context.Context) error { return h.Store.Release(ctx, q, tok) })
}

func (h *handle) Purge(ctx context.Context, q string) (int, error) {
	return do(h, ctx, func(ctx context.Context) (int, error) { return h.Store.Purge(ctx, q) })
}

func (h *handle) Len(ctx context.Context, q string) (int, error) {
	return do(h, ctx, func(ctx context.Context) (int, error) { return h.Store.Len(ctx, q) })
}

func (h *handle) Peek(ctx context.Context, q string, max int) ([]hubkit.Message, error) {
	return do(h, ctx, func(ctx context.Context) ([]hubkit.Message, error) { return h.Store.Peek(ctx, q, max) })
}

func (h *handle) Expire(ctx context.Context) (int, error) {
	return do(h, ctx, h.Store.Expire)
}

func (h *handle) Sweep(ctx context.Context) error {
	return do0(h, ctx, h.Store.Sweep)
}

func (h *handle) Outcomes(ctx context.Context, from uint64, max int) ([]queue.Outcome, error) {
	return do(h, ctx, func(ctx context.Context) ([]queue.Outcome, error) { return h.Store.Outcomes(ctx, from, max) })
}

func (h *handle) CommitOutcomes(ctx context.Context, next uint64) error {
	return do0(h, ctx, func(ctx context.Context) error { return h.Store.CommitOutcomes(ctx, next) })
}

func (h *handle) OutcomesCursor(ctx context.Context) (uint64, error) {
	return do(h, ctx, h.Store.OutcomesCursor)
}

func (h *handle) Get(ctx context.Context, k string) ([]byte, error) {
	return do(h, ctx, func(ctx context.Context) ([]byte, error) { return h.Store.Get(ctx, k) })
}

func (h *handle) Write(ctx context.Context, ops ...queue.KVOp) error {
	return do0(h, ctx, func(ctx context.Context) error { return h.Store.Write(ctx, ops...) })
}

func (h *handle) List(ctx context.Context, prefix, after string, limit int) ([]queue.KVPair, error) {
	return do(h, ctx, func(ctx context.Context) ([]queue.KVPair, error) { return h.Store.List(ctx, prefix, after, limit) })
}
