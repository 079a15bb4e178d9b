package queuetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// hasBatchCompleter reports whether the stores h opens implement
// [queue.BatchCompleter]; Run checks that role's rules only then.
func hasBatchCompleter(t *testing.T, h Harness) bool {
	t.Helper()
	e := newEnv(t, h)
	_, ok := e.q.(queue.BatchCompleter)
	if err := e.q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return ok
}

func testBatchCompleter(t *testing.T, h Harness) {
	runRules(t, h, []rule{
		{name: "CompletesEachLiveTokenDurably", run: testCompleteBatch},
		{name: "RefusesAllAfterClose", run: testCompleteBatchClosed},
	})
}

func testCompleteBatch(t *testing.T, e *env) {
	const rule = "CompleteBatch completes each live token as Complete does, with one error per token for the others"
	for i := range 4 {
		enqueue(t, e, "d", fmt.Sprint(i), journal)
	}
	d0, d1, d2 := receive(t, e, "d"), receiveVolatile(t, e, "d"), receive(t, e, "d")
	at := e.clock.Now()
	tokens := []string{d0.LockToken, "no-such-token", d2.LockToken, d0.LockToken, d1.LockToken}
	errs := e.q.(queue.BatchCompleter).CompleteBatch(e.ctx, "d", tokens)
	if len(errs) != len(tokens) {
		t.Fatalf("%s: %d errors for %d tokens", rule, len(errs), len(tokens))
	}
	for i, lost := range []bool{false, true, false, true, false} {
		if got := errs[i]; lost != errors.Is(got, queue.ErrLockLost) || !lost && got != nil {
			t.Errorf("%s: token %d gave %v, want lock lost: %v", rule, i, got, lost)
		}
	}
	if n := qlen(t, e, "d"); n != 1 {
		t.Errorf("%s: Len = %d, want 1", rule, n)
	}
	wantOutcomes(t, e, rule, "d", at, queue.Completed, "0", queue.Completed, "2", queue.Completed, "1")
	if e.h.Persistent {
		e.reopen(t)
		if d := receive(t, e, "d"); string(d.Message.Body) != "3" {
			t.Errorf("%s: after reopen received %q, want %q", rule, d.Message.Body, "3")
		}
	}
	if errs := e.q.(queue.BatchCompleter).CompleteBatch(e.ctx, "d", nil); len(errs) != 0 {
		t.Errorf("%s: no tokens gave %v", rule, errs)
	}
}

func testCompleteBatchClosed(t *testing.T, e *env) {
	const rule = "CompleteBatch after Close gives hubkit.ErrClosed for every token"
	enqueue(t, e, "d", "0", journal)
	d := receive(t, e, "d")
	bc := e.q.(queue.BatchCompleter)
	if err := e.q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, err := range bc.CompleteBatch(e.ctx, "d", []string{d.LockToken, "x"}) {
		if !errors.Is(err, hubkit.ErrClosed) {
			t.Errorf("%s: token %d gave %v", rule, i, err)
		}
	}
}
