package pebble

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/codec"
	"github.com/hubkit/hubkit/queue"
)

// Layouts of device-queue values before the encoded message or token.
const (
	// msgHeader: enqueued time (8), expiry (8), max delivery count (4), flags (1).
	msgHeader = 21
	// lockHeader: locked until (8), delivery count (4), attempts (4), then the token.
	lockHeader = 16

	flagJournal = 1

	// maxReceiveWait bounds one wait of a blocked Receive while a locked
	// message may time out, so that a clock moved by a test is noticed.
	maxReceiveWait = time.Second
)

// devQueue is one device queue; the committer owns it.
type devQueue struct {
	name   string
	next   uint64
	msgs   []*qmsg // in sequence order
	notify chan struct{}
}

// qmsg is what the committer keeps of a device-queue message: everything
// but the message itself, which stays in Pebble.
type qmsg struct {
	seq           uint64
	expiry        int64 // Unix nanoseconds; 0 means none
	maxDelivery   uint32
	journal       bool
	lockedUntil   int64 // Unix nanoseconds; 0 means not locked
	token         string
	deliveryCount uint32
	attempts      uint32
	// val is the stored value while it is only in the batch being built,
	// while the message is locked, or from Enqueue on when kept (counted
	// in Store.kept, up to Options.QueueMemory), so that neither
	// delivering nor settling reads it back from Pebble.
	val  []byte
	kept bool
	gone bool // removed by Expire, until its queue is compacted
}

// keepLocked keeps v as m's value from now until m is settled, when
// Options.QueueMemory allows; otherwise m holds v only while it is in the
// batch being built.
func (s *Store) keepLocked(m *qmsg, v []byte) {
	m.val = v
	if s.kept+int64(len(v)) <= s.opts.QueueMemory {
		m.kept = true
		s.kept += int64(len(v))
	}
}

// dropLocked forgets m's value.
func (s *Store) dropLocked(m *qmsg) {
	if m.kept {
		s.kept -= int64(len(m.val))
	}
	m.val, m.kept = nil, false
}

func (m *qmsg) expired(now int64) bool { return m.expiry != 0 && now >= m.expiry }
func (m *qmsg) locked(now int64) bool  { return m.token != "" && now < m.lockedUntil }

func queueKey(dst []byte, space codec.Space, q string, seq uint64) []byte {
	dst, _ = codec.AppendKey(dst, codec.Key{Space: space, Name: q, Seq: seq})
	return dst
}

// queueLocked returns the named queue, creating it when new. Committer only.
func (s *Store) queueLocked(name string) *devQueue {
	q := s.queues[name]
	if q == nil {
		q = &devQueue{name: name, notify: make(chan struct{})}
		s.queues[name] = q
	}
	return q
}

func (q *devQueue) wake() {
	close(q.notify)
	q.notify = make(chan struct{})
}

func checkQueue(name string) error {
	if name == "" {
		return argError("empty queue name")
	}
	return checkName("queue name", name)
}

func (s *Store) recoverQueues() error {
	err := s.scan(codec.SpaceQueueHead, func(k codec.Key, v []byte) error {
		next, err := decodeQueueHead(v)
		if err != nil {
			return err
		}
		s.queueLocked(k.Name).next = next
		return nil
	})
	if err != nil {
		return err
	}
	err = s.scan(codec.SpaceQueueMsg, func(k codec.Key, v []byte) error {
		m, err := decodeMsgHeader(k.Seq, v)
		if err != nil {
			return err
		}
		q := s.queueLocked(k.Name)
		q.msgs = append(q.msgs, m)
		q.next = max(q.next, k.Seq+1)
		return nil
	})
	if err != nil {
		return err
	}
	return s.scan(codec.SpaceQueueLock, func(k codec.Key, v []byte) error {
		var lk qmsg
		if err := decodeLock(v, &lk); err != nil {
			return err
		}
		q := s.queues[k.Name]
		if q == nil {
			return nil
		}
		i, ok := slices.BinarySearchFunc(q.msgs, k.Seq, func(m *qmsg, seq uint64) int { return cmpU(m.seq, seq) })
		if !ok {
			return nil
		}
		m := q.msgs[i]
		m.lockedUntil, m.deliveryCount, m.attempts, m.token = lk.lockedUntil, lk.deliveryCount, lk.attempts, lk.token
		return nil
	})
}

// decodeQueueHead decodes a queue head value: the queue's next sequence number.
func decodeQueueHead(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: queue head of %d bytes", codec.ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// decodeMsgHeader decodes the header of the stored value v of the
// device-queue message seq; the message after it is decoded on delivery.
func decodeMsgHeader(seq uint64, v []byte) (*qmsg, error) {
	if len(v) < msgHeader {
		return nil, fmt.Errorf("%w: queue message of %d bytes", codec.ErrCorrupt, len(v))
	}
	return &qmsg{
		seq:         seq,
		expiry:      int64(binary.BigEndian.Uint64(v[8:])),
		maxDelivery: binary.BigEndian.Uint32(v[16:]),
		journal:     v[20]&flagJournal != 0,
	}, nil
}

// decodeLock decodes a lock value, as writeLockLocked writes it, into m's
// delivery state.
func decodeLock(v []byte, m *qmsg) error {
	if len(v) < lockHeader {
		return fmt.Errorf("%w: queue lock of %d bytes", codec.ErrCorrupt, len(v))
	}
	m.lockedUntil = int64(binary.BigEndian.Uint64(v))
	m.deliveryCount = binary.BigEndian.Uint32(v[8:])
	m.attempts = binary.BigEndian.Uint32(v[12:])
	m.token = string(v[lockHeader:])
	return nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Enqueue implements [queue.DeviceQueues].
func (s *Store) Enqueue(ctx context.Context, name string, msg *hubkit.Message, opts queue.EnqueueOptions) (uint64, error) {
	if err := checkQueue(name); err != nil {
		return 0, err
	}
	if msg == nil {
		return 0, argError("nil message")
	}
	if opts.MaxDepth < 0 {
		return 0, argError("negative max depth %d", opts.MaxDepth)
	}
	m := *msg // shallow: only System is changed
	var seq uint64
	err := s.do(ctx, func(cc *commitCtx) error {
		q := s.queueLocked(name)
		now := cc.now(s)
		if _, err := s.expireLocked(cc, q, nanos(now)); err != nil {
			return err
		}
		if opts.MaxDepth > 0 && len(q.msgs) >= opts.MaxDepth {
			return queue.ErrQueueFull
		}
		if err := s.commitOutcomesLocked(cc, opts.CommitOutcomes); err != nil {
			return err
		}
		seq = q.next
		qm := &qmsg{seq: seq, expiry: nanos(m.System.ExpiryTime), maxDelivery: opts.MaxDeliveryCount, journal: opts.Journal}
		m.System.SequenceNumber, m.System.EnqueuedTime, m.System.DeliveryCount = seq, fromNanos(nanos(now)), 0
		v := binary.BigEndian.AppendUint64(make([]byte, 0, msgHeader+m.Size()+64), uint64(nanos(now)))
		v = binary.BigEndian.AppendUint64(v, uint64(qm.expiry))
		v = binary.BigEndian.AppendUint32(v, qm.maxDelivery)
		var flags byte
		if qm.journal {
			flags |= flagJournal
		}
		v = codec.AppendMessage(append(v, flags), &m)
		_ = cc.b.Set(queueKey(cc.buf[:0], codec.SpaceQueueMsg, name, seq), v, nil)
		_ = cc.b.Set(queueKey(cc.buf[:0], codec.SpaceQueueHead, name, 0), binary.BigEndian.AppendUint64(nil, seq+1), nil)
		s.keepLocked(qm, v)
		cc.pending = append(cc.pending, qm)
		q.next++
		q.msgs = append(q.msgs, qm)
		q.wake()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue: enqueue to %q: %w", name, err)
	}
	return seq, nil
}

// loadLocked returns the stored message of m, with its delivery count.
func (s *Store) loadLocked(q *devQueue, m *qmsg) (hubkit.Message, error) {
	v, err := s.valueLocked(q, m)
	if err != nil {
		return hubkit.Message{}, err
	}
	return decodeQueued(v, m)
}

// valueLocked returns the stored value of m, from memory when it is there.
func (s *Store) valueLocked(q *devQueue, m *qmsg) ([]byte, error) {
	if m.val != nil {
		return m.val, nil
	}
	v, err := s.get(queueKey(nil, codec.SpaceQueueMsg, q.name, m.seq))
	if err != nil {
		return nil, fmt.Errorf("load message %d: %w", m.seq, err)
	}
	return v, nil
}

// decodeQueued decodes the stored value v of m, with m's delivery count.
func decodeQueued(v []byte, m *qmsg) (hubkit.Message, error) {
	var msg hubkit.Message
	if len(v) < msgHeader {
		return msg, fmt.Errorf("%w: queue message of %d bytes", codec.ErrCorrupt, len(v))
	}
	if err := codec.DecodeMessage(v[msgHeader:], &msg); err != nil {
		return msg, err
	}
	msg.System.DeliveryCount = m.deliveryCount
	return msg, nil
}

// removeLocked ends message i of q: it deletes it and, when the message is
// journaled, appends its outcome, all in the batch being built.
func (s *Store) removeLocked(cc *commitCtx, q *devQueue, i int, status queue.Status) error {
	m := q.msgs[i]
	if m.journal {
		msg, err := s.loadLocked(q, m)
		if err != nil {
			return err
		}
		msg.Body = nil
		s.journalLocked(cc, q.name, status, &msg)
	}
	s.deleteLocked(cc, q, m)
	q.msgs = slices.Delete(q.msgs, i, i+1)
	return nil
}

// deleteLocked deletes m's keys in the batch being built and forgets its
// value; the caller takes it out of q.msgs.
func (s *Store) deleteLocked(cc *commitCtx, q *devQueue, m *qmsg) {
	_ = cc.b.Delete(queueKey(cc.buf[:0], codec.SpaceQueueMsg, q.name, m.seq), nil)
	if m.attempts > 0 || m.deliveryCount > 0 {
		_ = cc.b.Delete(queueKey(cc.buf[:0], codec.SpaceQueueLock, q.name, m.seq), nil)
	}
	s.dropLocked(m)
}

// journalLocked appends an outcome to the journal in the batch being built.
func (s *Store) journalLocked(cc *commitCtx, q string, status queue.Status, msg *hubkit.Message) {
	v := append(make([]byte, 0, 128), byte(status))
	v = binary.BigEndian.AppendUint64(v, uint64(nanos(cc.now(s))))
	v, _ = codec.AppendName(v, q)
	v = codec.AppendMessage(v, msg)
	_ = cc.b.Set(outcomeKey(cc.buf[:0], s.outNext), v, nil)
	s.outNext++
	_ = cc.b.Set(metaKey(metaOutcomeNext), binary.BigEndian.AppendUint64(nil, s.outNext), nil)
}

// writeLockLocked stores m's delivery state.
func (s *Store) writeLockLocked(cc *commitCtx, q *devQueue, m *qmsg) {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, lockHeader+len(m.token)), uint64(m.lockedUntil))
	v = binary.BigEndian.AppendUint32(v, m.deliveryCount)
	v = binary.BigEndian.AppendUint32(v, m.attempts)
	v = append(v, m.token...)
	_ = cc.b.Set(queueKey(cc.buf[:0], codec.SpaceQueueLock, q.name, m.seq), v, nil)
}

// expireLocked dead-letters q's expired messages and returns how many.
func (s *Store) expireLocked(cc *commitCtx, q *devQueue, now int64) (int, error) {
	n := 0
	for i := 0; i < len(q.msgs); {
		if !q.msgs[i].expired(now) {
			i++
			continue
		}
		if err := s.removeLocked(cc, q, i, queue.Expired); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Receive implements [queue.DeviceQueues].
func (s *Store) Receive(ctx context.Context, name string, opts queue.ReceiveOptions) (queue.Delivery, error) {
	if err := checkQueue(name); err != nil {
		return queue.Delivery{}, err
	}
	if opts.Lock <= 0 {
		return queue.Delivery{}, argError("lock duration %v is not positive", opts.Lock)
	}
	for {
		var (
			d      queue.Delivery
			got    bool
			ch     <-chan struct{}
			wakeAt int64 // earliest lock end, Unix nanoseconds
		)
		err := s.do(ctx, func(cc *commitCtx) error {
			q := s.queueLocked(name)
			now := nanos(cc.now(s))
			if _, err := s.expireLocked(cc, q, now); err != nil {
				return err
			}
			for _, m := range q.msgs {
				if m.locked(now) {
					if wakeAt == 0 || m.lockedUntil < wakeAt {
						wakeAt = m.lockedUntil
					}
					continue
				}
				v, err := s.valueLocked(q, m)
				if err != nil {
					return err
				}
				msg, err := decodeQueued(v, m)
				if err != nil {
					return err
				}
				m.val = v // kept while locked: settling needs no read
				m.token = rand.Text()
				m.lockedUntil = nanos(cc.now(s).Add(opts.Lock))
				m.attempts++
				if !opts.Volatile {
					s.writeLockLocked(cc, q, m)
				}
				d = queue.Delivery{Queue: name, Message: msg, LockToken: m.token, LockedUntil: fromNanos(m.lockedUntil), Attempts: m.attempts}
				got = true
				return nil
			}
			ch = q.notify
			return nil
		})
		switch {
		case err != nil:
			return queue.Delivery{}, fmt.Errorf("queue: receive from %q: %w", name, err)
		case got:
			return d, nil
		case opts.NoWait:
			return queue.Delivery{}, queue.ErrEmpty
		}
		var wait time.Duration
		if wakeAt != 0 {
			wait = min(max(fromNanos(wakeAt).Sub(s.now()), time.Millisecond), maxReceiveWait)
		}
		if err := s.wait(ctx, ch, wait); err != nil {
			return queue.Delivery{}, fmt.Errorf("queue: receive from %q: %w", name, err)
		}
	}
}

// settle finds the delivery of lockToken in the named queue and runs fn on
// it, on the committer.
func (s *Store) settle(ctx context.Context, op, name, lockToken string, fn func(cc *commitCtx, q *devQueue, i int) error) error {
	if err := checkQueue(name); err != nil {
		return err
	}
	err := s.do(ctx, func(cc *commitCtx) error { return s.settleLocked(cc, name, lockToken, fn) })
	if err != nil {
		return fmt.Errorf("queue: %s in %q: %w", op, name, err)
	}
	return nil
}

// settleLocked runs fn on the delivery of lockToken in the named queue, in
// the batch being built.
func (s *Store) settleLocked(cc *commitCtx, name, lockToken string, fn func(cc *commitCtx, q *devQueue, i int) error) error {
	q := s.queues[name]
	if q == nil || lockToken == "" {
		return queue.ErrLockLost
	}
	now := nanos(cc.now(s))
	i := slices.IndexFunc(q.msgs, func(m *qmsg) bool { return m.token == lockToken })
	if i < 0 || !q.msgs[i].locked(now) {
		return queue.ErrLockLost
	}
	if q.msgs[i].expired(now) {
		if err := s.removeLocked(cc, q, i, queue.Expired); err != nil {
			return err
		}
		return queue.ErrLockLost
	}
	return fn(cc, q, i)
}

// unlockLocked makes message i of q visible again.
func (s *Store) unlockLocked(cc *commitCtx, q *devQueue, i int) {
	m := q.msgs[i]
	m.token, m.lockedUntil = "", 0
	if !m.kept {
		m.val = nil // a value read for the delivery
	}
	s.writeLockLocked(cc, q, m)
	q.wake()
}

// Complete implements [queue.DeviceQueues].
func (s *Store) Complete(ctx context.Context, name, lockToken string) error {
	return s.settle(ctx, "complete", name, lockToken, func(cc *commitCtx, q *devQueue, i int) error {
		return s.removeLocked(cc, q, i, queue.Completed)
	})
}

// CompleteBatch implements [queue.BatchCompleter].
func (s *Store) CompleteBatch(ctx context.Context, name string, lockTokens []string) []error {
	errs := make([]error, len(lockTokens))
	complete := func(cc *commitCtx, q *devQueue, i int) error { return s.removeLocked(cc, q, i, queue.Completed) }
	err := checkQueue(name)
	if err == nil {
		err = s.do(ctx, func(cc *commitCtx) error {
			for i, t := range lockTokens {
				errs[i] = s.settleLocked(cc, name, t, complete)
			}
			return nil
		})
	}
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
		if errs[i] != nil {
			errs[i] = fmt.Errorf("queue: complete in %q: %w", name, errs[i])
		}
	}
	return errs
}

// Reject implements [queue.DeviceQueues].
func (s *Store) Reject(ctx context.Context, name, lockToken string) error {
	return s.settle(ctx, "reject", name, lockToken, func(cc *commitCtx, q *devQueue, i int) error {
		return s.removeLocked(cc, q, i, queue.Rejected)
	})
}

// Abandon implements [queue.DeviceQueues].
func (s *Store) Abandon(ctx context.Context, name, lockToken string) (deadLettered bool, err error) {
	err = s.settle(ctx, "abandon", name, lockToken, func(cc *commitCtx, q *devQueue, i int) error {
		m := q.msgs[i]
		if m.maxDelivery > 0 && m.deliveryCount+1 >= m.maxDelivery {
			m.deliveryCount++ // the journaled message shows the final count
			if err := s.removeLocked(cc, q, i, queue.DeliveryCountExceeded); err != nil {
				m.deliveryCount--
				return err
			}
			deadLettered = true
			return nil
		}
		m.deliveryCount++
		s.unlockLocked(cc, q, i)
		return nil
	})
	return deadLettered, err
}

// Release implements [queue.DeviceQueues].
func (s *Store) Release(ctx context.Context, name, lockToken string) error {
	return s.settle(ctx, "release", name, lockToken, func(cc *commitCtx, q *devQueue, i int) error {
		s.unlockLocked(cc, q, i)
		return nil
	})
}

// Purge implements [queue.DeviceQueues]. Messages found expired are
// dead-lettered as Expired and not counted.
func (s *Store) Purge(ctx context.Context, name string) (int, error) {
	if err := checkQueue(name); err != nil {
		return 0, err
	}
	n := 0
	err := s.do(ctx, func(cc *commitCtx) error {
		q := s.queues[name]
		if q == nil {
			return nil
		}
		if _, err := s.expireLocked(cc, q, nanos(cc.now(s))); err != nil {
			return err
		}
		for len(q.msgs) > 0 {
			if err := s.removeLocked(cc, q, 0, queue.Purged); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue: purge %q: %w", name, err)
	}
	return n, nil
}

// Len implements [queue.DeviceQueues].
func (s *Store) Len(ctx context.Context, name string) (int, error) {
	if err := checkQueue(name); err != nil {
		return 0, err
	}
	n := 0
	err := s.do(ctx, func(cc *commitCtx) error {
		if q := s.queues[name]; q != nil {
			now := nanos(cc.now(s))
			for _, m := range q.msgs {
				if !m.expired(now) {
					n++
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue: len of %q: %w", name, err)
	}
	return n, nil
}

// Peek implements [queue.DeviceQueues].
func (s *Store) Peek(ctx context.Context, name string, limit int) ([]hubkit.Message, error) {
	if err := checkQueue(name); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, argError("peek limit %d is not positive", limit)
	}
	var out []hubkit.Message
	err := s.do(ctx, func(cc *commitCtx) error {
		q := s.queues[name]
		if q == nil {
			return nil
		}
		now := nanos(cc.now(s))
		for _, m := range q.msgs {
			if len(out) >= limit {
				break
			}
			if m.expired(now) {
				continue
			}
			msg, err := s.loadLocked(q, m)
			if err != nil {
				return err
			}
			out = append(out, msg)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: peek %q: %w", name, err)
	}
	return out, nil
}

// expireChunk is the most messages one committer request of Expire
// removes. Expiry may find many thousands of messages at once (after a
// reopen, or a long pause of the clock); in chunks, appends and other
// requests queued meanwhile go into the batches between them instead of
// waiting for all of it.
const expireChunk = 256

// expiring is a message Expire found expired, with its stored value when
// it had to be read from Pebble.
type expiring struct {
	q   *devQueue
	m   *qmsg
	val []byte         // m's stored value, when m is journaled
	msg hubkit.Message // what the journal keeps of m
}

// Expire implements [queue.DeviceQueues]. It works in chunks of at most
// expireChunk messages, each its own committer request and write, and
// reads the values of journaled messages it needs from Pebble between
// requests, outside the committer. Every message expired when Expire
// begins is removed by the time it returns; a message that is settled
// meanwhile is left to that settlement.
func (s *Store) Expire(ctx context.Context) (int, error) {
	now := nanos(s.now())
	var (
		names []string // the queues to visit, in order
		qi    int      // the queue being visited
		after uint64   // its messages below this sequence number were visited
		chunk []expiring
		n     int
	)
	for first := true; first || len(chunk) > 0; first = false {
		err := s.do(ctx, func(cc *commitCtx) error {
			if first {
				for name := range s.queues {
					names = append(names, name)
				}
			}
			k, err := s.expireChunkLocked(cc, chunk)
			n += k
			if err != nil {
				return err
			}
			chunk = chunk[:0]
			for ; qi < len(names) && len(chunk) < expireChunk; qi, after = qi+1, 0 {
				q := s.queues[names[qi]]
				i, _ := slices.BinarySearchFunc(q.msgs, after, func(m *qmsg, seq uint64) int { return cmpU(m.seq, seq) })
				for ; i < len(q.msgs) && len(chunk) < expireChunk; i++ {
					if m := q.msgs[i]; m.expired(now) {
						chunk = append(chunk, expiring{q: q, m: m, val: m.val})
					}
					after = q.msgs[i].seq + 1
				}
				if len(chunk) == expireChunk {
					break
				}
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("queue: expire: %w", err)
		}
		if err := s.readExpiring(chunk); err != nil {
			return n, fmt.Errorf("queue: expire: %w", err)
		}
	}
	return n, nil
}

// readExpiring reads the stored values the journal needs of the messages
// in chunk that had none in memory. It runs outside the committer: a
// message's stored value never changes, and one settled meanwhile is
// skipped by expireChunkLocked.
func (s *Store) readExpiring(chunk []expiring) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	var key []byte
	for i := range chunk {
		e := &chunk[i]
		if !e.m.journal || e.val != nil {
			continue
		}
		key = queueKey(key[:0], codec.SpaceQueueMsg, e.q.name, e.m.seq)
		v, closer, err := s.db.Get(key)
		switch {
		case errors.Is(err, pebbledb.ErrNotFound): // settled meanwhile
		case err != nil:
			return fmt.Errorf("load message %d: %w", e.m.seq, err)
		default:
			e.val = append([]byte(nil), v...)
			_ = closer.Close()
		}
	}
	return nil
}

// expireChunkLocked dead-letters the messages of chunk still in their
// queues, in the batch being built, and returns how many. It decodes what
// the journal needs before it writes anything, so that an error leaves
// nothing of the chunk in the batch.
func (s *Store) expireChunkLocked(cc *commitCtx, chunk []expiring) (int, error) {
	for i := range chunk {
		e := &chunk[i]
		j, ok := slices.BinarySearchFunc(e.q.msgs, e.m.seq, func(m *qmsg, seq uint64) int { return cmpU(m.seq, seq) })
		if !ok || e.q.msgs[j] != e.m {
			e.m = nil // settled since it was found
			continue
		}
		if !e.m.journal {
			continue
		}
		if e.m.val != nil {
			e.val = e.m.val
		}
		if e.val == nil {
			v, err := s.valueLocked(e.q, e.m)
			if err != nil {
				return 0, err
			}
			e.val = v
		}
		msg, err := decodeQueued(e.val, e.m)
		if err != nil {
			return 0, err
		}
		msg.Body = nil
		e.msg = msg
	}
	n := 0
	for i, e := range chunk {
		if e.m != nil {
			if e.m.journal {
				s.journalLocked(cc, e.q.name, queue.Expired, &e.msg)
			}
			s.deleteLocked(cc, e.q, e.m)
			e.m.gone = true
			n++
		}
		if i == len(chunk)-1 || chunk[i+1].q != e.q { // chunk is grouped by queue
			e.q.msgs = slices.DeleteFunc(e.q.msgs, func(m *qmsg) bool { return m.gone })
		}
	}
	return n, nil
}

func outcomeKey(dst []byte, seq uint64) []byte {
	dst, _ = codec.AppendKey(dst, codec.Key{Space: codec.SpaceOutcome, Seq: seq})
	return dst
}

func (s *Store) recoverOutcomes() error {
	for _, m := range []struct {
		name string
		v    *uint64
	}{{metaOutcomeNext, &s.outNext}, {metaOutcomeCursor, &s.outCursor}} {
		v, err := s.getMeta(m.name)
		switch {
		case errors.Is(err, pebbledb.ErrNotFound):
		case err != nil:
			return err
		case len(v) != 8:
			return fmt.Errorf("%w: %s of %d bytes", codec.ErrCorrupt, m.name, len(v))
		default:
			*m.v = binary.BigEndian.Uint64(v)
		}
	}
	s.outDel = min(s.outCursor, s.outNext)
	s.outFirst.Store(s.outDel)
	s.outVisible.Store(s.outNext)
	return nil
}

// Outcomes implements [queue.DeviceQueues]. Outcomes before the committed
// outcomes cursor may have been discarded and are skipped.
func (s *Store) Outcomes(ctx context.Context, from uint64, limit int) ([]queue.Outcome, error) {
	if limit <= 0 {
		return nil, argError("outcomes limit %d is not positive", limit)
	}
	for {
		if err := s.closedErr(); err != nil {
			return nil, err
		}
		s.outMu.Lock()
		ch := s.outNotify
		s.outMu.Unlock()
		from = max(from, s.outFirst.Load())
		if vis := s.outVisible.Load(); from < vis {
			out, err := s.readOutcomes(from, min(vis, from+uint64(limit)))
			if err != nil || len(out) > 0 {
				return out, err
			}
			// Discarded before the new first outcome was published: look
			// again shortly.
			ch = nil
		}
		wait := time.Duration(0)
		if ch == nil {
			wait = time.Millisecond
		}
		if err := s.wait(ctx, ch, wait); err != nil {
			return nil, fmt.Errorf("queue: outcomes: %w", err)
		}
	}
}

func (s *Store) readOutcomes(from, end uint64) ([]queue.Outcome, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: outcomeKey(nil, from), UpperBound: outcomeKey(nil, end)})
	if err != nil {
		return nil, fmt.Errorf("queue: outcomes: %w", err)
	}
	var out []queue.Outcome
	for it.First(); it.Valid(); it.Next() {
		var o queue.Outcome
		if o, err = decodeOutcome(it.Key(), it.Value()); err != nil {
			break
		}
		out = append(out, o)
	}
	if err = errors.Join(err, it.Close()); err != nil {
		return nil, fmt.Errorf("queue: outcomes: %w", err)
	}
	return out, nil
}

func decodeOutcome(key, v []byte) (queue.Outcome, error) {
	k, err := codec.ParseKey(key)
	if err != nil {
		return queue.Outcome{}, err
	}
	if len(v) < 11 {
		return queue.Outcome{}, fmt.Errorf("%w: outcome of %d bytes", codec.ErrCorrupt, len(v))
	}
	o := queue.Outcome{Seq: k.Seq, Status: queue.Status(v[0]), Time: fromNanos(int64(binary.BigEndian.Uint64(v[1:])))}
	n := int(binary.BigEndian.Uint16(v[9:]))
	if len(v) < 11+n {
		return queue.Outcome{}, fmt.Errorf("%w: outcome queue name", codec.ErrCorrupt)
	}
	o.Queue = string(v[11 : 11+n])
	return o, codec.DecodeMessage(v[11+n:], &o.Message)
}

// CommitOutcomes implements [queue.DeviceQueues]. Outcomes before next are
// deleted in the same batch.
func (s *Store) CommitOutcomes(ctx context.Context, next uint64) error {
	err := s.do(ctx, func(cc *commitCtx) error { return s.commitOutcomesLocked(cc, next) })
	if err != nil {
		return fmt.Errorf("queue: commit outcomes: %w", err)
	}
	return nil
}

// commitOutcomesLocked moves the outcomes cursor to next, unless it is
// there already, and deletes the outcomes before it, in the batch being
// built.
func (s *Store) commitOutcomesLocked(cc *commitCtx, next uint64) error {
	if next <= s.outCursor {
		return nil
	}
	if del := min(next, s.outNext); del > s.outDel {
		if err := cc.b.DeleteRange(outcomeKey(nil, s.outDel), outcomeKey(nil, del), nil); err != nil {
			return err
		}
		s.outDel = del
	}
	s.outCursor = next
	_ = cc.b.Set(metaKey(metaOutcomeCursor), binary.BigEndian.AppendUint64(nil, next), nil)
	return nil
}

// OutcomesCursor implements [queue.DeviceQueues].
func (s *Store) OutcomesCursor(ctx context.Context) (uint64, error) {
	var v uint64
	err := s.do(ctx, func(*commitCtx) error { v = s.outCursor; return nil })
	if err != nil {
		return 0, fmt.Errorf("queue: outcomes cursor: %w", err)
	}
	return v, nil
}
