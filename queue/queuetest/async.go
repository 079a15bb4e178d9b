package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// hasAsyncAppender reports whether the stores h opens implement
// [queue.AsyncAppender]; Run checks that role's rules only then.
func hasAsyncAppender(t *testing.T, h Harness) bool {
	t.Helper()
	e := newEnv(t, h)
	_, ok := e.q.(queue.AsyncAppender)
	if err := e.q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return ok
}

func testAsyncAppender(t *testing.T, h Harness) {
	runRules(t, h, []rule{
		{name: "DoneOnceInCallOrderWithPositions", run: testAsyncOrder},
		{name: "ReadableAndDurableWhenDone", run: testAsyncDurable},
		{name: "EndedContextStoresNothing", run: testAsyncContext},
		{name: "BadEntriesFailInTheirTurn", run: testAsyncBadInput},
		{name: "CloseAnswersEveryCall", run: testAsyncClose},
	})
}

// asyncDone is what one done call reported.
type asyncDone struct {
	pos []queue.Position
	err error
}

// asyncRecorder records done calls in the order they come.
type asyncRecorder struct {
	mu    sync.Mutex // guards the fields below
	order []int      // the call index of each done call, in the order made
	dones map[int]asyncDone
}

func newAsyncRecorder() *asyncRecorder { return &asyncRecorder{dones: map[int]asyncDone{}} }

// done returns the done callback of call i.
func (r *asyncRecorder) done(i int) func([]queue.Position, error) {
	return func(pos []queue.Position, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.order = append(r.order, i)
		r.dones[i] = asyncDone{pos, err}
	}
}

func (r *asyncRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

// wait polls until n done calls came, then checks that they came once
// each, in call order, and returns them by call index.
func (r *asyncRecorder) wait(t *testing.T, e *env, rule string, n int) map[int]asyncDone {
	t.Helper()
	poll(t, e.h.Patience, func() string {
		if c := r.count(); c < n {
			return fmt.Sprintf("%s: %d of %d done calls came", rule, c, n)
		}
		return ""
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != n {
		t.Fatalf("%s: %d done calls for %d AppendAsync calls", rule, len(r.order), n)
	}
	for i, c := range r.order {
		if c != i {
			t.Fatalf("%s: done call %d was for AppendAsync call %d; want call order", rule, i, c)
		}
	}
	return r.dones
}

func asyncOf(t *testing.T, e *env) queue.AsyncAppender {
	t.Helper()
	a, ok := e.q.(queue.AsyncAppender)
	if !ok {
		t.Fatal("the store no longer implements queue.AsyncAppender")
	}
	return a
}

// readN reads n records of the partition from 0 on.
func readN(t *testing.T, e *env, stream string, part, n int) []queue.Record {
	t.Helper()
	var recs []queue.Record
	for len(recs) < n {
		recs = append(recs, read(t, e, stream, part, uint64(len(recs)), n-len(recs))...)
	}
	return recs
}

func testAsyncOrder(t *testing.T, e *env) {
	const rule = "AppendAsync calls from one goroutine are stored and done in call order, each done once with its entries' positions"
	a := asyncOf(t, e)
	rec := newAsyncRecorder()
	const calls = 200
	var bodies [2][]string // per partition, in call order
	sizes := make([]int, calls)
	for i := range calls {
		var entries []queue.Entry
		if i%10 != 9 { // every tenth call is empty
			for j := range 1 + i%3 {
				p := (i + j) % 2
				body := fmt.Sprintf("%d.%d", i, j)
				entries = append(entries, queue.Entry{Stream: "s", Partition: p, Message: msg(body)})
				bodies[p] = append(bodies[p], body)
			}
		}
		sizes[i] = len(entries)
		a.AppendAsync(e.ctx, entries, rec.done(i))
	}
	dones := rec.wait(t, e, rule, calls)
	pos := map[string]queue.Position{}
	for i := range calls {
		d := dones[i]
		if d.err != nil || len(d.pos) != sizes[i] {
			t.Fatalf("%s: call %d: done(%d positions, %v); want %d positions", rule, i, len(d.pos), d.err, sizes[i])
		}
		for j, p := range d.pos {
			pos[fmt.Sprintf("%d.%d", i, j)] = p
		}
	}
	for p, want := range bodies {
		recs := readN(t, e, "s", p, len(want))
		for i, r := range recs {
			if r.Sequence != uint64(i) {
				t.Fatalf("%s: partition %d: record %d has sequence %d", rule, p, i, r.Sequence)
			}
			checkRecord(t, rule, r, pos[want[i]], want[i])
		}
	}
	if n := rec.count(); n != calls {
		t.Errorf("%s: %d done calls for %d AppendAsync calls", rule, n, calls)
	}
}

func testAsyncDurable(t *testing.T, e *env) {
	const rule = "once done reports success the entries are readable, and they survive reopening"
	a := asyncOf(t, e)
	rec := newAsyncRecorder()
	a.AppendAsync(e.ctx, []queue.Entry{{Stream: "s", Partition: 0, Message: msg("a")}, {Stream: "s", Partition: 1, Message: msg("b")}}, rec.done(0))
	d := rec.wait(t, e, rule, 1)[0]
	if d.err != nil || len(d.pos) != 2 {
		t.Fatalf("%s: done(%v, %v); want 2 positions", rule, d.pos, d.err)
	}
	check := func(when string) {
		t.Helper()
		for i, body := range []string{"a", "b"} {
			p := d.pos[i]
			if _, next, err := e.q.Bounds(e.ctx, "s", p.Partition); err != nil || next <= p.Sequence {
				t.Fatalf("%s: %s: Bounds of partition %d = next %d, %v; want past %d", rule, when, p.Partition, next, err, p.Sequence)
			}
			recs := read(t, e, "s", p.Partition, p.Sequence, 1)
			checkRecord(t, rule+": "+when, recs[0], p, body)
		}
	}
	check("after done")
	if e.h.Persistent {
		e.reopen(t)
		check("after reopening")
	}
}

func testAsyncContext(t *testing.T, e *env) {
	const rule = "AppendAsync with an ended context gives done its error and stores nothing"
	a := asyncOf(t, e)
	rec := newAsyncRecorder()
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	a.AppendAsync(ctx, []queue.Entry{{Stream: "s", Message: msg("lost")}}, rec.done(0))
	a.AppendAsync(e.ctx, []queue.Entry{{Stream: "s", Message: msg("kept")}}, rec.done(1))
	dones := rec.wait(t, e, rule, 2)
	if d := dones[0]; !errors.Is(d.err, context.Canceled) || d.pos != nil {
		t.Errorf("%s: done(%v, %v); want no positions and an error wrapping context.Canceled", rule, d.pos, d.err)
	}
	if d := dones[1]; d.err != nil || len(d.pos) != 1 || d.pos[0].Sequence != 0 {
		t.Errorf("%s: the next call's done(%v, %v); want sequence 0", rule, d.pos, d.err)
	}
	checkRecord(t, rule, read(t, e, "s", 0, 0, 10)[0], dones[1].pos[0], "kept")
}

func testAsyncBadInput(t *testing.T, e *env) {
	const rule = "an AppendAsync with a bad entry fails in its turn and stores none of its entries"
	a := asyncOf(t, e)
	rec := newAsyncRecorder()
	a.AppendAsync(e.ctx, []queue.Entry{{Stream: "s", Message: msg("0")}}, rec.done(0))
	a.AppendAsync(e.ctx, []queue.Entry{{Stream: "s", Message: msg("x")}, {Stream: "s"}}, rec.done(1))
	a.AppendAsync(e.ctx, []queue.Entry{{Stream: "s", Partition: -1, Message: msg("x")}}, rec.done(2))
	a.AppendAsync(e.ctx, []queue.Entry{{Stream: "s", Message: msg("1")}}, rec.done(3))
	dones := rec.wait(t, e, rule, 4)
	for _, i := range []int{1, 2} {
		if d := dones[i]; d.err == nil || d.pos != nil {
			t.Errorf("%s: call %d: done(%v, %v); want no positions and an error", rule, i, d.pos, d.err)
		}
	}
	for _, i := range []int{0, 3} {
		if d := dones[i]; d.err != nil || len(d.pos) != 1 || d.pos[0].Sequence != uint64(i/3) {
			t.Fatalf("%s: call %d: done(%v, %v); want sequence %d", rule, i, d.pos, d.err, i/3)
		}
	}
	recs := readN(t, e, "s", 0, 2)
	checkRecord(t, rule, recs[0], dones[0].pos[0], "0")
	checkRecord(t, rule, recs[1], dones[3].pos[0], "1")
}

func testAsyncClose(t *testing.T, e *env) {
	const rule = "Close answers every AppendAsync call made before it, later calls get hubkit.ErrClosed, and the stored calls are a prefix of the calls"
	a := asyncOf(t, e)
	rec := newAsyncRecorder()
	const calls = 300
	var returned atomic.Int32
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := range calls {
			a.AppendAsync(e.ctx, []queue.Entry{{Stream: "s", Message: msg(fmt.Sprint(i))}}, rec.done(i))
			returned.Add(1)
		}
	}()
	poll(t, e.h.Patience, func() string {
		if rec.count() == 0 {
			return rule + ": no done call came"
		}
		return ""
	})
	before := int(returned.Load())
	if err := e.q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := rec.count(); n < before {
		t.Errorf("%s: Close returned with %d done calls for %d AppendAsync calls returned before it", rule, n, before)
	}
	select {
	case <-finished:
	case <-e.ctx.Done():
		t.Fatalf("%s: AppendAsync still blocked after Close", rule)
	}
	dones := rec.wait(t, e, rule, calls)
	stored := 0
	for i := range calls {
		d := dones[i]
		switch {
		case d.err == nil && stored == i && len(d.pos) == 1 && d.pos[0].Sequence == uint64(i):
			stored++
		case d.err != nil && errors.Is(d.err, hubkit.ErrClosed):
		default:
			t.Fatalf("%s: call %d: done(%v, %v) after %d stored calls", rule, i, d.pos, d.err, stored)
		}
	}
	if stored == calls {
		t.Logf("every call was stored before Close")
	}
	if e.h.Persistent {
		e.q = e.open(t)
		if _, next, err := e.q.Bounds(e.ctx, "s", 0); err != nil || next != uint64(stored) {
			t.Errorf("%s: after reopening Bounds = next %d, %v; want the %d stored", rule, next, err, stored)
		}
	}
}
