package queue

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/hubkit/hubkit"
)

// Errors returned by the roles. Calls after Close return [hubkit.ErrClosed];
// calls whose context ends return an error that errors.Is matches to
// context.Canceled or context.DeadlineExceeded.
var (
	// ErrNotFound is returned by KV.Get for a missing key and by cursor
	// reads for a cursor never committed.
	ErrNotFound = errors.New("queue: not found")
	// ErrLockLost is returned when a lock token is unknown, already used or
	// expired. It wraps hubkit.ErrDeviceMessageLockLost.
	ErrLockLost = lockLost{}
	// ErrQueueFull is returned by Enqueue when the queue holds MaxDepth
	// messages. It wraps hubkit.ErrDeviceMaximumQueueDepthExceeded.
	ErrQueueFull = queueFull{}
	// ErrEmpty is returned by Receive with NoWait when no message is visible.
	ErrEmpty = errors.New("queue: empty")
)

type lockLost struct{}

func (lockLost) Error() string { return "queue: lock lost" }
func (lockLost) Unwrap() error { return hubkit.ErrDeviceMessageLockLost }

type queueFull struct{}

func (queueFull) Error() string { return "queue: queue full" }
func (queueFull) Unwrap() error { return hubkit.ErrDeviceMaximumQueueDepthExceeded }

// DurableQueue is everything a hub needs from storage. Implementations are
// safe for concurrent use by any number of goroutines.
//
// Close ends the store: calls blocked in Read or Receive return
// hubkit.ErrClosed, background work stops, and every later call returns
// hubkit.ErrClosed. Close is idempotent and never blocks without bound.
type DurableQueue interface {
	Streams
	DeviceQueues
	KV
	io.Closer
}

// A Position locates a record in a stream partition.
type Position struct {
	// Partition is the partition index.
	Partition int
	// Offset is the record's offset: opaque, strictly increasing within the
	// partition. Implementations may make it equal to Sequence.
	Offset uint64
	// Sequence is the record's sequence number: the first record of a
	// partition has 0 and each record adds 1, with no gaps.
	Sequence uint64
	// EnqueuedTime is when the record was appended, by the store's clock.
	EnqueuedTime time.Time
}

// An Entry is one message to append: which stream and partition it goes to.
type Entry struct {
	// Stream names the stream; the stream exists once something is
	// appended to it.
	Stream string
	// Partition is the partition index, from 0.
	Partition int
	// Message is the message to store; Append neither keeps nor changes it.
	Message *hubkit.Message
}

// A Record is a stored stream message with its position. The store sets
// Message.System.SequenceNumber and Message.System.EnqueuedTime from the
// position.
type Record struct {
	Position
	Message hubkit.Message
}

// Retention says how long a stream keeps records. A record may be removed
// once it is older than MaxAge, or once the partition holds more than
// MaxBytes of newer records. Zero fields mean no limit of that kind.
// Removal happens in the background; it never slows Append.
type Retention struct {
	// MaxAge is how long after its enqueued time a record is kept. Zero
	// means no age limit.
	MaxAge time.Duration
	// MaxBytes is how many bytes of records a partition keeps, counting the
	// newest first. Zero means no size limit.
	MaxBytes int64
}

// Streams stores device-to-cloud messages in named, partitioned,
// append-only logs. A stream exists once something is appended to it;
// partitions are numbered from 0 and need not be declared.
type Streams interface {
	// Append stores the entries durably, in order, in one atomic write: when
	// it returns nil every entry survives a crash, and it returns the
	// position of each entry, in entry order. Within a partition, entries of
	// one call get consecutive sequence numbers, and calls are ordered by
	// the store. Append does not keep entries or their messages. An
	// error means none of the entries was stored.
	Append(ctx context.Context, entries []Entry) ([]Position, error)

	// Read appends to dst up to max records of the partition, starting at
	// sequence number from, and returns the extended slice. When no record
	// at or after from exists yet, Read waits until one is appended, ctx
	// ends or the store closes. Records before the partition's first
	// retained record are skipped. The returned messages share no memory
	// with the store; dst's existing elements may be reused to save
	// allocations. A max below 1 gives an error wrapping
	// hubkit.ErrArgumentInvalid.
	Read(ctx context.Context, stream string, partition int, from uint64, max int, dst []Record) ([]Record, error)

	// Bounds returns the sequence number of the first retained record of
	// the partition and the sequence number the next append will get. They
	// are equal when the partition is empty, and both 0 for a partition
	// never appended to. Errors: hubkit.ErrClosed, ctx's error, and an
	// error wrapping hubkit.ErrArgumentInvalid for a negative partition or
	// a stream name the store cannot hold.
	Bounds(ctx context.Context, stream string, partition int) (first, next uint64, err error)

	// SeekTime returns the sequence number of the first record enqueued at
	// or after t, or the next sequence number if there is none. Its errors
	// are those of Bounds.
	SeekTime(ctx context.Context, stream string, partition int, t time.Time) (uint64, error)

	// Commit durably sets the named cursor of the partition to next, the
	// sequence number its owner will read next. A cursor never moves
	// backwards: a next lower than the stored value is ignored. Errors:
	// hubkit.ErrClosed, ctx's error, and an error wrapping
	// hubkit.ErrArgumentInvalid for a negative partition or a cursor or
	// stream name the store cannot hold.
	Commit(ctx context.Context, cursor, stream string, partition int, next uint64) error

	// Cursor returns the value last committed for the named cursor, or
	// ErrNotFound.
	Cursor(ctx context.Context, cursor, stream string, partition int) (uint64, error)

	// SetRetention sets the retention of a stream. Streams without one keep
	// everything.
	SetRetention(stream string, r Retention) error
}

// AsyncAppender is an optional role of [Streams] for stores that pipeline
// their writes. The hub discovers it with a type assertion: when the store
// has it, the hub's committer hands each group commit to AppendAsync and
// goes straight back to gathering the next one while the store syncs,
// instead of waiting in Append, so that a message waits for one sync
// rather than for the one in progress and then its own.
type AsyncAppender interface {
	// AppendAsync is Append without the wait. It returns once the entries
	// are queued for the store's next write, blocking only while the store
	// has too many writes queued, and calls done exactly once: with the
	// entries' positions, in entry order, once they are durable and
	// readable with Read; or with an error once the write failed, and then
	// none of the entries was stored. entries may be empty; done is still
	// called, in its turn.
	//
	// Calls made from one goroutine are stored, and their done calls made,
	// in call order, whatever their outcome. done is called from a
	// goroutine of the store, or, when the store answers at once (it is
	// closed, or it writes synchronously as queue/memory does), from the
	// calling goroutine before AppendAsync returns. done must not block and
	// must not call the store: it runs on the store's write path. The
	// positions slice belongs to done.
	//
	// ctx is checked when the store takes the entries into a write: if it
	// has ended by then, done gets an error that errors.Is matches to
	// ctx's and nothing is stored; once taken, the write completes whatever
	// ctx does. After Close, done gets hubkit.ErrClosed; Close returns only
	// after every done of a call that AppendAsync accepted before Close.
	// AppendAsync does not keep entries or their messages after it
	// returns.
	AppendAsync(ctx context.Context, entries []Entry, done func([]Position, error))
}

// EnqueueOptions are the per-message settings of [DeviceQueues.Enqueue].
type EnqueueOptions struct {
	// MaxDepth refuses the message with ErrQueueFull when the queue already
	// holds this many messages (enqueued or locked). Zero means no limit.
	MaxDepth int
	// MaxDeliveryCount dead-letters a message when an abandon brings its
	// delivery count to this value. Zero means no limit.
	MaxDeliveryCount uint32
	// Journal records the message's terminal outcome in the outcome
	// journal (see [DeviceQueues.Outcomes]).
	Journal bool
	// CommitOutcomes, when non-zero, makes the same atomic write that
	// stores the message also move the outcome journal cursor to this
	// value, as [DeviceQueues.CommitOutcomes] does; it never moves
	// backwards. A refused Enqueue (an error, ErrQueueFull included) does
	// not move it. The hub enqueues each feedback message with the cursor
	// past the outcomes it reports, so that a crash can neither lose nor
	// repeat them.
	CommitOutcomes uint64
}

// ReceiveOptions are the settings of [DeviceQueues.Receive].
//
// Warning: the zero value is refused. Lock has no default, because how
// long a message stays locked is the receiver's decision (IoT Hub's
// minute, an HTTPS client's IotHub-MessageLockTimeout), not the store's,
// so Receive with ReceiveOptions{} returns an error wrapping
// hubkit.ErrArgumentInvalid; set Lock. The other fields' zero values are
// the usual choice: wait for a message, and lock it durably.
type ReceiveOptions struct {
	// Lock is how long the message stays invisible to other receivers
	// before it becomes visible again. It must be positive: zero or a
	// negative duration makes Receive return an error wrapping
	// hubkit.ErrArgumentInvalid, and there is no default.
	Lock time.Duration
	// NoWait makes Receive return ErrEmpty at once when no message is
	// visible, instead of waiting.
	NoWait bool
	// Volatile keeps the lock in memory only: Receive writes nothing for
	// it, so it costs no sync of its own (it may still wait for writes of
	// other callers already under way, since it never returns a message
	// that is not durable yet). The lock hides the message from other
	// receivers until it ends or is settled, as a durable lock does, and
	// Complete, Reject, Abandon and Release work on it and are durable.
	// After a crash or a reopen the message is visible again at once; its
	// Attempts count at least those last made durable (by an Abandon, a
	// Release or a durable lock) and at most those made, so its next
	// delivery may report fewer attempts than were made. Brokers whose deliveries die with their connection, like MQTT,
	// use it: a device that reconnects after a crash gets its messages
	// again without waiting for locks of a dead process to end.
	Volatile bool
}

// A Delivery is a message received from a device queue, locked for its receiver.
type Delivery struct {
	// Queue is the queue the message came from.
	Queue string
	// Message is the message, with SequenceNumber, EnqueuedTime,
	// ExpiryTime and DeliveryCount set by the store.
	Message hubkit.Message
	// LockToken settles this delivery, and only this one: a new delivery of
	// the same message gets a new token.
	LockToken string
	// LockedUntil is when the lock ends and the message becomes visible again.
	LockedUntil time.Time
	// Attempts counts the deliveries of this message, this one included; a
	// value above 1 means the message was delivered before (MQTT sets DUP).
	Attempts uint32
}

// Status is the terminal state a device-queue message reached.
type Status uint8

// Terminal outcomes of a device-queue message. The names are those of IoT
// Hub's feedback status codes.
const (
	// Completed: the receiver completed the message (MQTT PUBACK, HTTPS DELETE).
	Completed Status = iota + 1
	// Rejected: the receiver rejected it; it was dead-lettered.
	Rejected
	// Expired: its expiry time passed before it was completed.
	Expired
	// DeliveryCountExceeded: an abandon reached MaxDeliveryCount.
	DeliveryCountExceeded
	// Purged: the queue was purged.
	Purged
)

var statusNames = [...]string{"", "Success", "Rejected", "Expired", "DeliveryCountExceeded", "Purged"}

// String returns the IoT Hub feedback status code: Success, Rejected,
// Expired, DeliveryCountExceeded or Purged.
func (s Status) String() string {
	if int(s) < len(statusNames) && s > 0 {
		return statusNames[s]
	}
	return "Unknown"
}

// An Outcome records that a journaled message reached a terminal state.
type Outcome struct {
	// Seq is the outcome's position in the journal: strictly increasing, no gaps.
	Seq uint64
	// Queue is the queue the message was in.
	Queue string
	// Status is what happened to it.
	Status Status
	// Time is when it happened, by the store's clock.
	Time time.Time
	// Message is the message's system and application properties; the
	// body is not kept.
	Message hubkit.Message
}

// DeviceQueues stores cloud-to-device messages and feedback in per-key FIFO
// queues. A queue is named by any non-empty string (the hub uses one per
// device); it exists while it holds messages.
//
// A message is Enqueued (visible), then Invisible while locked by one
// receiver, until it is completed, rejected, abandoned, its lock ends, it
// expires or the queue is purged. Messages are received in ascending
// sequence order; an abandoned or released message takes its old place.
// Expired messages are never received: expiry is checked when receiving and
// by [DeviceQueues.Expire].
type DeviceQueues interface {
	// Enqueue appends msg to the queue durably and returns its sequence
	// number, which increases strictly within the queue. The message's
	// System.ExpiryTime, when set, is its expiry; its EnqueuedTime and
	// SequenceNumber are stamped by the store. Enqueue does not keep msg.
	Enqueue(ctx context.Context, queue string, msg *hubkit.Message, opts EnqueueOptions) (uint64, error)

	// Receive locks the first visible message of the queue for opts.Lock
	// and returns it. Without NoWait it waits until a message is visible,
	// ctx ends or the store closes. The lock is durable unless
	// opts.Volatile: after a crash the message stays invisible until the
	// lock ends.
	Receive(ctx context.Context, queue string, opts ReceiveOptions) (Delivery, error)

	// Complete ends a delivery: the message is removed (Completed). An
	// unknown, used or expired token gives ErrLockLost.
	Complete(ctx context.Context, queue, lockToken string) error

	// Reject ends a delivery by dead-lettering the message (Rejected). An
	// unknown, used or expired token gives ErrLockLost.
	Reject(ctx context.Context, queue, lockToken string) error

	// Abandon makes the message visible again and adds 1 to its delivery
	// count; when the count reaches the message's MaxDeliveryCount it is
	// dead-lettered instead (DeliveryCountExceeded), and deadLettered is true.
	// An unknown, used or expired token gives ErrLockLost.
	Abandon(ctx context.Context, queue, lockToken string) (deadLettered bool, err error)

	// Release makes the message visible again without counting a delivery,
	// as when a connection ends before the receiver settled it. An
	// unknown, used or expired token gives ErrLockLost.
	Release(ctx context.Context, queue, lockToken string) error

	// Purge removes every message of the queue, visible or locked (Purged),
	// and returns how many it removed.
	Purge(ctx context.Context, queue string) (int, error)

	// Len returns the number of messages in the queue, enqueued or locked,
	// not counting expired ones.
	Len(ctx context.Context, queue string) (int, error)

	// Peek returns up to max messages of the queue in order without
	// locking them, locked ones included, expired ones not. A max below 1
	// gives an error wrapping hubkit.ErrArgumentInvalid.
	Peek(ctx context.Context, queue string, max int) ([]hubkit.Message, error)

	// Expire dead-letters every message whose expiry time has passed
	// (Expired) and returns how many. Implementations also run it in the
	// background; tests call it after moving the clock.
	Expire(ctx context.Context) (int, error)

	// Outcomes returns up to max journal outcomes from sequence from on,
	// waiting like Streams.Read until one exists. Each terminal transition
	// of a journaled message appends exactly one outcome, in the same
	// atomic write as the transition itself. A max below 1 gives an error
	// wrapping hubkit.ErrArgumentInvalid.
	Outcomes(ctx context.Context, from uint64, max int) ([]Outcome, error)

	// CommitOutcomes durably records that outcomes before next were
	// consumed; the store may then discard them. The returned value of
	// OutcomesCursor never moves backwards.
	CommitOutcomes(ctx context.Context, next uint64) error

	// OutcomesCursor returns the value last given to CommitOutcomes, or 0.
	OutcomesCursor(ctx context.Context) (uint64, error)
}

// BatchCompleter is an optional role of [DeviceQueues] for stores that can
// complete several deliveries of one queue in one write. The hub discovers
// it with a type assertion: a broker whose device acknowledged several
// messages at once then waits for one sync rather than one per message.
type BatchCompleter interface {
	// CompleteBatch completes the deliveries of lockTokens in the queue as
	// Complete does, each its own outcome, all in one atomic write. It
	// returns one error per token, in token order: nil once that message
	// is completed and durable, an error wrapping ErrLockLost for an
	// unknown, used or expired token (a token given twice is used the
	// second time), or, for every token not refused so, the error that
	// ended the whole call (ctx, Close, a failed write), and then none of
	// them was completed. It may be called from any goroutine, does not
	// keep lockTokens, and returns a new slice.
	CompleteBatch(ctx context.Context, queue string, lockTokens []string) []error
}

// A KVOp is one write of [KV.Write]: a put, or a delete when Delete is set.
type KVOp struct {
	// Key is the key written or deleted.
	Key string
	// Value is the value put under Key; ignored when Delete is set.
	// Write does not keep it.
	Value []byte
	// Delete makes the op remove Key instead of putting Value.
	Delete bool
}

// A KVPair is a key and its value.
type KVPair struct {
	// Key is the stored key.
	Key string
	// Value is a copy of the value stored under Key; it belongs to the caller.
	Value []byte
}

// KV stores small records (device registry entries, settings) in the same
// store as the messages, so that related writes commit together.
type KV interface {
	// Get returns a copy of the value stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Write applies ops atomically and durably, in order.
	Write(ctx context.Context, ops ...KVOp) error
	// List returns up to limit pairs whose keys start with prefix and sort
	// after the key after (use "" to start), in key order. A limit below 1
	// gives an error wrapping hubkit.ErrArgumentInvalid: there is no "all",
	// so page with after.
	List(ctx context.Context, prefix, after string, limit int) ([]KVPair, error)
}
