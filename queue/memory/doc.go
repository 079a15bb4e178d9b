// Package memory is a [queue.DurableQueue] that keeps everything in memory.
// It has the semantics of queue/pebble without the durability: what it
// holds is lost when the process ends or the store is closed. Tests and
// examples use it where a disk would only slow them down.
//
// One mutex guards all state; every change closes a channel that waiting
// readers select on, so that Read, Receive and Outcomes wake at once; a
// Receive waiting for a lock to end also sets a timer for it. A background
// goroutine, started by [New] and joined by [Store.Close], runs
// [Store.Sweep] every [Options.SweepInterval] to expire device-queue
// messages and trim streams by their retention.
package memory
