package poll

import (
	"testing"
	"time"
)

// Timeout bounds every wait: a condition that does not hold by then fails
// the test. Only a failing test waits that long.
const Timeout = 20 * time.Second

// Until polls cond every few milliseconds until it holds, and fails t
// with "timed out waiting for <what>" when it has not after Timeout.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
