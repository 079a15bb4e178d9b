// Package hub composes hubkit's parts into a running IoT hub: devices reach
// it through brokers (MQTT, HTTPS), their messages are routed to endpoints,
// and the service side sends cloud-to-device messages, reads their
// feedback, manages the registry and reads the built-in events endpoint,
// through Go calls or the REST API of package hub/service.
//
// # Lifecycle
//
// [New] checks a [Config], endpoint delivery settings included, and builds
// a [Hub] without running anything. [Hub.Start] opens the store (Pebble in
// Config.Dir unless Config.Queue is set), recovers cursors, queues and the
// feedback journal, starts the background work and then the brokers.
// [Hub.Shutdown] stops the brokers, commits what was handed over, flushes
// batched feedback, lets each endpoint's send in flight finish and waits
// for every goroutine; [Hub.Close] stops at once, and ends a Start in
// progress first. While either stops the brokers, the hub refuses new work
// but still serves the brokers' own calls (messages handed over,
// settlements, releases of unacknowledged cloud-to-device messages,
// disconnects), so that the store and the registry are left current. After
// either, every method returns hubkit.ErrClosed. A second Shutdown waits
// for the first. An endpoint's delivery stopped by a store error starts
// again after a backoff, its health unhealthy meanwhile. A hub has no
// global state: a process may run several, each on its own store.
//
// # Device-to-cloud
//
// [Hub.Ingest] validates and stamps a message, asks the router for its
// endpoints and queues it for the one committer goroutine, which appends
// everything pending, for every endpoint, in one durable write and then
// calls the done callbacks in order: a broker acknowledges only durable
// messages, and many messages share one sync. Each custom endpoint reads
// its own stream through its own delivery loop. The built-in endpoint
// ("events") is read with [Hub.Receive] by consumer groups, from a position
// and with durable checkpoints, as Event Hubs consumers read IoT Hub's.
// Messages of a device always land in the partition FNV-1a(deviceId) mod
// Config.Partitions.
//
// # Cloud-to-device
//
// [Hub.SendC2D] applies IoT Hub's send-time checks and queues the message
// in the device's queue of the store, which brokers read through
// [Hub.ReceiveC2D] and [Hub.Settle]. The outcome of every message that asks
// for feedback is journaled by the store in the same write as the outcome
// itself; a feedback goroutine turns the journal into feedback messages of
// up to Config.FeedbackBatchSize records, flushed when a batch is full or
// Config.FeedbackBatchDelay after the last flush, each enqueued in
// the same atomic write that moves the journal cursor past its records, so
// that a crash neither loses nor repeats a record. The service reads them
// with [Hub.ReceiveFeedback].
//
// # Locks
//
// Lock order: a device's stripe lock (SendC2D shares it, DeleteDevice
// holds it, so that a send never lands after the delete's purge), then the
// registry's write lock, then the mutex of the disconnects waiting for the
// brokers, which the registry's OnChange takes. groupsMu serialises
// consumer group changes and the connection-state writer's mutex guards
// the states waiting for the registry; neither is held with another.
// lifeMu, held by Start and by Shutdown and Close while they change the
// hub's state, is taken before any of these and never under one. The D2C
// committer (internal/groupcommit) guards its own channel.
package hub
