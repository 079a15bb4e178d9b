package mqtt_test

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// memQueue is the part of a queue.DurableQueue the broker tests use, kept in
// memory, until queue/memory is available to them.
type memQueue struct {
	queue.DurableQueue // not used: calls to other methods panic

	mu      sync.Mutex
	changed chan struct{}
	stream  []hubkit.Message
	c2d     map[string][]*c2dItem
	tokens  int
}

type c2dItem struct {
	msg      hubkit.Message
	token    string
	attempts uint32
}

func newMemQueue() *memQueue {
	return &memQueue{changed: make(chan struct{}), c2d: map[string][]*c2dItem{}}
}

func (q *memQueue) changedLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *memQueue) Close() error { return nil }

func (q *memQueue) Append(ctx context.Context, entries []queue.Entry) ([]queue.Position, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	pos := make([]queue.Position, len(entries))
	for i, e := range entries {
		pos[i] = queue.Position{Sequence: uint64(len(q.stream))}
		q.stream = append(q.stream, *e.Message.Clone())
	}
	q.changedLocked()
	return pos, nil
}

func (q *memQueue) Read(ctx context.Context, stream string, p int, from uint64, max int, dst []queue.Record) ([]queue.Record, error) {
	for {
		q.mu.Lock()
		if int(from) < len(q.stream) {
			for i := int(from); i < len(q.stream) && max > 0; i++ {
				dst = append(dst, queue.Record{Position: queue.Position{Sequence: uint64(i)}, Message: q.stream[i]})
				max--
			}
			q.mu.Unlock()
			return dst, nil
		}
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

func (q *memQueue) Enqueue(ctx context.Context, name string, msg *hubkit.Message, opts queue.EnqueueOptions) (uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.c2d[name] = append(q.c2d[name], &c2dItem{msg: *msg.Clone()})
	q.changedLocked()
	return uint64(len(q.c2d[name])), nil
}

func (q *memQueue) Receive(ctx context.Context, name string, opts queue.ReceiveOptions) (queue.Delivery, error) {
	for {
		q.mu.Lock()
		for _, it := range q.c2d[name] {
			if it.token == "" {
				q.tokens++
				it.token = strconv.Itoa(q.tokens)
				it.attempts++
				d := queue.Delivery{Queue: name, Message: *it.msg.Clone(), LockToken: it.token,
					LockedUntil: time.Now().Add(opts.Lock), Attempts: it.attempts}
				q.mu.Unlock()
				return d, nil
			}
		}
		ch := q.changed
		q.mu.Unlock()
		if opts.NoWait {
			return queue.Delivery{}, queue.ErrEmpty
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return queue.Delivery{}, ctx.Err()
		}
	}
}

func (q *memQueue) settle(name, token string, remove bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, it := range q.c2d[name] {
		if it.token == token {
			if remove {
				q.c2d[name] = append(q.c2d[name][:i], q.c2d[name][i+1:]...)
			} else {
				it.token = ""
			}
			q.changedLocked()
			return nil
		}
	}
	return queue.ErrLockLost
}

func (q *memQueue) Complete(ctx context.Context, name, token string) error {
	return q.settle(name, token, true)
}

func (q *memQueue) Release(ctx context.Context, name, token string) error {
	return q.settle(name, token, false)
}

func (q *memQueue) Len(ctx context.Context, name string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.c2d[name]), nil
}
