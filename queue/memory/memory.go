package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// Options configure a [Store]. The zero value works.
type Options struct {
	// Now is the store's clock: enqueued times, expiry and lock timeouts
	// follow it. Nil means time.Now.
	Now func() time.Time
	// SweepInterval is how often the background sweep expires device-queue
	// messages, trims streams by retention and wakes receivers waiting for
	// a lock to end by a clock other than time.Now. Zero means one second.
	// Negative means no background sweep: then messages expire only when
	// their queue is used and by Expire or Sweep, and streams are trimmed
	// only by Sweep.
	SweepInterval time.Duration
}

// Store is an in-memory [queue.DurableQueue]. It is safe for concurrent use.
// Create it with [New] and end it with [Store.Close].
type Store struct {
	now  func() time.Time
	done chan struct{} // closed by Close to stop the sweeper
	wg   sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	closed  bool
	changed chan struct{} // closed and replaced on every change; see changedLocked
	streams map[string]*stream
	cursors map[cursorKey]uint64
	queues  map[string]*deviceQueue
	journal []queue.Outcome // journal[0] has sequence jfirst
	jfirst  uint64
	jcursor uint64
	kv      map[string][]byte
}

var (
	_ queue.DurableQueue   = (*Store)(nil)
	_ queue.AsyncAppender  = (*Store)(nil)
	_ queue.BatchCompleter = (*Store)(nil)
)

type stream struct {
	retention queue.Retention
	parts     map[int]*partition
}

// A partition holds records first, first+1, ... in recs.
type partition struct {
	first uint64
	recs  []queue.Record
	bytes int64 // sum of the records' Message.Size
}

func (p *partition) next() uint64 { return p.first + uint64(len(p.recs)) }

type cursorKey struct {
	cursor, stream string
	partition      int
}

type deviceQueue struct {
	next  uint64  // sequence number of the next enqueued message
	items []*item // in sequence order
}

type item struct {
	msg         hubkit.Message // SequenceNumber, EnqueuedTime and DeliveryCount kept current
	opts        queue.EnqueueOptions
	token       string // lock token of the current delivery, if any
	lockedUntil time.Time
	attempts    uint32
}

// New returns a running store. Close it to stop its background sweep.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Second
	}
	s := &Store{
		now:     opts.Now,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		streams: make(map[string]*stream),
		cursors: make(map[cursorKey]uint64),
		queues:  make(map[string]*deviceQueue),
		kv:      make(map[string][]byte),
	}
	if opts.SweepInterval > 0 {
		s.wg.Add(1)
		go s.sweepLoop(opts.SweepInterval)
	}
	return s
}

func (s *Store) sweepLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			// Sweep only fails once the store is closed, which ends the loop.
			_ = s.Sweep(context.Background())
		}
	}
}

// Sweep does at once what the background sweep does: it expires device-queue
// messages (as [Store.Expire]), removes stream records that their stream's
// retention no longer keeps, and wakes receivers so that they see locks that
// ended. queuetest calls it to avoid waiting for the background sweep.
func (s *Store) Sweep(ctx context.Context) error {
	if _, err := s.Expire(ctx); err != nil {
		return err
	}
	if err := s.lock(ctx, "sweep"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	now := s.now()
	for _, st := range s.streams {
		for _, p := range st.parts {
			trim(p, st.retention, now)
		}
	}
	s.changedLocked()
	return nil
}

// trim removes from the head of p the records that r no longer keeps.
func trim(p *partition, r queue.Retention, now time.Time) {
	for len(p.recs) > 0 {
		head := &p.recs[0]
		size := int64(head.Message.Size())
		old := r.MaxAge > 0 && now.Sub(head.EnqueuedTime) > r.MaxAge
		big := r.MaxBytes > 0 && p.bytes-size > r.MaxBytes
		if !old && !big {
			return
		}
		p.recs[0] = queue.Record{} // let the message be collected
		p.recs = p.recs[1:]
		p.first++
		p.bytes -= size
	}
}

// Close ends the store: waiting calls return hubkit.ErrClosed, the sweep
// stops, and every later call returns hubkit.ErrClosed. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.changedLocked()
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
	return nil
}

// changedLocked wakes every waiting call.
func (s *Store) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// lock takes the mutex for an operation, or reports why it may not run.
// On success the caller must unlock.
func (s *Store) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memory: %s: %w", op, hubkit.ErrClosed)
	}
	return nil
}

// wait runs try under the mutex until it reports done, waking on every
// change, until ctx ends or the store closes. When try returns a positive
// wake, wait also tries again after that long: a lock that ends changes
// nothing in the store, so nothing else would wake the caller.
func (s *Store) wait(ctx context.Context, op string, try func() (done bool, wake time.Duration, err error)) error {
	for {
		if err := s.lock(ctx, op); err != nil {
			return err
		}
		done, wake, err := try()
		ch := s.changed
		s.mu.Unlock()
		if done || err != nil {
			return err
		}
		var timeout <-chan time.Time
		if wake > 0 {
			timeout = time.After(wake)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("memory: %s: %w", op, ctx.Err())
		case <-ch:
		case <-timeout:
		}
	}
}

func invalid(op, format string, args ...any) error {
	return fmt.Errorf("memory: %s: %w: %s", op, hubkit.ErrArgumentInvalid, fmt.Sprintf(format, args...))
}

// Append implements [queue.Streams.Append].
func (s *Store) Append(ctx context.Context, entries []queue.Entry) ([]queue.Position, error) {
	for i, e := range entries {
		if e.Partition < 0 {
			return nil, invalid("append", "entry %d: partition %d is negative", i, e.Partition)
		}
		if e.Message == nil {
			return nil, invalid("append", "entry %d: message is nil", i)
		}
	}
	if err := s.lock(ctx, "append"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	now := s.now()
	pos := make([]queue.Position, len(entries))
	for i, e := range entries {
		p := s.partitionLocked(e.Stream, e.Partition)
		n := p.next()
		pos[i] = queue.Position{Partition: e.Partition, Offset: n, Sequence: n, EnqueuedTime: now}
		r := queue.Record{Position: pos[i], Message: *e.Message.Clone()}
		r.Message.System.SequenceNumber = n
		r.Message.System.EnqueuedTime = now
		p.recs = append(p.recs, r)
		p.bytes += int64(r.Message.Size())
	}
	s.changedLocked()
	return pos, nil
}

// AppendAsync implements [queue.AsyncAppender]. The store has no write to
// wait for, so it appends at once and calls done before it returns, on the
// caller's goroutine.
func (s *Store) AppendAsync(ctx context.Context, entries []queue.Entry, done func([]queue.Position, error)) {
	done(s.Append(ctx, entries))
}

func (s *Store) streamLocked(name string) *stream {
	st := s.streams[name]
	if st == nil {
		st = &stream{parts: make(map[int]*partition)}
		s.streams[name] = st
	}
	return st
}

// findLocked returns the partition, or an empty one that it does not keep:
// reads do not create partitions.
func (s *Store) findLocked(name string, part int) *partition {
	if st := s.streams[name]; st != nil && st.parts[part] != nil {
		return st.parts[part]
	}
	return &partition{}
}

func (s *Store) partitionLocked(name string, part int) *partition {
	st := s.streamLocked(name)
	p := st.parts[part]
	if p == nil {
		p = &partition{}
		st.parts[part] = p
	}
	return p
}

// Read implements [queue.Streams.Read].
func (s *Store) Read(ctx context.Context, stream string, part int, from uint64, max int, dst []queue.Record) ([]queue.Record, error) {
	if part < 0 || max <= 0 {
		return dst, invalid("read", "partition %d, max %d: need partition >= 0 and max > 0", part, max)
	}
	err := s.wait(ctx, "read", func() (bool, time.Duration, error) {
		p := s.findLocked(stream, part)
		if from < p.first {
			from = p.first
		}
		if from >= p.next() {
			return false, 0, nil
		}
		for _, r := range p.recs[from-p.first:] {
			if max == 0 {
				break
			}
			dst = append(dst, queue.Record{Position: r.Position, Message: *r.Message.Clone()})
			max--
		}
		return true, 0, nil
	})
	return dst, err
}

// Bounds implements [queue.Streams.Bounds].
func (s *Store) Bounds(ctx context.Context, stream string, part int) (first, next uint64, err error) {
	if part < 0 {
		return 0, 0, invalid("bounds", "partition %d is negative", part)
	}
	if err := s.lock(ctx, "bounds"); err != nil {
		return 0, 0, err
	}
	defer s.mu.Unlock()
	p := s.findLocked(stream, part)
	return p.first, p.next(), nil
}

// SeekTime implements [queue.Streams.SeekTime].
func (s *Store) SeekTime(ctx context.Context, stream string, part int, t time.Time) (uint64, error) {
	if part < 0 {
		return 0, invalid("seek", "partition %d is negative", part)
	}
	if err := s.lock(ctx, "seek"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	p := s.findLocked(stream, part)
	for _, r := range p.recs {
		if !r.EnqueuedTime.Before(t) {
			return r.Sequence, nil
		}
	}
	return p.next(), nil
}

// Commit implements [queue.Streams.Commit].
func (s *Store) Commit(ctx context.Context, cursor, stream string, part int, next uint64) error {
	if part < 0 {
		return invalid("commit", "partition %d is negative", part)
	}
	if err := s.lock(ctx, "commit"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := cursorKey{cursor, stream, part}
	if old, ok := s.cursors[k]; !ok || next > old {
		s.cursors[k] = next
	}
	return nil
}

// Cursor implements [queue.Streams.Cursor].
func (s *Store) Cursor(ctx context.Context, cursor, stream string, part int) (uint64, error) {
	if err := s.lock(ctx, "cursor"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	v, ok := s.cursors[cursorKey{cursor, stream, part}]
	if !ok {
		return 0, fmt.Errorf("memory: cursor %q of %s/%d: %w", cursor, stream, part, queue.ErrNotFound)
	}
	return v, nil
}

// SetRetention implements [queue.Streams.SetRetention].
func (s *Store) SetRetention(name string, r queue.Retention) error {
	if r.MaxAge < 0 || r.MaxBytes < 0 {
		return invalid("set retention", "negative retention %+v", r)
	}
	if err := s.lock(context.Background(), "set retention"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.streamLocked(name).retention = r
	return nil
}
