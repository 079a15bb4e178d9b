// Package endpointtest is the conformance suite of [endpoint.Endpoint].
// Every endpoint, hubkit's and a user's own, runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		endpointtest.Run(t, endpointtest.Harness{New: newForTest})
//	}
//
// The suite checks what the Endpoint doc comment promises: order within a
// batch and across batches, at-least-once delivery when the sink fails
// and recovers, oversized messages refused with a non-retryable error,
// sends that end with their context, and an idempotent Close that cancels
// a send in progress, after which Send returns hubkit.ErrClosed. It uses
// only the testing package.
//
// The checks of a Send blocked in its sink need a sink that can stall and
// say when it holds a send ([HoldingSink]); a harness whose sink cannot
// stall sets [Harness.CannotStall], and those checks are skipped, saying why.
package endpointtest
