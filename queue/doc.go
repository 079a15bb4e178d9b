// Package queue defines the storage a hub stands on: [DurableQueue] and the
// roles it is composed of.
//
// A hub keeps three kinds of data, all in one store so that related writes
// commit together:
//
//   - [Streams]: named, partitioned, append-only logs for device-to-cloud
//     messages (the built-in events endpoint, one stream per custom
//     endpoint), read by position or time through durable named cursors,
//     trimmed by retention;
//   - [DeviceQueues]: per-key FIFO queues for cloud-to-device messages and
//     feedback, with depth limits, expiry, locks, delivery counts,
//     dead-lettering and purge, and a journal of every terminal outcome so
//     that feedback is never lost;
//   - [KV]: a small key-value space for records such as the device registry.
//
// This package never imports a storage engine. queue/pebble is the default
// implementation, queue/memory keeps everything in memory for tests and
// examples, and queue/queuetest is the conformance suite every
// implementation, including a user's own, runs from its tests.
//
// # Durability
//
// Every method that changes state returns only once the change is durable:
// when it returns nil, the change survives a crash of the process and of the
// machine. Implementations share the cost among concurrent callers (group
// commit) rather than make callers wait one sync each.
//
// # Time
//
// Expiry and lock timeouts are decided by the store's clock, which
// implementations let tests replace, so that tests are exact and fast.
package queue
