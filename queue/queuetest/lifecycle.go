package queuetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

func testLifecycle(t *testing.T, h Harness) {
	t.Run("CloseJoinsGoroutines", func(t *testing.T) { testCloseJoins(t, h) })
	runRules(t, h, []rule{
		{name: "CloseEndsWaitingCalls", run: testCloseUnblocks},
		{name: "EveryCallAfterCloseReturnsErrClosed", run: testAfterClose},
		{name: "CloseDuringWritesKeepsWhatItAcknowledged", run: testCloseDuringWrites},
		{name: "ConcurrentAppendsAndReads", run: testConcurrentStreams},
		{name: "ConcurrentEnqueuesAndReceives", run: testConcurrentQueues},
	})
}

func testCloseJoins(t *testing.T, h Harness) {
	const rule = "Close stops every goroutine the store started, and a second Close is harmless"
	before := runtime.NumGoroutine()
	e := newEnv(t, h)
	appendN(t, e, "s", 0, 3)
	enqueue(t, e, "d", "0", journal)
	e.sweep(t)
	if err := e.q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.q.Close(); err != nil && !errors.Is(err, hubkit.ErrClosed) {
		t.Errorf("%s: second Close returned %v, want nil or hubkit.ErrClosed", rule, err)
	}
	poll(t, h.Patience, func() string {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Sprintf("%s: %d goroutines after Close, %d before Open", rule, n, before)
		}
		return ""
	})
}

func testCloseUnblocks(t *testing.T, e *env) {
	const rule = "Close ends calls waiting in Read, Receive and Outcomes with hubkit.ErrClosed"
	read := goCall(func() ([]queue.Record, error) { return e.q.Read(e.ctx, "s", 0, 0, 10, nil) })
	recv := goCall(func() (queue.Delivery, error) { return e.q.Receive(e.ctx, "d", queue.ReceiveOptions{Lock: lock}) })
	outs := goCall(func() ([]queue.Outcome, error) { return e.q.Outcomes(e.ctx, 0, 10) })
	waiting(t, e, read, "testCloseUnblocks.func", 3, "Read on an empty partition")
	waiting(t, e, recv, "testCloseUnblocks.func", 3, "Receive on an empty queue")
	waiting(t, e, outs, "testCloseUnblocks.func", 3, "Outcomes on an empty journal")
	closed := goCall(func() (struct{}, error) { return struct{}{}, e.q.Close() })
	if r := await(t, e, closed, "Close"); r.err != nil {
		t.Errorf("Close: %v", r.err)
	}
	isClosed(t, rule+": Read", await(t, e, read, "Read after Close").err)
	isClosed(t, rule+": Receive", await(t, e, recv, "Receive after Close").err)
	isClosed(t, rule+": Outcomes", await(t, e, outs, "Outcomes after Close").err)
}

func testAfterClose(t *testing.T, e *env) {
	const rule = "every call after Close returns hubkit.ErrClosed"
	appendN(t, e, "s", 0, 1)
	enqueue(t, e, "d", "0", journal)
	d := receive(t, e, "d")
	if err := e.q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := e.ctx
	q := e.q
	calls := []struct {
		name string
		call func() error
	}{
		{"Append", func() error { _, err := q.Append(ctx, []queue.Entry{{Stream: "s", Message: msg("x")}}); return err }},
		{"Read", func() error { _, err := q.Read(ctx, "s", 0, 0, 10, nil); return err }},
		{"Bounds", func() error { _, _, err := q.Bounds(ctx, "s", 0); return err }},
		{"SeekTime", func() error { _, err := q.SeekTime(ctx, "s", 0, e.clock.Now()); return err }},
		{"Commit", func() error { return q.Commit(ctx, "c", "s", 0, 1) }},
		{"Cursor", func() error { _, err := q.Cursor(ctx, "c", "s", 0); return err }},
		{"SetRetention", func() error { return q.SetRetention("s", queue.Retention{MaxAge: time.Hour}) }},
		{"Enqueue", func() error { _, err := q.Enqueue(ctx, "d", msg("x"), queue.EnqueueOptions{}); return err }},
		{"Receive", func() error { _, err := q.Receive(ctx, "d", queue.ReceiveOptions{Lock: lock}); return err }},
		{"Complete", func() error { return q.Complete(ctx, "d", d.LockToken) }},
		{"Reject", func() error { return q.Reject(ctx, "d", d.LockToken) }},
		{"Abandon", func() error { _, err := q.Abandon(ctx, "d", d.LockToken); return err }},
		{"Release", func() error { return q.Release(ctx, "d", d.LockToken) }},
		{"Purge", func() error { _, err := q.Purge(ctx, "d"); return err }},
		{"Len", func() error { _, err := q.Len(ctx, "d"); return err }},
		{"Peek", func() error { _, err := q.Peek(ctx, "d", 1); return err }},
		{"Expire", func() error { _, err := q.Expire(ctx); return err }},
		{"Outcomes", func() error { _, err := q.Outcomes(ctx, 0, 10); return err }},
		{"CommitOutcomes", func() error { return q.CommitOutcomes(ctx, 1) }},
		{"OutcomesCursor", func() error { _, err := q.OutcomesCursor(ctx); return err }},
		{"Get", func() error { _, err := q.Get(ctx, "k"); return err }},
		{"Write", func() error { return q.Write(ctx, put("k", "v")) }},
		{"List", func() error { _, err := q.List(ctx, "", "", 10); return err }},
	}
	if s, ok := q.(Sweeper); ok {
		calls = append(calls, struct {
			name string
			call func() error
		}{"Sweep", func() error { return s.Sweep(ctx) }})
	}
	for _, c := range calls {
		ch := goCall(func() (struct{}, error) { return struct{}{}, c.call() })
		isClosed(t, rule+": "+c.name, await(t, e, ch, c.name+" after Close").err)
	}
}

// acked is what one writer of testCloseDuringWrites was told: how many of
// its calls succeeded, their positions (Append), and how its last call
// ended.
type acked struct {
	n    atomic.Int64
	pos  []queue.Position // written by the writer only; read after it ends
	last error
}

func testCloseDuringWrites(t *testing.T, e *env) {
	const rule = "Close during synchronous Append, Enqueue and Commit calls ends each with nil or hubkit.ErrClosed, never a hang, and what returned nil survives a reopen"
	const each = 2 // writers of each kind
	kinds := []string{"Append", "Enqueue", "Commit"}
	writers := make([]*acked, len(kinds)*each)
	var wg sync.WaitGroup
	for w := range writers {
		a := &acked{}
		writers[w] = a
		kind := kinds[w/each]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var err error
				switch kind {
				case "Append":
					var pos []queue.Position
					pos, err = e.q.Append(e.ctx, []queue.Entry{{Stream: "s", Partition: w, Message: msg(fmt.Sprint(w, "-", i))}})
					if err == nil {
						a.pos = append(a.pos, pos...)
					}
				case "Enqueue":
					_, err = e.q.Enqueue(e.ctx, fmt.Sprint("d", w), msg(fmt.Sprint(w, "-", i)), journal)
				case "Commit":
					err = e.q.Commit(e.ctx, fmt.Sprint("c", w), "s", w, uint64(i+1))
				}
				if err != nil {
					a.last = err
					return
				}
				a.n.Add(1)
			}
		}()
	}
	poll(t, e.h.Patience, func() string {
		for w, a := range writers {
			if a.n.Load() < 3 {
				return fmt.Sprintf("writer %d (%s) has %d calls answered, want 3 before closing", w, kinds[w/each], a.n.Load())
			}
		}
		return ""
	})
	closed := goCall(func() (struct{}, error) { return struct{}{}, e.q.Close() })
	if r := await(t, e, closed, "Close during writes"); r.err != nil {
		t.Errorf("Close: %v", r.err)
	}
	ended := goCall(func() (struct{}, error) { wg.Wait(); return struct{}{}, nil })
	await(t, e, ended, "writers after Close")
	for w, a := range writers {
		if !errors.Is(a.last, hubkit.ErrClosed) {
			t.Errorf("%s: writer %d (%s) ended with %v, want an error wrapping hubkit.ErrClosed", rule, w, kinds[w/each], a.last)
		}
	}
	if !e.h.Persistent {
		return
	}
	e.q = e.open(t)
	for w, a := range writers {
		n := int(a.n.Load())
		switch kinds[w/each] {
		case "Append":
			recs, err := e.q.Read(e.ctx, "s", w, 0, n+1, nil)
			if err != nil || len(recs) < n {
				t.Errorf("%s: partition %d holds %d records (%v) after reopening, want the %d acknowledged", rule, w, len(recs), err, n)
				continue
			}
			for i, p := range a.pos {
				if recs[i].Sequence != p.Sequence || string(recs[i].Message.Body) != fmt.Sprint(w, "-", i) {
					t.Errorf("%s: acknowledged append %d of partition %d at %d is %d %q after reopening", rule, i, w, p.Sequence, recs[i].Sequence, recs[i].Message.Body)
				}
			}
		case "Enqueue":
			msgs, err := e.q.Peek(e.ctx, fmt.Sprint("d", w), n+1)
			if err != nil || len(msgs) < n {
				t.Errorf("%s: queue d%d holds %d messages (%v) after reopening, want the %d acknowledged", rule, w, len(msgs), err, n)
				continue
			}
			for i := range n {
				if got := string(msgs[i].Body); got != fmt.Sprint(w, "-", i) {
					t.Errorf("%s: acknowledged message %d of queue d%d is %q after reopening", rule, i, w, got)
				}
			}
		case "Commit":
			if c, err := e.q.Cursor(e.ctx, fmt.Sprint("c", w), "s", w); err != nil || c < uint64(n) {
				t.Errorf("%s: cursor c%d is %d, %v after reopening, want at least the acknowledged %d", rule, w, c, err, n)
			}
		}
	}
}

func testConcurrentStreams(t *testing.T, e *env) {
	const rule = "concurrent Appends to one partition get distinct, gapless sequence numbers, each writer's in its own order"
	const writers, batches, batch = 4, 25, 2
	total := writers * batches * batch
	readerDone := goCall(func() ([]queue.Record, error) {
		var all []queue.Record
		for len(all) < total {
			recs, err := e.q.Read(e.ctx, "s", 0, uint64(len(all)), 17, nil)
			if err != nil {
				return all, err
			}
			all = append(all, recs...)
		}
		return all, nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				entries := make([]queue.Entry, batch)
				for i := range entries {
					entries[i] = queue.Entry{Stream: "s", Message: msg(fmt.Sprintf("%d/%d", w, b*batch+i))}
				}
				pos, err := e.q.Append(e.ctx, entries)
				if err != nil {
					errs <- err
					return
				}
				if pos[1].Sequence != pos[0].Sequence+1 {
					errs <- fmt.Errorf("one Append got sequences %d and %d, not consecutive", pos[0].Sequence, pos[1].Sequence)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%s: %v", rule, err)
	}
	r := await(t, e, readerDone, "concurrent Read")
	if r.err != nil || len(r.v) != total {
		t.Fatalf("%s: reader got %d records, %v; want %d", rule, len(r.v), r.err, total)
	}
	next := make([]int, writers)
	for i, rec := range r.v {
		var w, n int
		if rec.Sequence != uint64(i) {
			t.Fatalf("%s: record %d has sequence %d", rule, i, rec.Sequence)
		}
		if _, err := fmt.Sscanf(string(rec.Message.Body), "%d/%d", &w, &n); err != nil || w >= writers || n != next[w] {
			t.Fatalf("%s: record %d is %q, want writer %d's message %d next", rule, i, rec.Message.Body, w, next[w])
		}
		next[w]++
	}
}

func testConcurrentQueues(t *testing.T, e *env) {
	const rule = "concurrent receivers each get a message no other receiver holds, and every message once"
	const producers, per, consumers = 3, 30, 3
	total := producers * per
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	errs := make(chan error, producers+consumers)
	var wg sync.WaitGroup
	for range consumers {
		wg.Go(func() {
			for {
				d, err := e.q.Receive(ctx, "d", queue.ReceiveOptions{Lock: time.Hour})
				if errors.Is(err, context.Canceled) {
					return
				}
				if err == nil {
					err = e.q.Complete(e.ctx, "d", d.LockToken)
				}
				if err != nil {
					errs <- err
					cancel()
					return
				}
				mu.Lock()
				seen[string(d.Message.Body)]++
				if len(seen) == total {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	for p := range producers {
		wg.Go(func() {
			for i := range per {
				if _, err := e.q.Enqueue(e.ctx, "d", msg(fmt.Sprintf("%d/%d", p, i)), journal); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%s: %v", rule, err)
	}
	for body, n := range seen {
		if n != 1 {
			t.Errorf("%s: %q was received %d times", rule, body, n)
		}
	}
	if len(seen) != total {
		t.Errorf("%s: received %d distinct messages, want %d", rule, len(seen), total)
	}
	if got := outcomes(t, e, 0, total); len(got) != total {
		t.Errorf("%s: journal holds %d outcomes, want %d", rule, len(got), total)
	}
}
