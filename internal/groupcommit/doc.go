// Package groupcommit gathers the appends of many goroutines into few
// durable writes: the committer behind every device-to-cloud
// acknowledgement, shared by the hub and by broker tests.
package groupcommit
