package queuetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

func testDeviceQueues(t *testing.T, h Harness) {
	runRules(t, h, []rule{
		{name: "EnqueueStampsIncreasingSequences", run: testEnqueueSequences},
		{name: "ReceiveIsFIFOWithALockPerDelivery", run: testReceiveFIFO},
		{name: "NoMemorySharedWithCaller", run: testQueueNoSharing},
		{name: "MaxDepthRefusesWithErrQueueFull", run: testMaxDepth},
		{name: "LockTimeoutMakesMessageVisibleAgain", run: testLockTimeout},
		{name: "SettlingNeedsALiveToken", run: testLockLost},
		{name: "Complete", run: testComplete},
		{name: "Reject", run: testReject},
		{name: "AbandonCountsAndKeepsPlace", run: testAbandon},
		{name: "AbandonDeadLettersAtMaxDeliveryCount", run: testAbandonDeadLetter},
		{name: "ReleaseDoesNotCount", run: testRelease},
		{name: "ExpiredMessagesAreNeverReceived", run: testExpiryAtReceive},
		{name: "ExpireDeadLettersExpiredMessages", run: testExpire},
		{name: "JournalOnlyWhenAsked", run: testJournalOptIn},
		{name: "EachMessageHasOneOutcome", run: testOneOutcome},
		{name: "OutcomesWaitAndEndWithContext", run: testOutcomesWait},
		{name: "OutcomesCursorNeverMovesBackwards", run: testOutcomesCursor},
		{name: "EnqueueMovesTheOutcomesCursorAtomically", run: testEnqueueCommitsOutcomes},
		{name: "Purge", run: testPurge},
		{name: "LenAndPeek", run: testLenPeek},
		{name: "ReceiveWaitsForEnqueue", run: testReceiveWaits},
		{name: "QueuesAreIndependent", run: testQueuesIndependent},
		{name: "QueueNamesAreOpaqueStrings", run: testQueueNames},
		{name: "SequencesIncreaseAfterTheQueueEmpties", run: testSeqAfterEmpty},
		{name: "BadInputGivesErrors", run: testQueueBadInput},
		{name: "ReopenKeepsQueuesLocksAndJournal", run: testQueuesReopen, persistent: true},
		{name: "VolatileLockHidesUntilItEnds", run: testVolatileHides},
		{name: "VolatileLockSettlesDurably", run: testVolatileSettles},
		{name: "VolatileLockEndsAtReopen", run: testVolatileReopen, persistent: true},
	})
}

const lock = time.Minute

var journal = queue.EnqueueOptions{Journal: true}

func enqueue(t *testing.T, e *env, q, body string, opts queue.EnqueueOptions) uint64 {
	t.Helper()
	seq, err := e.q.Enqueue(e.ctx, q, msg(body), opts)
	if err != nil {
		t.Fatalf("Enqueue(%s, %s): %v", q, body, err)
	}
	return seq
}

func receive(t *testing.T, e *env, q string) queue.Delivery {
	t.Helper()
	d, err := e.q.Receive(e.ctx, q, queue.ReceiveOptions{Lock: lock, NoWait: true})
	if err != nil {
		t.Fatalf("Receive(%s): %v", q, err)
	}
	return d
}

// empty checks that q has no visible message.
func empty(t *testing.T, e *env, rule, q string) {
	t.Helper()
	d, err := e.q.Receive(e.ctx, q, queue.ReceiveOptions{Lock: lock, NoWait: true})
	if !errors.Is(err, queue.ErrEmpty) {
		t.Errorf("%s: Receive with NoWait returned %q, %v; want queue.ErrEmpty", rule, d.Message.Body, err)
	}
}

func qlen(t *testing.T, e *env, q string) int {
	t.Helper()
	n, err := e.q.Len(e.ctx, q)
	if err != nil {
		t.Fatalf("Len(%s): %v", q, err)
	}
	return n
}

// outcomes returns the n outcomes of the journal from from on, waiting for
// them, and fails the test if there are fewer or more.
func outcomes(t *testing.T, e *env, from uint64, n int) []queue.Outcome {
	t.Helper()
	var all []queue.Outcome
	for len(all) < n {
		ctx, cancel := context.WithTimeout(e.ctx, e.h.Patience)
		batch, err := e.q.Outcomes(ctx, from, n-len(all))
		cancel()
		if err != nil {
			t.Fatalf("the journal should hold %d outcomes from %d on: after %d %v, Outcomes: %v", n, from, len(all), all, err)
		}
		if len(batch) == 0 || len(batch) > n-len(all) {
			t.Fatalf("Outcomes(%d, %d) returned %d outcomes", from, n-len(all), len(batch))
		}
		all = append(all, batch...)
		from = batch[len(batch)-1].Seq + 1
	}
	// A store slower than this could hide an extra outcome, never invent one.
	ctx, cancel := context.WithTimeout(e.ctx, 50*time.Millisecond)
	defer cancel()
	if more, err := e.q.Outcomes(ctx, from, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the journal should hold %d outcomes %v, but Outcomes(%d) also returned %v, %v", n, all, from, more, err)
	}
	return all
}

// wantOutcomes checks that the journal, from its start, holds exactly the
// given statuses of the given bodies' messages, in order, with gapless
// sequence numbers, stamped with at.
func wantOutcomes(t *testing.T, e *env, rule string, q string, at time.Time, want ...any) {
	t.Helper()
	got := outcomes(t, e, 0, len(want)/2)
	for i, o := range got {
		status, body := want[2*i].(queue.Status), want[2*i+1].(string)
		switch {
		case i > 0 && o.Seq != got[i-1].Seq+1:
			t.Errorf("%s: outcome sequence numbers %d then %d: want no gaps", rule, got[i-1].Seq, o.Seq)
		case o.Status != status || o.Queue != q || o.Message.System.MessageID != "id-"+body:
			t.Errorf("%s: outcome %d is %s of %q in %q, want %s of %q in %q", rule, i, o.Status, o.Message.System.MessageID, o.Queue, status, "id-"+body, q)
		case !sameTime(o.Time, at):
			t.Errorf("%s: outcome %d at %v, want the clock's %v", rule, i, o.Time, at)
		case len(o.Message.Body) != 0:
			t.Errorf("%s: outcome %d keeps the body %q; the journal keeps no bodies", rule, i, o.Message.Body)
		case len(o.Message.Properties) != 1 || o.Message.Properties[0].Value != "v-"+body:
			t.Errorf("%s: outcome %d has properties %v, want the message's", rule, i, o.Message.Properties)
		}
	}
}

func testEnqueueSequences(t *testing.T, e *env) {
	const rule = "Enqueue returns sequence numbers that increase strictly within the queue"
	var prev uint64
	for i := range 5 {
		seq := enqueue(t, e, "d", fmt.Sprint(i), queue.EnqueueOptions{})
		if i > 0 && seq <= prev {
			t.Errorf("%s: enqueue %d got %d after %d", rule, i, seq, prev)
		}
		prev = seq
	}
}

func testReceiveFIFO(t *testing.T, e *env) {
	const rule = "Receive returns messages in sequence order, each locked with a fresh token and stamped by the store"
	t0 := e.clock.Now()
	exp := t0.Add(time.Hour)
	var seqs []uint64
	for i := range 3 {
		m := msg(fmt.Sprint(i))
		m.System.ExpiryTime = exp
		m.System.DeliveryCount = 7 // stamped by the store
		seq, err := e.q.Enqueue(e.ctx, "d", m, queue.EnqueueOptions{})
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		seqs = append(seqs, seq)
	}
	t1 := e.clock.Advance(time.Second)
	tokens := map[string]bool{}
	for i := range 3 {
		d := receive(t, e, "d")
		m := d.Message
		switch {
		case string(m.Body) != fmt.Sprint(i):
			t.Errorf("%s: delivery %d has body %q", rule, i, m.Body)
		case d.Queue != "d":
			t.Errorf("%s: delivery %d has Queue %q, want d", rule, i, d.Queue)
		case m.System.SequenceNumber != seqs[i]:
			t.Errorf("%s: delivery %d has SequenceNumber %d, Enqueue returned %d", rule, i, m.System.SequenceNumber, seqs[i])
		case !sameTime(m.System.EnqueuedTime, t0) || !sameTime(m.System.ExpiryTime, exp):
			t.Errorf("%s: delivery %d enqueued %v expiring %v, want %v and %v", rule, i, m.System.EnqueuedTime, m.System.ExpiryTime, t0, exp)
		case m.System.DeliveryCount != 0 || d.Attempts != 1:
			t.Errorf("%s: first delivery %d has DeliveryCount %d, Attempts %d; want 0, 1", rule, i, m.System.DeliveryCount, d.Attempts)
		case !sameTime(d.LockedUntil, t1.Add(lock)):
			t.Errorf("%s: delivery %d locked until %v, want now + lock = %v", rule, i, d.LockedUntil, t1.Add(lock))
		case d.LockToken == "" || tokens[d.LockToken]:
			t.Errorf("%s: delivery %d has lock token %q: want a non-empty one of its own", rule, i, d.LockToken)
		case m.System.MessageID != "id-"+fmt.Sprint(i) || len(m.Properties) != 1:
			t.Errorf("%s: delivery %d lost its properties: %+v", rule, i, m)
		}
		tokens[d.LockToken] = true
	}
	empty(t, e, "locked messages are invisible", "d")
}

func testQueueNoSharing(t *testing.T, e *env) {
	const rule = "Enqueue does not keep the caller's message and Receive and Peek return copies"
	m := msg("x")
	if _, err := e.q.Enqueue(e.ctx, "d", m, queue.EnqueueOptions{}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	m.Body[0] = 'y'
	m.Properties[0].Value = "changed"
	ps, err := e.q.Peek(e.ctx, "d", 1)
	if err != nil || len(ps) != 1 {
		t.Fatalf("Peek: %v, %v", ps, err)
	}
	ps[0].Body[0] = 'z'
	ps[0].Properties[0].Value = "changed"
	d := receive(t, e, "d")
	if string(d.Message.Body) != "x" || d.Message.Properties[0].Value != "v-x" {
		t.Errorf("%s: the stored message changed: %+v", rule, d.Message)
	}
	d.Message.Body[0] = 'w'
	d.Message.Properties[0].Value = "changed"
	if err := e.q.Release(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if d := receive(t, e, "d"); string(d.Message.Body) != "x" || d.Message.Properties[0].Value != "v-x" {
		t.Errorf("%s: changing a delivery changed the stored message: %+v", rule, d.Message)
	}
}

func testMaxDepth(t *testing.T, e *env) {
	const rule = "Enqueue refuses with ErrQueueFull once the queue holds MaxDepth messages, locked ones included"
	opts := queue.EnqueueOptions{MaxDepth: 2}
	enqueue(t, e, "d", "0", opts)
	enqueue(t, e, "d", "1", opts)
	d := receive(t, e, "d")
	_, err := e.q.Enqueue(e.ctx, "d", msg("2"), opts)
	if !errors.Is(err, queue.ErrQueueFull) || !errors.Is(err, hubkit.ErrDeviceMaximumQueueDepthExceeded) {
		t.Errorf("%s: third Enqueue returned %v, want queue.ErrQueueFull wrapping hubkit.ErrDeviceMaximumQueueDepthExceeded", rule, err)
	}
	if n := qlen(t, e, "d"); n != 2 {
		t.Errorf("%s: a refused message was stored: Len = %d, want 2", rule, n)
	}
	enqueue(t, e, "other", "0", opts) // other queues have their own depth
	if err := e.q.Complete(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	enqueue(t, e, "d", "2", opts)
	enqueue(t, e, "d", "3", queue.EnqueueOptions{}) // zero means no limit
}

func testLockTimeout(t *testing.T, e *env) {
	const rule = "when a lock ends by the store's clock the message is visible again: same delivery count, one more attempt, a new token"
	enqueue(t, e, "d", "0", queue.EnqueueOptions{})
	d1 := receive(t, e, "d")
	e.clock.Advance(lock - time.Second)
	empty(t, e, "a message stays invisible until its lock ends", "d")
	e.clock.Advance(2 * time.Second)
	d2 := receive(t, e, "d")
	switch {
	case string(d2.Message.Body) != "0" || d2.Message.System.SequenceNumber != d1.Message.System.SequenceNumber:
		t.Errorf("%s: got %q, want the message whose lock ended", rule, d2.Message.Body)
	case d2.Message.System.DeliveryCount != 0 || d2.Attempts != 2:
		t.Errorf("%s: DeliveryCount %d, Attempts %d; want 0, 2", rule, d2.Message.System.DeliveryCount, d2.Attempts)
	case d2.LockToken == d1.LockToken:
		t.Errorf("%s: the new delivery reuses the old lock token", rule)
	}
	if err := e.q.Complete(e.ctx, "d", d1.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: Complete with the first delivery's token returned %v, want queue.ErrLockLost", rule, err)
	}
	if err := e.q.Complete(e.ctx, "d", d2.LockToken); err != nil {
		t.Errorf("%s: Complete with the new token: %v", rule, err)
	}
}

func testLockLost(t *testing.T, e *env) {
	const rule = "an unknown, used or expired lock token gives ErrLockLost wrapping hubkit.ErrDeviceMessageLockLost"
	enqueue(t, e, "d", "0", journal)
	enqueue(t, e, "e", "0", journal)
	d := receive(t, e, "d")
	settle := map[string]func(q, token string) error{
		"Complete": func(q, tok string) error { return e.q.Complete(e.ctx, q, tok) },
		"Reject":   func(q, tok string) error { return e.q.Reject(e.ctx, q, tok) },
		"Abandon":  func(q, tok string) error { _, err := e.q.Abandon(e.ctx, q, tok); return err },
		"Release":  func(q, tok string) error { return e.q.Release(e.ctx, q, tok) },
	}
	for name, f := range settle {
		for _, c := range []struct{ what, q, token string }{
			{"an unknown token", "d", "no-such-token"},
			{"an empty token", "d", ""},
			{"another queue's token", "e", d.LockToken},
		} {
			if err := f(c.q, c.token); !errors.Is(err, queue.ErrLockLost) || !errors.Is(err, hubkit.ErrDeviceMessageLockLost) {
				t.Errorf("%s: %s with %s returned %v", rule, name, c.what, err)
			}
		}
	}
	e.clock.Advance(lock + time.Second)
	for name, f := range settle {
		if err := f("d", d.LockToken); !errors.Is(err, queue.ErrLockLost) {
			t.Errorf("%s: %s after the lock ended returned %v", rule, name, err)
		}
	}
	if n := qlen(t, e, "d"); n != 1 {
		t.Errorf("%s: failed settles changed the queue: Len = %d, want 1", rule, n)
	}
	if got := outcomes(t, e, 0, 0); len(got) != 0 {
		t.Errorf("%s: failed settles journaled %v", rule, got)
	}
}

func testComplete(t *testing.T, e *env) {
	const rule = "Complete removes the message and journals Completed once"
	enqueue(t, e, "d", "0", journal)
	enqueue(t, e, "d", "1", journal)
	d := receive(t, e, "d")
	at := e.clock.Advance(time.Second)
	if err := e.q.Complete(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("%s: %v", rule, err)
	}
	if err := e.q.Complete(e.ctx, "d", d.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: a second Complete with the same token returned %v, want queue.ErrLockLost", rule, err)
	}
	if n := qlen(t, e, "d"); n != 1 {
		t.Errorf("%s: Len = %d after Complete, want 1", rule, n)
	}
	if d := receive(t, e, "d"); string(d.Message.Body) != "1" {
		t.Errorf("%s: after Complete received %q, want the next message", rule, d.Message.Body)
	}
	wantOutcomes(t, e, rule, "d", at, queue.Completed, "0")
}

func testReject(t *testing.T, e *env) {
	const rule = "Reject dead-letters the message and journals Rejected once"
	enqueue(t, e, "d", "0", journal)
	d := receive(t, e, "d")
	at := e.clock.Advance(time.Second)
	if err := e.q.Reject(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("%s: %v", rule, err)
	}
	if err := e.q.Reject(e.ctx, "d", d.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: a second Reject returned %v, want queue.ErrLockLost", rule, err)
	}
	if n := qlen(t, e, "d"); n != 0 {
		t.Errorf("%s: Len = %d after Reject, want 0", rule, n)
	}
	empty(t, e, rule, "d")
	wantOutcomes(t, e, rule, "d", at, queue.Rejected, "0")
}

func testAbandon(t *testing.T, e *env) {
	const rule = "Abandon makes the message visible again in its old place, with its delivery count plus 1"
	enqueue(t, e, "d", "0", journal)
	enqueue(t, e, "d", "1", journal)
	d := receive(t, e, "d")
	dead, err := e.q.Abandon(e.ctx, "d", d.LockToken)
	if err != nil || dead {
		t.Fatalf("%s: Abandon = %v, %v; want false, nil", rule, dead, err)
	}
	if _, err := e.q.Abandon(e.ctx, "d", d.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: a second Abandon with the same token returned %v, want queue.ErrLockLost", rule, err)
	}
	d2 := receive(t, e, "d")
	if string(d2.Message.Body) != "0" || d2.Message.System.DeliveryCount != 1 || d2.Attempts != 2 {
		t.Errorf("%s: next delivery is %q with DeliveryCount %d, Attempts %d; want %q, 1, 2", rule, d2.Message.Body, d2.Message.System.DeliveryCount, d2.Attempts, "0")
	}
	if got := outcomes(t, e, 0, 0); len(got) != 0 {
		t.Errorf("%s: Abandon below MaxDeliveryCount journaled %v", rule, got)
	}
}

func testAbandonDeadLetter(t *testing.T, e *env) {
	const rule = "an Abandon that brings the delivery count to MaxDeliveryCount dead-letters the message (DeliveryCountExceeded)"
	enqueue(t, e, "d", "0", queue.EnqueueOptions{MaxDeliveryCount: 2, Journal: true})
	enqueue(t, e, "d", "1", queue.EnqueueOptions{Journal: true}) // no limit
	for i := range 2 {
		d := receive(t, e, "d")
		if string(d.Message.Body) != "0" {
			t.Fatalf("%s: delivery %d is %q, want the abandoned message", rule, i, d.Message.Body)
		}
		dead, err := e.q.Abandon(e.ctx, "d", d.LockToken)
		if err != nil || dead != (i == 1) {
			t.Fatalf("%s: Abandon %d = %v, %v; want %v, nil", rule, i+1, dead, err, i == 1)
		}
	}
	at := e.clock.Now()
	for i := range 20 {
		d := receive(t, e, "d")
		if string(d.Message.Body) != "1" || d.Message.System.DeliveryCount != uint32(i) {
			t.Fatalf("%s: delivery %d of the unlimited message is %q with DeliveryCount %d", rule, i, d.Message.Body, d.Message.System.DeliveryCount)
		}
		if dead, err := e.q.Abandon(e.ctx, "d", d.LockToken); err != nil || dead {
			t.Fatalf("MaxDeliveryCount 0 means no limit: Abandon %d = %v, %v", i+1, dead, err)
		}
	}
	wantOutcomes(t, e, rule, "d", at, queue.DeliveryCountExceeded, "0")
}

func testRelease(t *testing.T, e *env) {
	const rule = "Release makes the message visible again without adding to its delivery count"
	enqueue(t, e, "d", "0", journal)
	enqueue(t, e, "d", "1", journal)
	d := receive(t, e, "d")
	if err := e.q.Release(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("%s: %v", rule, err)
	}
	if err := e.q.Release(e.ctx, "d", d.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: a second Release returned %v, want queue.ErrLockLost", rule, err)
	}
	d2 := receive(t, e, "d")
	if string(d2.Message.Body) != "0" || d2.Message.System.DeliveryCount != 0 || d2.Attempts != 2 {
		t.Errorf("%s: next delivery is %q with DeliveryCount %d, Attempts %d; want %q, 0, 2", rule, d2.Message.Body, d2.Message.System.DeliveryCount, d2.Attempts, "0")
	}
	if got := outcomes(t, e, 0, 0); len(got) != 0 {
		t.Errorf("%s: Release journaled %v", rule, got)
	}
}

// enqueueExpiring enqueues msg(body) expiring at exp.
func enqueueExpiring(t *testing.T, e *env, q, body string, exp time.Time, opts queue.EnqueueOptions) {
	t.Helper()
	m := msg(body)
	m.System.ExpiryTime = exp
	if _, err := e.q.Enqueue(e.ctx, q, m, opts); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func testExpiryAtReceive(t *testing.T, e *env) {
	const rule = "an expired message is never received, counted or peeked, and is journaled Expired once"
	t0 := e.clock.Now()
	enqueueExpiring(t, e, "d", "0", t0.Add(time.Minute), journal)
	enqueueExpiring(t, e, "d", "1", t0.Add(time.Hour), journal)
	at := e.clock.Advance(2 * time.Minute)
	if n := qlen(t, e, "d"); n != 1 {
		t.Errorf("%s: Len = %d, want 1", rule, n)
	}
	if ps, err := e.q.Peek(e.ctx, "d", 10); err != nil || len(ps) != 1 || string(ps[0].Body) != "1" {
		t.Errorf("%s: Peek = %v, %v; want only the unexpired message", rule, ps, err)
	}
	d := receive(t, e, "d")
	if string(d.Message.Body) != "1" {
		t.Errorf("%s: received %q, want the unexpired message", rule, d.Message.Body)
	}
	empty(t, e, rule, "d")
	if _, err := e.q.Expire(e.ctx); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	wantOutcomes(t, e, rule, "d", at, queue.Expired, "0")
}

func testExpire(t *testing.T, e *env) {
	const rule = "Expire dead-letters every expired message, locked or not, and journals each once"
	t0 := e.clock.Now()
	enqueueExpiring(t, e, "d", "0", t0.Add(time.Minute), journal)
	enqueueExpiring(t, e, "d", "1", t0.Add(3*time.Minute), journal)
	enqueueExpiring(t, e, "e", "2", t0.Add(time.Minute), journal)
	enqueue(t, e, "e", "3", journal)
	d := receive(t, e, "d")
	at := e.clock.Advance(2 * time.Minute)
	// A background sweep may have expired some already, so the count is at most 2.
	n, err := e.q.Expire(e.ctx)
	if err != nil || n > 2 {
		t.Errorf("%s: Expire = %d, %v; want at most 2", rule, n, err)
	}
	if n, err := e.q.Expire(e.ctx); err != nil || n != 0 {
		t.Errorf("%s: a second Expire = %d, %v; want 0", rule, n, err)
	}
	if err := e.q.Complete(e.ctx, "d", d.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: Complete of an expired message returned %v, want queue.ErrLockLost", rule, err)
	}
	if a, b := qlen(t, e, "d"), qlen(t, e, "e"); a != 1 || b != 1 {
		t.Errorf("%s: Len = %d and %d, want 1 and 1", rule, a, b)
	}
	got := outcomes(t, e, 0, 2)
	bodies := map[string]int{}
	for _, o := range got {
		if o.Status != queue.Expired || !sameTime(o.Time, at) {
			t.Errorf("%s: outcome %+v, want Expired at %v", rule, o, at)
		}
		bodies[o.Queue+"/"+o.Message.System.MessageID]++
	}
	if len(got) != 2 || bodies["d/id-0"] != 1 || bodies["e/id-2"] != 1 {
		t.Errorf("%s: journal holds %v, want one Expired for d/id-0 and one for e/id-2", rule, got)
	}
}

func testJournalOptIn(t *testing.T, e *env) {
	const rule = "only messages enqueued with Journal have their outcomes journaled"
	enqueue(t, e, "d", "0", queue.EnqueueOptions{})
	enqueue(t, e, "d", "1", journal)
	enqueue(t, e, "d", "2", queue.EnqueueOptions{})
	for range 2 {
		if err := e.q.Complete(e.ctx, "d", receive(t, e, "d").LockToken); err != nil {
			t.Fatalf("Complete: %v", err)
		}
	}
	if _, err := e.q.Purge(e.ctx, "d"); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	wantOutcomes(t, e, rule, "d", e.clock.Now(), queue.Completed, "1")
}

func testOneOutcome(t *testing.T, e *env) {
	const rule = "a message reaches one terminal state and is journaled once, whatever happens after"
	exp := e.clock.Now().Add(time.Minute)
	for i := range 4 {
		enqueueExpiring(t, e, "d", fmt.Sprint(i), exp, queue.EnqueueOptions{Journal: true, MaxDeliveryCount: 1})
	}
	at := e.clock.Advance(time.Second)
	if err := e.q.Complete(e.ctx, "d", receive(t, e, "d").LockToken); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := e.q.Reject(e.ctx, "d", receive(t, e, "d").LockToken); err != nil {
		t.Fatalf("Reject: %v", err)
	}
	if dead, err := e.q.Abandon(e.ctx, "d", receive(t, e, "d").LockToken); err != nil || !dead {
		t.Fatalf("Abandon at MaxDeliveryCount 1 = %v, %v; want true, nil", dead, err)
	}
	wantOutcomes(t, e, rule, "d", at, queue.Completed, "0", queue.Rejected, "1", queue.DeliveryCountExceeded, "2")
	e.clock.Advance(2 * time.Minute)
	if _, err := e.q.Expire(e.ctx); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	if n, err := e.q.Purge(e.ctx, "d"); err != nil || n != 0 {
		t.Errorf("%s: Purge after everything expired = %d, %v; want 0", rule, n, err)
	}
	got := outcomes(t, e, 0, 4)
	if len(got) != 4 || got[3].Status != queue.Expired || got[3].Message.System.MessageID != "id-3" {
		t.Errorf("%s: journal holds %v; want the three outcomes above and Expired for id-3", rule, got)
	}
}

func testOutcomesWait(t *testing.T, e *env) {
	const rule = "Outcomes waits until an outcome exists, or its context ends"
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := e.q.Outcomes(ctx, 0, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%s: Outcomes on an empty journal returned %v, want context.DeadlineExceeded", rule, err)
	}
	enqueue(t, e, "d", "0", journal)
	d := receive(t, e, "d")
	ch := goCall(func() ([]queue.Outcome, error) { return e.q.Outcomes(e.ctx, 0, 10) })
	waiting(t, e, ch, "testOutcomesWait.func", 1, "Outcomes on an empty journal")
	if err := e.q.Complete(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	r := await(t, e, ch, "Outcomes after Complete")
	if r.err != nil || len(r.v) != 1 || r.v[0].Status != queue.Completed {
		t.Errorf("%s: Outcomes returned %v, %v; want the Completed outcome", rule, r.v, r.err)
	}
	ctx, cancel = context.WithCancel(e.ctx)
	ch = goCall(func() ([]queue.Outcome, error) { return e.q.Outcomes(ctx, r.v[0].Seq+1, 10) })
	waiting(t, e, ch, "testOutcomesWait.func", 1, "Outcomes past the last outcome")
	cancel()
	if r := await(t, e, ch, "Outcomes after cancel"); !errors.Is(r.err, context.Canceled) {
		t.Errorf("%s: Outcomes returned %v after cancel, want context.Canceled", rule, r.err)
	}
}

func testOutcomesCursor(t *testing.T, e *env) {
	const rule = "OutcomesCursor returns 0, then the highest value given to CommitOutcomes"
	if c, err := e.q.OutcomesCursor(e.ctx); err != nil || c != 0 {
		t.Errorf("%s: OutcomesCursor = %d, %v; want 0", rule, c, err)
	}
	for i := range 4 {
		enqueue(t, e, "d", fmt.Sprint(i), journal)
	}
	if _, err := e.q.Purge(e.ctx, "d"); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	all := outcomes(t, e, 0, 4)
	if len(all) != 4 {
		t.Fatalf("%s: journal holds %d outcomes, want 4", rule, len(all))
	}
	if two, err := e.q.Outcomes(e.ctx, all[0].Seq, 2); err != nil || len(two) != 2 || two[0].Seq != all[0].Seq {
		t.Errorf("Outcomes returns at most max outcomes from from on: Outcomes(%d, 2) = %v, %v", all[0].Seq, two, err)
	}
	next := all[2].Seq
	if err := e.q.CommitOutcomes(e.ctx, next); err != nil {
		t.Fatalf("CommitOutcomes: %v", err)
	}
	if err := e.q.CommitOutcomes(e.ctx, all[0].Seq); err != nil {
		t.Fatalf("CommitOutcomes: %v", err)
	}
	if c, err := e.q.OutcomesCursor(e.ctx); err != nil || c != next {
		t.Errorf("%s: OutcomesCursor = %d, %v; want %d", rule, c, err, next)
	}
	rest := outcomes(t, e, next, 2)
	if len(rest) != 2 || rest[0].Seq != next || rest[1].Seq != all[3].Seq {
		t.Errorf("%s: outcomes from the cursor on are %v, want the last two", rule, rest)
	}
}

func testEnqueueCommitsOutcomes(t *testing.T, e *env) {
	const rule = "Enqueue with CommitOutcomes moves the outcomes cursor with the message, never backwards, and not at all when refused"
	for i := range 3 {
		enqueue(t, e, "d", fmt.Sprint(i), journal)
	}
	if _, err := e.q.Purge(e.ctx, "d"); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	all := outcomes(t, e, 0, 3)
	cursor := func() uint64 {
		t.Helper()
		c, err := e.q.OutcomesCursor(e.ctx)
		if err != nil {
			t.Fatalf("OutcomesCursor: %v", err)
		}
		return c
	}
	opts := queue.EnqueueOptions{MaxDepth: 2}
	steps := []struct {
		name   string
		commit uint64
		full   bool // the queue is full: Enqueue must refuse
		want   uint64
	}{
		{"moves it", all[1].Seq + 1, false, all[1].Seq + 1},
		{"zero leaves it", 0, false, all[1].Seq + 1},
		{"refused leaves it", all[2].Seq + 1, true, all[1].Seq + 1},
		{"lower leaves it", all[0].Seq + 1, true, all[1].Seq + 1},
	}
	for i, s := range steps {
		opts.CommitOutcomes = s.commit
		_, err := e.q.Enqueue(e.ctx, "fb", msg(fmt.Sprint(i)), opts)
		switch {
		case s.full && !errors.Is(err, queue.ErrQueueFull):
			t.Fatalf("%s: Enqueue to a full queue returned %v, want queue.ErrQueueFull", rule, err)
		case !s.full && err != nil:
			t.Fatalf("%s: Enqueue: %v", rule, err)
		}
		if c := cursor(); c != s.want {
			t.Errorf("%s: %s: OutcomesCursor = %d, want %d", rule, s.name, c, s.want)
		}
	}
	if n := qlen(t, e, "fb"); n != 2 {
		t.Errorf("%s: Len = %d, want the 2 accepted messages", rule, n)
	}
	if rest := outcomes(t, e, all[1].Seq+1, 1); rest[0].Seq != all[2].Seq {
		t.Errorf("%s: the outcome after the cursor is %d, want %d", rule, rest[0].Seq, all[2].Seq)
	}
	if !e.h.Persistent {
		return
	}
	e.reopen(t)
	if c, n := cursor(), qlen(t, e, "fb"); c != all[1].Seq+1 || n != 2 {
		t.Errorf("%s: after reopening OutcomesCursor = %d and Len = %d, want %d and 2", rule, c, n, all[1].Seq+1)
	}
}

func testPurge(t *testing.T, e *env) {
	const rule = "Purge removes every message, locked or not, journals each as Purged and returns the count"
	for i := range 3 {
		enqueue(t, e, "d", fmt.Sprint(i), journal)
	}
	enqueue(t, e, "other", "x", journal)
	d := receive(t, e, "d")
	at := e.clock.Advance(time.Second)
	if n, err := e.q.Purge(e.ctx, "d"); err != nil || n != 3 {
		t.Errorf("%s: Purge = %d, %v; want 3", rule, n, err)
	}
	if n := qlen(t, e, "d"); n != 0 {
		t.Errorf("%s: Len = %d after Purge", rule, n)
	}
	if err := e.q.Complete(e.ctx, "d", d.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: Complete of a purged message returned %v, want queue.ErrLockLost", rule, err)
	}
	if n, err := e.q.Purge(e.ctx, "d"); err != nil || n != 0 {
		t.Errorf("%s: Purge of an empty queue = %d, %v; want 0", rule, n, err)
	}
	if n, err := e.q.Purge(e.ctx, "never-used"); err != nil || n != 0 {
		t.Errorf("%s: Purge of an unknown queue = %d, %v; want 0", rule, n, err)
	}
	if n := qlen(t, e, "other"); n != 1 {
		t.Errorf("%s: Purge changed another queue: Len = %d", rule, n)
	}
	wantOutcomes(t, e, rule, "d", at, queue.Purged, "0", queue.Purged, "1", queue.Purged, "2")
}

func testLenPeek(t *testing.T, e *env) {
	const rule = "Len counts and Peek lists the queue's messages in order, locked ones included, without locking"
	if n := qlen(t, e, "d"); n != 0 {
		t.Errorf("%s: Len of an unknown queue = %d", rule, n)
	}
	for i := range 4 {
		enqueue(t, e, "d", fmt.Sprint(i), queue.EnqueueOptions{})
	}
	receive(t, e, "d")
	if n := qlen(t, e, "d"); n != 4 {
		t.Errorf("%s: Len = %d, want 4", rule, n)
	}
	ps, err := e.q.Peek(e.ctx, "d", 3)
	if err != nil || len(ps) != 3 {
		t.Fatalf("%s: Peek(3) = %d messages, %v", rule, len(ps), err)
	}
	for i, m := range ps {
		if string(m.Body) != fmt.Sprint(i) {
			t.Errorf("%s: Peek[%d] = %q, want %q", rule, i, m.Body, fmt.Sprint(i))
		}
	}
	if d := receive(t, e, "d"); string(d.Message.Body) != "1" {
		t.Errorf("%s: Peek locked a message: Receive got %q, want %q", rule, d.Message.Body, "1")
	}
}

func testReceiveWaits(t *testing.T, e *env) {
	const rule = "Receive without NoWait waits until a message is enqueued, or its context ends"
	empty(t, e, "Receive with NoWait on an empty queue returns ErrEmpty", "d")
	ch := goCall(func() (queue.Delivery, error) { return e.q.Receive(e.ctx, "d", queue.ReceiveOptions{Lock: lock}) })
	waiting(t, e, ch, "testReceiveWaits.func", 1, "Receive on an empty queue")
	enqueue(t, e, "other", "no", queue.EnqueueOptions{})
	enqueue(t, e, "d", "yes", queue.EnqueueOptions{})
	r := await(t, e, ch, "Receive after Enqueue")
	if r.err != nil || string(r.v.Message.Body) != "yes" {
		t.Errorf("%s: Receive returned %q, %v; want the message enqueued while it waited", rule, r.v.Message.Body, r.err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := e.q.Receive(ctx, "d", queue.ReceiveOptions{Lock: lock}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%s: Receive with a deadline returned %v, want context.DeadlineExceeded", rule, err)
	}
	ctx, cancel = context.WithCancel(e.ctx)
	ch = goCall(func() (queue.Delivery, error) { return e.q.Receive(ctx, "d", queue.ReceiveOptions{Lock: lock}) })
	waiting(t, e, ch, "testReceiveWaits.func", 1, "Receive on an empty queue")
	cancel()
	if r := await(t, e, ch, "Receive after cancel"); !errors.Is(r.err, context.Canceled) {
		t.Errorf("%s: Receive returned %v after cancel, want context.Canceled", rule, r.err)
	}
}

func testQueuesIndependent(t *testing.T, e *env) {
	const rule = "each queue has its own messages and order"
	enqueue(t, e, "a", "a0", queue.EnqueueOptions{})
	enqueue(t, e, "b", "b0", queue.EnqueueOptions{})
	enqueue(t, e, "a", "a1", queue.EnqueueOptions{})
	for _, want := range []struct{ q, body string }{{"b", "b0"}, {"a", "a0"}, {"a", "a1"}} {
		if d := receive(t, e, want.q); string(d.Message.Body) != want.body || d.Queue != want.q {
			t.Errorf("%s: Receive(%s) = %q from %q, want %q", rule, want.q, d.Message.Body, d.Queue, want.body)
		}
	}
	empty(t, e, rule, "b")
}

func testQueueNames(t *testing.T, e *env) {
	const rule = "queues whose names share prefixes or hold any bytes are independent"
	for i, name := range names {
		for j := range i + 1 {
			enqueue(t, e, name, fmt.Sprintf("%d-%d", i, j), journal)
		}
	}
	for i, name := range names {
		if n := qlen(t, e, name); n != i+1 {
			t.Errorf("%s: Len(%q) = %d, want %d", rule, name, n, i+1)
		}
		if d := receive(t, e, name); d.Queue != name || string(d.Message.Body) != fmt.Sprintf("%d-0", i) {
			t.Errorf("%s: Receive(%q) got %q from %q", rule, name, d.Message.Body, d.Queue)
		}
	}
	if n, err := e.q.Purge(e.ctx, "a"); err != nil || n != 1 {
		t.Errorf("%s: Purge(a) = %d, %v; want 1", rule, n, err)
	}
	for i, name := range names[1:] {
		if n := qlen(t, e, name); n != i+2 {
			t.Errorf("%s: after Purge(a), Len(%q) = %d, want %d", rule, name, n, i+2)
		}
	}
	for _, o := range outcomes(t, e, 0, 1) {
		if o.Queue != "a" {
			t.Errorf("%s: Purge(a) journaled an outcome for %q", rule, o.Queue)
		}
	}
}

func testSeqAfterEmpty(t *testing.T, e *env) {
	const rule = "a queue's sequence numbers keep increasing after it empties"
	first := enqueue(t, e, "d", "0", queue.EnqueueOptions{})
	if err := e.q.Complete(e.ctx, "d", receive(t, e, "d").LockToken); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	second := enqueue(t, e, "d", "1", queue.EnqueueOptions{})
	if second <= first {
		t.Errorf("%s: Enqueue after the queue emptied got %d, not above %d", rule, second, first)
	}
	if _, err := e.q.Purge(e.ctx, "d"); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if e.h.Persistent {
		e.reopen(t)
	}
	if third := enqueue(t, e, "d", "2", queue.EnqueueOptions{}); third <= second {
		t.Errorf("%s: Enqueue after a Purge (and reopen, for a persistent store) got %d, not above %d", rule, third, second)
	}
}

func testQueueBadInput(t *testing.T, e *env) {
	const rule = "bad input gives an error, not a panic"
	if _, err := e.q.Enqueue(e.ctx, "d", nil, queue.EnqueueOptions{}); err == nil {
		t.Errorf("%s: Enqueue of a nil message returned no error", rule)
	}
	if _, err := e.q.Enqueue(e.ctx, "", msg("0"), queue.EnqueueOptions{}); err == nil {
		t.Errorf("%s: Enqueue to the empty queue name returned no error", rule)
	}
	enqueue(t, e, "d", "0", queue.EnqueueOptions{})
	for _, l := range []time.Duration{0, -time.Second} {
		if _, err := e.q.Receive(e.ctx, "d", queue.ReceiveOptions{Lock: l, NoWait: true}); !errors.Is(err, hubkit.ErrArgumentInvalid) {
			t.Errorf("%s: Receive with Lock %v = %v, want an error wrapping hubkit.ErrArgumentInvalid", rule, l, err)
		}
	}
	if n := qlen(t, e, "d"); n != 1 {
		t.Errorf("%s: Len = %d, want 1", rule, n)
	}
	if _, err := e.q.Outcomes(e.ctx, 0, 0); err == nil {
		t.Errorf("%s: Outcomes with max 0 returned no error", rule)
	}
}

func testQueuesReopen(t *testing.T, e *env) {
	const rule = "messages, locks, delivery counts, the journal and its cursor survive Close and reopen"
	var seqs []uint64
	for i := range 4 {
		seqs = append(seqs, enqueue(t, e, "d", fmt.Sprint(i), journal))
	}
	d0 := receive(t, e, "d")
	if err := e.q.Complete(e.ctx, "d", d0.LockToken); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	d1 := receive(t, e, "d")
	if _, err := e.q.Abandon(e.ctx, "d", d1.LockToken); err != nil {
		t.Fatalf("Abandon: %v", err)
	}
	d1 = receive(t, e, "d") // locked across the reopen
	enqueue(t, e, "x", "x", journal)
	if _, err := e.q.Purge(e.ctx, "x"); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	before := outcomes(t, e, 0, 2)
	if len(before) != 2 {
		t.Fatalf("%s: journal holds %v, want Completed and Purged", rule, before)
	}
	if err := e.q.CommitOutcomes(e.ctx, before[1].Seq); err != nil {
		t.Fatalf("CommitOutcomes: %v", err)
	}
	e.reopen(t)

	if n := qlen(t, e, "d"); n != 3 {
		t.Errorf("%s: Len = %d after reopen, want 3", rule, n)
	}
	if c, err := e.q.OutcomesCursor(e.ctx); err != nil || c != before[1].Seq {
		t.Errorf("%s: OutcomesCursor = %d, %v after reopen; want %d", rule, c, err, before[1].Seq)
	}
	after := outcomes(t, e, before[1].Seq, 1)
	if len(after) != 1 || after[0].Seq != before[1].Seq || after[0].Status != queue.Purged || after[0].Queue != "x" {
		t.Errorf("%s: journal after reopen %v, want %v", rule, after, before[1:])
	}
	d2 := receive(t, e, "d")
	if string(d2.Message.Body) != "2" {
		t.Errorf("%s: a lock held before reopen no longer hides its message: received %q, want %q", rule, d2.Message.Body, "2")
	}
	if err := e.q.Release(e.ctx, "d", d2.LockToken); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, err := e.q.Abandon(e.ctx, "d", d1.LockToken); err != nil {
		t.Fatalf("%s: Abandon with a lock token from before reopen: %v", rule, err)
	}
	if d := receive(t, e, "d"); string(d.Message.Body) != "1" || d.Message.System.DeliveryCount != 2 || d.Attempts != 3 {
		t.Errorf("%s: after reopen and a second Abandon received %q with DeliveryCount %d, Attempts %d; want %q, 2, 3", rule, d.Message.Body, d.Message.System.DeliveryCount, d.Attempts, "1")
	}
	e.reopen(t)
	e.clock.Advance(lock + time.Second)
	if d := receive(t, e, "d"); string(d.Message.Body) != "1" || d.Message.System.DeliveryCount != 2 || d.Attempts != 4 {
		t.Errorf("%s: after a lock ended across reopen received %q with DeliveryCount %d, Attempts %d; want %q, 2, 4", rule, d.Message.Body, d.Message.System.DeliveryCount, d.Attempts, "1")
	}
	if seq := enqueue(t, e, "d", "4", journal); seq <= seqs[3] {
		t.Errorf("%s: Enqueue after reopen got sequence %d, not above %d", rule, seq, seqs[3])
	}
}

var volatile = queue.ReceiveOptions{Lock: lock, NoWait: true, Volatile: true}

func receiveVolatile(t *testing.T, e *env, q string) queue.Delivery {
	t.Helper()
	d, err := e.q.Receive(e.ctx, q, volatile)
	if err != nil {
		t.Fatalf("Receive(%s, Volatile): %v", q, err)
	}
	return d
}

func testVolatileHides(t *testing.T, e *env) {
	const rule = "a volatile lock hides the message from other receivers, durable or volatile, until it ends"
	enqueue(t, e, "d", "0", journal)
	enqueue(t, e, "d", "1", journal)
	d0 := receiveVolatile(t, e, "d")
	if string(d0.Message.Body) != "0" || d0.Attempts != 1 || d0.LockToken == "" || !sameTime(d0.LockedUntil, e.clock.Now().Add(lock)) {
		t.Errorf("%s: first volatile delivery is %q, Attempts %d, token %q, locked until %v", rule, d0.Message.Body, d0.Attempts, d0.LockToken, d0.LockedUntil)
	}
	if d1 := receive(t, e, "d"); string(d1.Message.Body) != "1" {
		t.Errorf("%s: a durable receiver got %q, want the next message", rule, d1.Message.Body)
	}
	empty(t, e, rule, "d")
	if _, err := e.q.Receive(e.ctx, "d", volatile); !errors.Is(err, queue.ErrEmpty) {
		t.Errorf("%s: a volatile receiver got %v, want queue.ErrEmpty", rule, err)
	}
	e.clock.Advance(lock + time.Second)
	d2 := receiveVolatile(t, e, "d")
	switch {
	case string(d2.Message.Body) != "0" || d2.Attempts != 2:
		t.Errorf("%s: after the lock ended received %q with Attempts %d, want %q, 2", rule, d2.Message.Body, d2.Attempts, "0")
	case d2.LockToken == d0.LockToken:
		t.Errorf("%s: the new delivery reuses the old lock token", rule)
	}
	if err := e.q.Complete(e.ctx, "d", d0.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: Complete with an ended volatile lock returned %v, want queue.ErrLockLost", rule, err)
	}
}

func testVolatileSettles(t *testing.T, e *env) {
	const rule = "Complete, Reject, Abandon and Release work on a volatile lock and are durable"
	for i := range 4 {
		enqueue(t, e, "d", fmt.Sprint(i), journal)
	}
	d := receiveVolatile(t, e, "d")
	if err := e.q.Release(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("%s: Release: %v", rule, err)
	}
	d = receiveVolatile(t, e, "d")
	if string(d.Message.Body) != "0" || d.Attempts != 2 || d.Message.System.DeliveryCount != 0 {
		t.Errorf("%s: after Release received %q, Attempts %d, DeliveryCount %d; want %q, 2, 0", rule, d.Message.Body, d.Attempts, d.Message.System.DeliveryCount, "0")
	}
	if dead, err := e.q.Abandon(e.ctx, "d", d.LockToken); err != nil || dead {
		t.Fatalf("%s: Abandon = %v, %v", rule, dead, err)
	}
	d = receiveVolatile(t, e, "d")
	if string(d.Message.Body) != "0" || d.Message.System.DeliveryCount != 1 {
		t.Errorf("%s: after Abandon received %q with DeliveryCount %d; want %q, 1", rule, d.Message.Body, d.Message.System.DeliveryCount, "0")
	}
	at := e.clock.Now()
	if err := e.q.Complete(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("%s: Complete: %v", rule, err)
	}
	if err := e.q.Complete(e.ctx, "d", d.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: a second Complete returned %v, want queue.ErrLockLost", rule, err)
	}
	d = receiveVolatile(t, e, "d")
	if err := e.q.Reject(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("%s: Reject: %v", rule, err)
	}
	if n := qlen(t, e, "d"); n != 2 {
		t.Errorf("%s: Len = %d, want 2", rule, n)
	}
	wantOutcomes(t, e, rule, "d", at, queue.Completed, "0", queue.Rejected, "1")
	if e.h.Persistent {
		e.reopen(t)
		if n := qlen(t, e, "d"); n != 2 {
			t.Errorf("%s: Len = %d after reopen, want 2", rule, n)
		}
		if d := receive(t, e, "d"); string(d.Message.Body) != "2" {
			t.Errorf("%s: after reopen received %q, want %q", rule, d.Message.Body, "2")
		}
		wantOutcomes(t, e, rule, "d", at, queue.Completed, "0", queue.Rejected, "1")
	}
}

func testVolatileReopen(t *testing.T, e *env) {
	const rule = "after reopen a volatile lock is gone: its message is visible at once, counting at least the attempts made durable and at most those made"
	enqueue(t, e, "d", "0", journal)
	enqueue(t, e, "d", "1", journal)
	d := receive(t, e, "d") // a durable lock, released: Attempts 1 is durable
	if err := e.q.Release(e.ctx, "d", d.LockToken); err != nil {
		t.Fatalf("Release: %v", err)
	}
	d0 := receiveVolatile(t, e, "d")
	d1 := receiveVolatile(t, e, "d")
	if d0.Attempts != 2 || d1.Attempts != 1 {
		t.Fatalf("%s: volatile deliveries with Attempts %d, %d; want 2, 1", rule, d0.Attempts, d1.Attempts)
	}
	e.reopen(t)
	for _, want := range []struct {
		body     string
		min, max uint32 // Attempts: one more than made durable, or than made
	}{{"0", 2, 3}, {"1", 1, 2}} {
		if d := receiveVolatile(t, e, "d"); string(d.Message.Body) != want.body || d.Attempts < want.min || d.Attempts > want.max {
			t.Errorf("%s: after reopen received %q with Attempts %d, want %q with %d to %d", rule, d.Message.Body, d.Attempts, want.body, want.min, want.max)
		}
	}
	if err := e.q.Complete(e.ctx, "d", d0.LockToken); !errors.Is(err, queue.ErrLockLost) {
		t.Errorf("%s: Complete with a volatile token from before reopen returned %v, want queue.ErrLockLost", rule, err)
	}
}
