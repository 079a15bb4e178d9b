// Package endpoint delivers routed device-to-cloud messages to custom
// endpoints: the [Endpoint] interface every sink implements, and the
// [Delivery] engine that feeds one endpoint from its stream.
//
// # Data flow
//
// The hub appends each routed message to the endpoint's own stream in the
// store (a [queue.Streams]). One Delivery per endpoint reads every
// partition of that stream from the endpoint's durable cursor, sends
// batches (up to MaxBatch messages or MaxBatchBytes, waiting up to Linger
// for a batch to fill), and moves the cursor only after the endpoint
// accepted the batch. Each Delivery has its own goroutines, cursor, retry
// state and health, so a slow or dead endpoint never delays another.
//
// # Guarantees
//
// Delivery is at-least-once and in order per partition: after a crash or a
// failed send, the messages after the cursor are sent again, in order. A
// message the endpoint refuses for good (too large, invalid) is dropped and
// counted, as is a message older than the Retention of an endpoint that
// does not accept it, and a message the store's own retention of the
// stream removed before it was delivered; everything else is retried.
//
// # Retry and health
//
// Failed sends are retried after waits that double from 1 s to 60 s with
// jitter; [Delivery.Wake] ends a wait early, for the owner who knows the
// sink is back (a fixed configuration, a routing update). Health follows IoT Hub:
// unknown before the first send, healthy, unhealthy while sends fail, dead
// after a retry period (1 hour) of failures, when the engine tries only
// every ReviveInterval, degraded after a recovery until the backlog is
// delivered, then healthy again.
//
// # Implementations
//
// [Func] adapts a Go function. Sub-packages hold the others:
// endpoint/amqp (AMQP 1.0 brokers, Event Hubs, Service Bus),
// endpoint/webhook (HTTP POST of JSON) and endpoint/file (files in IoT
// Hub's storage endpoint layout). endpoint/endpointtest is the conformance
// suite they all run.
//
// This package imports no client library: users and implementers depend on
// it alone.
package endpoint
