package poll_test

import (
	"testing"

	"github.com/hubkit/hubkit/internal/poll"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	poll.Until(t, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}
