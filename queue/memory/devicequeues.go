package memory

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

func expired(m *hubkit.Message, now time.Time) bool {
	return !m.System.ExpiryTime.IsZero() && !now.Before(m.System.ExpiryTime)
}

// locked reports whether it is held by a lock that has not ended.
func (it *item) locked(now time.Time) bool {
	return it.token != "" && now.Before(it.lockedUntil)
}

// Enqueue implements [queue.DeviceQueues.Enqueue].
func (s *Store) Enqueue(ctx context.Context, name string, msg *hubkit.Message, opts queue.EnqueueOptions) (uint64, error) {
	if name == "" || msg == nil || opts.MaxDepth < 0 {
		return 0, invalid("enqueue", "queue %q, message %v, max depth %d: need a name, a message and a depth >= 0", name, msg != nil, opts.MaxDepth)
	}
	if err := s.lock(ctx, "enqueue"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now := s.now()
	q := s.queues[name]
	if q == nil {
		q = &deviceQueue{}
		s.queues[name] = q
	}
	s.expireLocked(name, q, now)
	if opts.MaxDepth > 0 && len(q.items) >= opts.MaxDepth {
		return 0, fmt.Errorf("memory: enqueue to %q: %w", name, queue.ErrQueueFull)
	}
	it := &item{msg: *msg.Clone(), opts: opts}
	it.msg.System.SequenceNumber = q.next
	it.msg.System.EnqueuedTime = now
	it.msg.System.DeliveryCount = 0
	q.next++
	q.items = append(q.items, it)
	s.commitOutcomesLocked(opts.CommitOutcomes)
	s.changedLocked()
	return it.msg.System.SequenceNumber, nil
}

// Receive implements [queue.DeviceQueues.Receive]. Every lock is
// volatile here, opts.Volatile or not: nothing outlives the store.
func (s *Store) Receive(ctx context.Context, name string, opts queue.ReceiveOptions) (queue.Delivery, error) {
	if opts.Lock <= 0 {
		return queue.Delivery{}, invalid("receive", "lock %v is not positive", opts.Lock)
	}
	var d queue.Delivery
	err := s.wait(ctx, "receive", func() (bool, time.Duration, error) {
		q := s.queues[name]
		if q == nil {
			return opts.NoWait, 0, nil
		}
		now := s.now()
		s.expireLocked(name, q, now)
		var wake time.Duration // until the first lock ends
		for _, it := range q.items {
			if it.locked(now) {
				if w := it.lockedUntil.Sub(now); wake == 0 || w < wake {
					wake = w
				}
				continue
			}
			it.token = rand.Text()
			it.lockedUntil = now.Add(opts.Lock)
			it.attempts++
			d = queue.Delivery{Queue: name, Message: *it.msg.Clone(), LockToken: it.token, LockedUntil: it.lockedUntil, Attempts: it.attempts}
			return true, 0, nil
		}
		return opts.NoWait, wake, nil
	})
	if err == nil && d.LockToken == "" {
		err = fmt.Errorf("memory: receive from %q: %w", name, queue.ErrEmpty)
	}
	return d, err
}

// settle finds the message locked by token and runs f on it under the mutex.
func (s *Store) settle(ctx context.Context, op, name, token string, f func(q *deviceQueue, i int, now time.Time)) error {
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	now := s.now()
	if q := s.queues[name]; q != nil && token != "" {
		for i, it := range q.items {
			if it.token == token && it.locked(now) && !expired(&it.msg, now) {
				f(q, i, now)
				s.changedLocked()
				return nil
			}
		}
	}
	return fmt.Errorf("memory: %s in %q: %w", op, name, queue.ErrLockLost)
}

// Complete implements [queue.DeviceQueues.Complete].
func (s *Store) Complete(ctx context.Context, name, token string) error {
	return s.settle(ctx, "complete", name, token, func(q *deviceQueue, i int, now time.Time) {
		s.removeLocked(name, q, i, queue.Completed, now)
	})
}

// CompleteBatch implements [queue.BatchCompleter]: each message is
// completed as by Complete, one after the other; ctx is checked once,
// before the first.
func (s *Store) CompleteBatch(ctx context.Context, name string, tokens []string) []error {
	errs := make([]error, len(tokens))
	err := ctx.Err()
	ctx = context.WithoutCancel(ctx)
	for i, t := range tokens {
		if errs[i] = err; err == nil {
			errs[i] = s.Complete(ctx, name, t)
		}
	}
	return errs
}

// Reject implements [queue.DeviceQueues.Reject].
func (s *Store) Reject(ctx context.Context, name, token string) error {
	return s.settle(ctx, "reject", name, token, func(q *deviceQueue, i int, now time.Time) {
		s.removeLocked(name, q, i, queue.Rejected, now)
	})
}

// Abandon implements [queue.DeviceQueues.Abandon].
func (s *Store) Abandon(ctx context.Context, name, token string) (deadLettered bool, err error) {
	err = s.settle(ctx, "abandon", name, token, func(q *deviceQueue, i int, now time.Time) {
		it := q.items[i]
		it.msg.System.DeliveryCount++
		if max := it.opts.MaxDeliveryCount; max > 0 && it.msg.System.DeliveryCount >= max {
			s.removeLocked(name, q, i, queue.DeliveryCountExceeded, now)
			deadLettered = true
			return
		}
		it.token = ""
	})
	return deadLettered, err
}

// Release implements [queue.DeviceQueues.Release].
func (s *Store) Release(ctx context.Context, name, token string) error {
	return s.settle(ctx, "release", name, token, func(q *deviceQueue, i int, now time.Time) {
		q.items[i].token = ""
	})
}

// Purge implements [queue.DeviceQueues.Purge].
func (s *Store) Purge(ctx context.Context, name string) (int, error) {
	if err := s.lock(ctx, "purge"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	q := s.queues[name]
	if q == nil {
		return 0, nil
	}
	now := s.now()
	s.expireLocked(name, q, now)
	n := len(q.items)
	for len(q.items) > 0 {
		s.removeLocked(name, q, 0, queue.Purged, now)
	}
	s.changedLocked()
	return n, nil
}

// Len implements [queue.DeviceQueues.Len].
func (s *Store) Len(ctx context.Context, name string) (int, error) {
	msgs, err := s.peek(ctx, "len", name, -1)
	return len(msgs), err
}

// Peek implements [queue.DeviceQueues.Peek].
func (s *Store) Peek(ctx context.Context, name string, max int) ([]hubkit.Message, error) {
	if max <= 0 {
		return nil, invalid("peek", "max %d is not positive", max)
	}
	return s.peek(ctx, "peek", name, max)
}

// peek returns up to max unexpired messages of the queue, all when max < 0.
func (s *Store) peek(ctx context.Context, op, name string, max int) ([]hubkit.Message, error) {
	if err := s.lock(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	q := s.queues[name]
	if q == nil {
		return nil, nil
	}
	now := s.now()
	var out []hubkit.Message
	for _, it := range q.items {
		if len(out) == max {
			break
		}
		if !expired(&it.msg, now) {
			out = append(out, *it.msg.Clone())
		}
	}
	return out, nil
}

// Expire implements [queue.DeviceQueues.Expire].
func (s *Store) Expire(ctx context.Context) (int, error) {
	if err := s.lock(ctx, "expire"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for name, q := range s.queues {
		n += s.expireLocked(name, q, now)
	}
	if n > 0 {
		s.changedLocked()
	}
	return n, nil
}

// expireLocked dead-letters the expired messages of q and returns how many.
func (s *Store) expireLocked(name string, q *deviceQueue, now time.Time) int {
	n := 0
	for i := 0; i < len(q.items); {
		if expired(&q.items[i].msg, now) {
			s.removeLocked(name, q, i, queue.Expired, now)
			n++
			continue
		}
		i++
	}
	return n
}

// removeLocked removes q.items[i], which reached status, and journals it
// if asked to.
func (s *Store) removeLocked(name string, q *deviceQueue, i int, status queue.Status, now time.Time) {
	it := q.items[i]
	q.items = slices.Delete(q.items, i, i+1)
	if !it.opts.Journal {
		return
	}
	m := *it.msg.Clone()
	m.Body = nil
	s.journal = append(s.journal, queue.Outcome{
		Seq:     s.jfirst + uint64(len(s.journal)),
		Queue:   name,
		Status:  status,
		Time:    now,
		Message: m,
	})
}

// Outcomes implements [queue.DeviceQueues.Outcomes].
func (s *Store) Outcomes(ctx context.Context, from uint64, max int) ([]queue.Outcome, error) {
	if max <= 0 {
		return nil, invalid("outcomes", "max %d is not positive", max)
	}
	var out []queue.Outcome
	err := s.wait(ctx, "outcomes", func() (bool, time.Duration, error) {
		if from < s.jfirst {
			from = s.jfirst
		}
		i := int(from - s.jfirst)
		if i >= len(s.journal) {
			return false, 0, nil
		}
		for _, o := range s.journal[i:min(len(s.journal), i+max)] {
			o.Message = *o.Message.Clone()
			out = append(out, o)
		}
		return true, 0, nil
	})
	return out, err
}

// CommitOutcomes implements [queue.DeviceQueues.CommitOutcomes]. Outcomes
// before next are discarded.
func (s *Store) CommitOutcomes(ctx context.Context, next uint64) error {
	if err := s.lock(ctx, "commit outcomes"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.commitOutcomesLocked(next)
	return nil
}

// commitOutcomesLocked moves the journal cursor to next, unless it is
// there already, and discards the outcomes before it.
func (s *Store) commitOutcomesLocked(next uint64) {
	if next <= s.jcursor {
		return
	}
	s.jcursor = next
	drop := min(next-s.jfirst, uint64(len(s.journal)))
	s.journal = slices.Delete(s.journal, 0, int(drop))
	s.jfirst += drop
}

// OutcomesCursor implements [queue.DeviceQueues.OutcomesCursor].
func (s *Store) OutcomesCursor(ctx context.Context) (uint64, error) {
	if err := s.lock(ctx, "outcomes cursor"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.jcursor, nil
}
