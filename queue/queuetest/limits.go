package queuetest

import (
	"context"
	"errors"
	"testing"

	"github.com/hubkit/hubkit"
)

func testLimits(t *testing.T, h Harness) {
	runRules(t, h, []rule{
		{name: "LimitsBelowOneAreInvalid", run: testLimitsBelowOne},
	})
}

func testLimitsBelowOne(t *testing.T, e *env) {
	const rule = "Read, Outcomes, Peek and List refuse a max or limit below 1 with hubkit.ErrArgumentInvalid, and take 1"
	appendN(t, e, "s", 0, 2)
	enqueue(t, e, "d", "0", journal)
	enqueue(t, e, "d", "1", journal)
	enqueue(t, e, "gone", "0", journal)
	if _, err := e.q.Purge(e.ctx, "gone"); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	write(t, e, put("k1", "1"), put("k2", "2"))
	for _, c := range []struct {
		name string
		call func(ctx context.Context, n int) (int, error)
	}{
		{"Read", func(ctx context.Context, n int) (int, error) {
			rs, err := e.q.Read(ctx, "s", 0, 0, n, nil)
			return len(rs), err
		}},
		{"Outcomes", func(ctx context.Context, n int) (int, error) {
			os, err := e.q.Outcomes(ctx, 0, n)
			return len(os), err
		}},
		{"Peek", func(ctx context.Context, n int) (int, error) {
			ms, err := e.q.Peek(ctx, "d", n)
			return len(ms), err
		}},
		{"List", func(ctx context.Context, n int) (int, error) {
			ps, err := e.q.List(ctx, "k", "", n)
			return len(ps), err
		}},
	} {
		for _, n := range []int{0, -1} {
			// A store that took the limit as "none" might wait in Read or
			// Outcomes: bound the call so that the failure is reported.
			ctx, cancel := context.WithTimeout(e.ctx, e.h.Patience)
			got, err := c.call(ctx, n)
			cancel()
			if !errors.Is(err, hubkit.ErrArgumentInvalid) {
				t.Errorf("%s: %s(%d) = %d items, %v; want an error wrapping hubkit.ErrArgumentInvalid", rule, c.name, n, got, err)
			}
		}
		if got, err := c.call(e.ctx, 1); err != nil || got != 1 {
			t.Errorf("%s: %s(1) = %d items, %v; want 1", rule, c.name, got, err)
		}
	}
	if n := qlen(t, e, "d"); n != 2 {
		t.Errorf("%s: Peek changed the queue: Len = %d, want 2", rule, n)
	}
}
