// Package brokertest provides a small, honest [broker.Hub] for testing and
// benchmarking brokers without the whole hub: device-to-cloud messages are
// appended to a [queue.Streams] by one group-committing goroutine, and
// cloud-to-device messages come from [queue.DeviceQueues], one queue per
// device id. The committer is the hub's own (internal/groupcommit).
package brokertest
