// Package broker defines the device side of a hub: a [Broker] speaks a
// device protocol (MQTT in broker/mqtt, HTTPS in broker/https), turns
// packets into [hubkit.Message]s and back in IoT Hub's dialect, and talks to
// the hub through the small [Hub] interface.
package broker

import (
	"context"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/queue"
)

// A Broker serves devices on one protocol.
//
// Start binds the broker's listeners and returns once devices can connect;
// ctx bounds startup only. Shutdown stops accepting, lets messages already
// handed to the hub finish and their acknowledgements go out, closes every
// connection and waits for the broker's goroutines; when ctx ends first it
// falls back to Close and returns ctx.Err(). Close stops at once. Both are
// idempotent; afterwards every method returns hubkit.ErrClosed.
type Broker interface {
	Start(ctx context.Context, h Hub) error
	// Disconnect closes the connections of an identity that was disabled or
	// deleted. With moduleID empty it closes the device's connection and
	// those of all the device's modules, since a module goes with its
	// device; otherwise only that module's. It does not wait for the
	// connections to end, and a broker holding no connections (HTTPS) may
	// do nothing.
	Disconnect(deviceID, moduleID string)
	Shutdown(ctx context.Context) error
	Close() error
}

// Hub is what a broker needs from the hub. The hub implements it; tests may
// implement it over a queue. All methods are safe for concurrent use.
type Hub interface {
	// Authenticator checks every connection attempt (every request on HTTPS).
	auth.Authenticator

	// Ingest hands over a device-to-cloud message from an authenticated
	// identity. It does not wait for storage: done is called exactly once,
	// from another goroutine, with nil once the message is durable (the
	// broker may then acknowledge it) or with an error wrapping a
	// hubkit.Error if it was refused. For one caller, done calls come in the
	// order of the Ingest calls. Ingest does not keep msg after it returns.
	Ingest(ctx context.Context, id auth.Identity, msg *hubkit.Message, done func(error))

	// Connected and Disconnected report a device connection's state for
	// connection-state events and the registry. On one identity they are
	// called in order; a replaced connection is reported disconnected
	// before its replacement is reported connected.
	Connected(ctx context.Context, id auth.Identity)
	Disconnected(ctx context.Context, id auth.Identity)

	// ReceiveC2D locks the next cloud-to-device message of the device as
	// [queue.DeviceQueues.Receive] does with opts; a zero opts.Lock means
	// the hub's default lock duration. Unless opts.NoWait, it waits until
	// one is available or ctx ends; with NoWait it returns queue.ErrEmpty
	// when none is. A broker whose deliveries end with their connection
	// (MQTT) sets opts.Volatile, so that receiving costs no write and a
	// device reconnecting after a crash gets its messages at once; one that
	// hands out lock tokens to outlive a request (HTTPS) does not.
	ReceiveC2D(ctx context.Context, deviceID string, opts queue.ReceiveOptions) (queue.Delivery, error)

	// Settle ends a delivery: complete, reject, abandon, or release (back
	// to the queue without counting a delivery, as when a connection ends
	// before the device settled). An unknown or expired lock token gives an
	// error wrapping hubkit.ErrDeviceMessageLockLost.
	Settle(ctx context.Context, deviceID, lockToken string, how Settlement) error
}

// BatchCompleter is an optional role of [Hub]: a broker discovers it with a
// type assertion and, when a device acknowledged several C2D messages
// before the broker got round to completing them, completes them in one
// call, which the hub turns into one store write when the store allows.
// Without it the broker calls Settle for each.
type BatchCompleter interface {
	// CompleteC2D completes the deliveries of lockTokens of the device as
	// Settle with Complete does. It returns one error per token, in token
	// order: nil once that message is completed, or an error as Settle
	// would give. It is safe for concurrent use and does not keep
	// lockTokens.
	CompleteC2D(ctx context.Context, deviceID string, lockTokens []string) []error
}

// Settlement is how a device ends a C2D delivery.
type Settlement uint8

// The ways a C2D delivery ends.
const (
	Complete Settlement = iota + 1
	Reject
	Abandon
	Release
)
