// Package queuetest is the conformance suite for [queue.DurableQueue].
// Every implementation, hubkit's own and a user's, calls [Run] from its
// tests:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, queuetest.Harness{
//			Persistent: true,
//			Open: func(t *testing.T, dir string, now func() time.Time) queue.DurableQueue {
//				q, err := mystore.Open(dir, mystore.Options{Now: now})
//				if err != nil {
//					t.Fatal(err)
//				}
//				return q
//			},
//		})
//	}
//
// Run checks what the doc comments of package queue promise, one subtest
// per rule, and each failure names the rule it broke. It uses only the
// standard library, so an implementation inherits no test dependencies.
//
// # Time
//
// The store under test must take every time it needs (enqueued times,
// expiry, lock timeouts, retention) from the now function given to
// [Harness.Open]. Run drives that clock with a [Clock] and never sleeps.
//
// # Background work
//
// Retention and expiry run in the background. When the store implements
// [Sweeper], Run calls Sweep to have that work done at once; otherwise it
// polls, for up to [Harness.Patience], for the background work to happen.
//
// # Optional roles
//
// When the store implements [queue.AsyncAppender], Run also checks that
// role: done calls once each and in call order, entries readable and
// durable once done reports them, ended contexts, bad entries, and Close.
//
// # Where package queue is silent
//
// Run holds stores to these readings of the contract:
//
//   - Times may be kept at millisecond precision.
//   - Bad input gives an error, never a panic: a negative partition, a nil
//     message, an empty queue name, a Lock that is not positive. An Append
//     that fails stores none of its entries.
//   - A queue's sequence numbers keep increasing after it empties or is
//     purged, and a partition's after retention removed all its records.
//   - The journal's sequence numbers need not start at 0.
//   - Retention by size may count a record's bytes in any reasonable way
//     (the message's Size, or its encoded size).
//   - A lock token issued before Close still settles its delivery after
//     reopening, while the lock lasts.
//   - A second Close returns nil or hubkit.ErrClosed.
//
// # Running it
//
// Run with -race: some subtests use the store from many goroutines. Do not
// run Run in parallel with other tests of the same process: one subtest
// checks that Close joins the store's goroutines by counting them.
package queuetest
