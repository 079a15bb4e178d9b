package throttle_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/throttle"
)

func TestGate(t *testing.T) {
	var g throttle.Gate
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true},                  // the first passes
		{time.Second, false},       // within the interval
		{59 * time.Second, false},  // still within
		{60 * time.Second, true},   // a minute after the last that passed
		{100 * time.Second, false}, // counted from 60 s, not from 0
		{120 * time.Second, true},
	} {
		if got := g.Allow(t0.Add(step.at), time.Minute); got != step.want {
			t.Errorf("Allow at +%v = %v, want %v", step.at, got, step.want)
		}
	}
}

func TestGateRace(t *testing.T) {
	var g throttle.Gate
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g.Allow(now, time.Minute) {
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := passed.Load(); n != 1 {
		t.Fatalf("%d of 16 racing events passed, want 1", n)
	}
}
