// Package pebble is hubkit's default [queue.DurableQueue]: one Pebble
// database per hub, holding the device-to-cloud streams, the cloud-to-device
// queues with their outcome journal, and the KV records.
//
// # Writes
//
// Every change goes through one committer goroutine. It takes all the
// requests waiting for it, applies them in arrival order to one Pebble batch
// (assigning sequence numbers as it goes), hands the batch to Pebble with a
// synced write, and passes it on to a second goroutine that waits for the
// fsync and only then publishes the new records to readers and answers the
// callers. So concurrent writers share fsyncs (group commit), a call returns
// only once its change is durable, and while one batch waits for the disk the
// committer gathers the requests that arrive into the next, which it hands
// to Pebble as soon as that sync ends: the log syncs one batch at a time
// anyway, and one batch per sync costs far less than one per request. [Store.AppendAsync] ([queue.AsyncAppender])
// is the same request without the wait: the second goroutine calls its done
// function where it would have answered the caller, so a caller that
// pipelines its appends keeps the committer fed.
//
// Because one goroutine applies every change, the in-memory state of the
// device queues (order, locks, delivery counts) and the cursors needs no
// lock: it is owned by the committer. Calls that read that state (Len, Peek,
// Cursor, OutcomesCursor, KV Get and List) are also requests: they read when
// applied and are answered after the batch they joined is durable, so no
// caller ever sees a change that a crash could still take back. Stream reads
// (Read, Bounds, SeekTime, Outcomes) go to Pebble directly and stop at the
// last published sequence number.
//
// After a write fails the store refuses every later write with that error;
// reopen it to recover from what is on disk.
//
// # Keys
//
// Keys are built by internal/codec: a one-byte space per concern followed
// by length-prefixed names and big-endian integers. Each stream partition and
// each device queue keeps a head record (next sequence number, and for
// streams the last enqueued time and the bytes appended so far) written in
// the same batch as the records, so counters are recovered exactly on Open.
// A stream record's value starts with its enqueued time and the partition's
// byte count before it; both never decrease along a partition, so SeekTime
// and retention binary-search the records themselves and need no second
// index written on the append path.
//
// # Memory
//
// Open loads what the committer needs of every device-queue message (its
// sequence number, expiry, lock and counts, not the message itself: about
// a hundred bytes each) and the head of every stream partition, so Len,
// MaxDepth and Receive never scan the disk. Message bodies stay in Pebble.
//
// # Locks
//
// Store.mu guards closing and the request channel; partition.mu guards a
// partition's wake-up channel; Store.partsMu guards the partition map; they
// are never held together except partsMu then partition.mu.
package pebble
