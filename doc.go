// Package hubkit is a library for building your own IoT hub: a Go program
// imports it and runs, in its own process, a hub with Azure IoT Hub's
// messaging semantics. Devices that speak to IoT Hub connect to it by
// changing only the host name.
//
// # Parts
//
// A hub is composed of small interfaces, each in the package named for it,
// with default implementations in sub-packages:
//
//   - package hubkit (this one): [Message], its system and application
//     properties, validation, and the errors every part shares.
//   - [github.com/hubkit/hubkit/queue]: DurableQueue, the store. Partitioned
//     append-only streams with cursors and retention for device-to-cloud
//     messages; per-device queues with locks, TTL, delivery counts and
//     dead-lettering for cloud-to-device messages and feedback; a small
//     key-value space for the registry. queue/pebble is the default,
//     queue/memory serves tests and examples, queue/queuetest is the
//     conformance suite every implementation runs.
//
// # Guarantees
//
// What the hub acknowledged survives a crash: a device-to-cloud message is
// acknowledged only once it is durable (group commit: many messages share
// one fsync), and cloud-to-device state changes only by committed calls.
// Delivery is at least once: duplicates are possible, losses are not.
package hubkit
