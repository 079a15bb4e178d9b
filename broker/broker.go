package broker

import (
	"context"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/auth"
	"github.com/hubkit/hubkit/queue"
)

// A Broker serves devices on one protocol. The hub owns it: it calls Start
// once, then Disconnect whenever an identity is disabled or deleted, and
// finally Shutdown or Close. All methods are safe for concurrent use.
type Broker interface {
	// Start binds the broker's listeners, starts its goroutines and
	// returns once devices can connect, talking to h from then on. ctx
	// bounds startup only: the broker's work runs on its own context
	// until Shutdown or Close. Start may be called once; a bind error is
	// returned with nothing left running, and after Shutdown or Close
	// Start returns hubkit.ErrClosed.
	Start(ctx context.Context, h Hub) error
	// Disconnect closes the connections of an identity that was disabled or
	// deleted. With moduleID empty it closes the device's connection and
	// those of all the device's modules, since a module goes with its
	// device; otherwise only that module's. It does not wait for the
	// connections to end, and a broker holding no connections (HTTPS) may
	// do nothing.
	Disconnect(deviceID, moduleID string)
	// Shutdown stops accepting connections, lets the messages already
	// handed to the hub finish and their acknowledgements go out, closes
	// every connection and waits for the broker's goroutines. When ctx
	// ends first it falls back to Close and returns ctx.Err(). It is
	// idempotent; afterwards every method returns hubkit.ErrClosed.
	Shutdown(ctx context.Context) error
	// Close closes every listener and connection at once and waits for
	// the broker's goroutines; it never blocks without bound.
	// Acknowledgements not yet written are lost, so devices send those
	// messages again. It is idempotent, and afterwards every method
	// returns hubkit.ErrClosed.
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

	// Connected reports that a connection of id was accepted, for
	// connection-state events and the registry. The broker calls it once
	// per connection, after the device was told it is connected (CONNACK
	// on MQTT), from that connection's goroutine; it should not block for
	// long. Calls for one identity come in order with Disconnected: a
	// replaced connection is reported disconnected before its replacement
	// is reported connected.
	Connected(ctx context.Context, id auth.Identity)

	// Disconnected reports that a connection of id reported by Connected
	// has ended, for whatever reason: the device left, it was replaced,
	// disabled or its token expired, or the broker stopped. It is called
	// exactly once per connection reported connected and never for one
	// that was not, in order with Connected for the same identity, from
	// whichever goroutine ends the connection. It may run during Shutdown
	// or Close with a ctx that is already cancelled; it should not block
	// for long.
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
