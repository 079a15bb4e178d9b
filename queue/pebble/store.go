package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/codec"
	"github.com/hubkit/hubkit/queue"
)

var (
	_ queue.DurableQueue   = (*Store)(nil)
	_ queue.AsyncAppender  = (*Store)(nil)
	_ queue.BatchCompleter = (*Store)(nil)
)

// Options configures a [Store]. The zero value works.
type Options struct {
	// Now is the store's clock: enqueued times, expiry and lock timeouts
	// are decided by it. Nil means time.Now.
	Now func() time.Time
	// Logger receives the store's and Pebble's logs. Nil means slog.Default().
	Logger *slog.Logger
	// FS is the file system the database lives on. Nil means the disk;
	// tests pass vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS
	// SweepInterval is how often the background sweep expires device-queue
	// messages and trims streams by retention. Zero means 10 seconds.
	SweepInterval time.Duration
	// CacheSize is the size of Pebble's block cache in bytes. Zero means 64 MiB.
	CacheSize int64
	// MaxBatchRequests caps how many requests one group commit takes.
	// Zero means 4096.
	MaxBatchRequests int
	// QueueMemory is how many bytes of stored device-queue messages the
	// store keeps in memory from Enqueue until they are settled, so that
	// delivering and settling them reads nothing back from Pebble.
	// Messages enqueued beyond it are read when received. Zero means
	// 32 MiB; a negative value keeps none.
	QueueMemory int64

	// ackBeforeSync is a deliberately broken mode for tests: writes are
	// not synced and callers are answered at once. It exists only to show
	// that the power-loss test catches an ack before the sync.
	ackBeforeSync bool
}

// formatVersion is the layout of the keys and values; Open refuses others.
const formatVersion = 1

// Store is a [queue.DurableQueue] in one Pebble database. Its methods are
// safe for concurrent use. Open it with [Open]; Close it when done.
type Store struct {
	db   *pebbledb.DB
	opts Options
	log  *slog.Logger
	now  func() time.Time

	mu     sync.RWMutex // guards closed, sends on reqs and direct database reads
	closed bool
	reqs   chan *request
	done   chan struct{} // closed when Close begins: wakes every waiter

	jobs    chan job       // committer -> syncer
	synced  chan struct{}  // closed when the syncer has answered its last request
	syncing atomic.Int32   // batches handed to Pebble whose sync the syncer has not seen end
	syncEnd chan struct{}  // buffered: the syncer signals here when a sync ends
	wg      sync.WaitGroup // committer, syncer and sweeper
	stop    context.CancelFunc
	failed  atomic.Pointer[error] // first write failure, sticky
	reqPool sync.Pool

	partsMu sync.RWMutex // guards parts
	parts   map[partKey]*partition

	retMu     sync.Mutex // guards retention
	retention map[string]queue.Retention

	// Owned by the committer goroutine (and by Open before it starts).
	queues    map[string]*devQueue
	cursors   map[cursorKey]uint64
	outNext   uint64 // next outcome sequence number to assign
	outCursor uint64 // value of OutcomesCursor
	outDel    uint64 // outcomes below were deleted
	kept      int64  // bytes of qmsg values kept by Options.QueueMemory
	cc        commitCtx

	// Outcome journal as readers see it.
	outVisible atomic.Uint64 // outcomes below are durable
	outFirst   atomic.Uint64 // outcomes below were discarded
	outMu      sync.Mutex    // guards outNotify
	outNotify  chan struct{}
}

// Open opens or creates the store in dir. It recovers every counter, queue
// and lock from what is durable and starts the committer and the
// background sweep. Close the store when done.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 10 * time.Second
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 64 << 20
	}
	if opts.MaxBatchRequests <= 0 {
		opts.MaxBatchRequests = 4096
	}
	if opts.QueueMemory == 0 {
		opts.QueueMemory = 32 << 20
	}
	log := opts.Logger.With("component", "queue/pebble")
	cache := pebbledb.NewCache(opts.CacheSize)
	defer cache.Unref()
	db, err := pebbledb.Open(dir, &pebbledb.Options{
		FS:           opts.FS,
		Cache:        cache,
		Logger:       pebbleLogger{log},
		MemTableSize: 32 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", dir, err)
	}
	s := &Store{
		db:        db,
		opts:      opts,
		log:       log,
		now:       opts.Now,
		reqs:      make(chan *request, 1024),
		done:      make(chan struct{}),
		jobs:      make(chan job, 8),
		synced:    make(chan struct{}),
		syncEnd:   make(chan struct{}, 1),
		parts:     make(map[partKey]*partition),
		retention: make(map[string]queue.Retention),
		queues:    make(map[string]*devQueue),
		cursors:   make(map[cursorKey]uint64),
		outNotify: make(chan struct{}),
	}
	s.reqPool.New = func() any { return &request{done: make(chan error, 1)} }
	if err := s.recover(); err != nil {
		return nil, errors.Join(fmt.Errorf("queue: recover %s: %w", dir, err), db.Close())
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.commitLoop() }()
	go func() { defer s.wg.Done(); s.syncLoop() }()
	go func() { defer s.wg.Done(); s.sweepLoop(ctx) }()
	log.Info("store opened", "dir", dir)
	return s, nil
}

// Close stops the store: waiting Read, Receive and Outcomes calls return
// hubkit.ErrClosed, requests already queued are committed, background work
// stops and the database is closed. Later calls return hubkit.ErrClosed.
// Close is idempotent; only the first call reports the database's close error.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	close(s.reqs) // no sender is left: they hold mu.RLock while sending
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
	return s.db.Close()
}

// A request is one call's work for the committer.
type request struct {
	ctx      context.Context
	apply    func(cc *commitCtx) error // runs on the committer goroutine
	done     chan error                // buffered: the syncer never blocks on it
	callback func(error)               // when set, called by the syncer instead of sending on done
	err      error
}

// commitCtx is what apply functions write to: the batch being built and
// what to publish once it is durable.
type commitCtx struct {
	b       *pebbledb.Batch
	nowT    time.Time
	parts   []*partition // stream partitions appended to in this batch
	pending []*qmsg      // device-queue messages whose value is not in Pebble yet
	buf     []byte       // scratch for keys and values
}

// now returns the store's clock, read once per batch.
func (cc *commitCtx) now(s *Store) time.Time {
	if cc.nowT.IsZero() {
		cc.nowT = s.now()
	}
	return cc.nowT
}

// job is a batch on its way from the committer to the syncer.
type job struct {
	b       *pebbledb.Batch // nil when the batch had no writes
	err     error           // the apply error, if any
	reqs    []*request
	parts   []partPub
	outNext uint64
	outFrom uint64
}

type partPub struct {
	p          *partition
	next       uint64
	first      uint64
	firstMoved bool
}

// do runs apply on the committer and waits until its batch is durable. Once
// the request is queued do waits for the answer whatever ctx does: the
// committer skips a request whose ctx has ended, and a request it applied
// is answered within one commit.
func (s *Store) do(ctx context.Context, apply func(cc *commitCtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := s.reqPool.Get().(*request)
	r.ctx, r.apply, r.callback, r.err = ctx, apply, nil, nil
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		s.reqPool.Put(r)
		return hubkit.ErrClosed
	}
	s.reqs <- r
	s.mu.RUnlock()
	err := <-r.done
	r.ctx, r.apply = nil, nil
	s.reqPool.Put(r)
	return err
}

// commitLoop is the committer goroutine: it turns waiting requests into one
// batch at a time until Close closes reqs. While the disk syncs the last
// batch it keeps gathering requests into the next one and hands that over
// when the sync ends: the WAL syncs one batch at a time anyway, so a
// request gets no sooner to the disk by going ahead alone, and one batch
// per sync costs far less (in Pebble, in waking readers, in answering
// callers) than one per request.
func (s *Store) commitLoop() {
	defer close(s.jobs)
	var reqs []*request
	for {
		r, ok := <-s.reqs
		if !ok {
			return
		}
		reqs = append(reqs[:0:0], r)
		open := true
	drain:
		for len(reqs) < s.opts.MaxBatchRequests {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					open = false
					break drain
				}
				reqs = append(reqs, r)
			default:
				if s.syncing.Load() == 0 {
					break drain
				}
				select { // the disk is busy: wait for a request or the end of the sync
				case r, ok := <-s.reqs:
					if !ok {
						open = false
						break drain
					}
					reqs = append(reqs, r)
				case <-s.syncEnd:
				}
			}
		}
		s.commit(reqs)
		if !open {
			return
		}
	}
}

// commit applies reqs to one batch, hands it to Pebble with a synced write
// and passes it to the syncer.
func (s *Store) commit(reqs []*request) {
	cc := &s.cc
	cc.b = s.db.NewBatch()
	cc.nowT = time.Time{}
	for _, r := range reqs {
		if f := s.failed.Load(); f != nil {
			r.err = *f
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		// An apply function checks everything before it writes, so an
		// error leaves nothing of that request in the batch.
		r.err = r.apply(cc)
	}
	j := job{reqs: reqs, outNext: s.outNext, outFrom: s.outDel}
	for _, p := range cc.parts {
		cc.buf = binary.BigEndian.AppendUint64(cc.buf[:0], p.next)
		cc.buf = binary.BigEndian.AppendUint64(cc.buf, uint64(p.lastTime))
		cc.buf = binary.BigEndian.AppendUint64(cc.buf, p.cumBytes)
		_ = cc.b.Set(p.head, cc.buf, nil)
		j.parts = append(j.parts, partPub{p: p, next: p.next, first: p.trimmed, firstMoved: p.trimMoved})
		p.inBatch, p.trimMoved = false, false
	}
	cc.parts = cc.parts[:0]
	var err error
	switch {
	case cc.b.Empty():
		_ = cc.b.Close()
	case s.opts.ackBeforeSync:
		err = cc.b.Commit(pebbledb.NoSync)
		_ = cc.b.Close()
	default:
		err = s.db.ApplyNoSyncWait(cc.b, pebbledb.Sync)
		if err == nil {
			j.b = cc.b
			s.syncing.Add(1)
		} else {
			_ = cc.b.Close()
		}
	}
	for _, m := range cc.pending {
		if !m.kept && m.token == "" { // a locked message keeps its value until settled
			m.val = nil
		}
	}
	cc.pending = cc.pending[:0]
	cc.b = nil
	if err != nil {
		j.err = s.fail(err)
	}
	s.jobs <- j
}

// fail records the first write failure; every later write gets it.
func (s *Store) fail(err error) error {
	err = fmt.Errorf("queue: write failed, store needs reopening: %w", err)
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("write failed; refusing further writes", "err", err)
	}
	return *s.failed.Load()
}

// submit queues apply for the committer and returns; the syncer calls
// callback with the outcome once the batch is durable, in the order
// requests were queued. After Close, callback gets hubkit.ErrClosed once
// the syncer has answered every request queued before, so that order holds.
func (s *Store) submit(ctx context.Context, apply func(cc *commitCtx) error, callback func(error)) {
	r := s.reqPool.Get().(*request)
	r.ctx, r.apply, r.callback, r.err = ctx, apply, callback, nil
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		r.ctx, r.apply, r.callback = nil, nil, nil
		s.reqPool.Put(r)
		<-s.synced
		callback(hubkit.ErrClosed)
		return
	}
	s.reqs <- r
	s.mu.RUnlock()
}

// syncLoop is the syncer goroutine: it waits for each batch's fsync, in
// commit order, then publishes it and answers its callers.
func (s *Store) syncLoop() {
	defer close(s.synced)
	for j := range s.jobs {
		err := j.err
		if j.b != nil {
			if serr := j.b.SyncWait(); serr != nil && err == nil {
				err = s.fail(serr)
			}
			_ = j.b.Close()
			s.syncing.Add(-1)
			select { // let the committer hand over the batch it gathered
			case s.syncEnd <- struct{}{}:
			default: // a signal is pending already
			}
		}
		if err == nil {
			s.publish(&j)
		}
		for _, r := range j.reqs {
			if err != nil && r.err == nil {
				r.err = err
			}
			if cb := r.callback; cb != nil {
				rerr := r.err
				r.ctx, r.apply, r.callback = nil, nil, nil
				s.reqPool.Put(r)
				cb(rerr)
				continue
			}
			r.done <- r.err
		}
	}
}

// publish makes a durable batch visible to readers and wakes them.
func (s *Store) publish(j *job) {
	for _, pp := range j.parts {
		if pp.firstMoved {
			pp.p.first.Store(pp.first)
		}
		if pp.p.visible.Load() != pp.next {
			pp.p.visible.Store(pp.next)
			pp.p.wake()
		}
	}
	if j.outFrom > s.outFirst.Load() {
		s.outFirst.Store(j.outFrom)
	}
	if j.outNext != s.outVisible.Load() {
		s.outVisible.Store(j.outNext)
		s.outMu.Lock()
		close(s.outNotify)
		s.outNotify = make(chan struct{})
		s.outMu.Unlock()
	}
}

// Sweep expires device-queue messages and trims streams by retention now,
// as the background sweep does every SweepInterval. Tests call it after
// moving the clock.
func (s *Store) Sweep(ctx context.Context) error {
	_, err := s.Expire(ctx)
	return errors.Join(err, s.trim(ctx))
}

func (s *Store) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, hubkit.ErrClosed) {
			s.log.WarnContext(ctx, "sweep failed", "err", err)
		}
	}
}

// recover loads the heads of partitions and queues, the device-queue
// messages and the outcome journal bounds. It runs in Open, before the
// committer starts.
func (s *Store) recover() error {
	v, err := s.getMeta(metaFormat)
	switch {
	case errors.Is(err, pebbledb.ErrNotFound):
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], formatVersion)
		if err := s.db.Set(metaKey(metaFormat), b[:], pebbledb.Sync); err != nil {
			return err
		}
	case err != nil:
		return err
	case len(v) != 8 || binary.BigEndian.Uint64(v) != formatVersion:
		return fmt.Errorf("unknown store format %x", v)
	}
	if err := s.recoverStreams(); err != nil {
		return err
	}
	if err := s.recoverQueues(); err != nil {
		return err
	}
	return s.recoverOutcomes()
}

// Names of the SpaceMeta keys.
const (
	metaFormat        = "format"
	metaOutcomeNext   = "outcomes.next"
	metaOutcomeCursor = "outcomes.cursor"
)

func metaKey(name string) []byte {
	k, _ := codec.AppendKey(nil, codec.Key{Space: codec.SpaceMeta, Name: name})
	return k
}

// getMeta returns a copy of a meta value, or pebbledb.ErrNotFound.
func (s *Store) getMeta(name string) ([]byte, error) {
	return s.get(metaKey(name))
}

// get returns a copy of the value under key, or pebbledb.ErrNotFound.
func (s *Store) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// scan calls fn for every key in space, in order.
func (s *Store) scan(space codec.Space, fn func(k codec.Key, v []byte) error) error {
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{byte(space)}, UpperBound: []byte{byte(space) + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k, err := codec.ParseKey(it.Key())
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if err := fn(k, it.Value()); err != nil {
			return errors.Join(err, it.Close())
		}
	}
	return it.Close()
}

// enter is called before using the database outside the committer; it
// returns hubkit.ErrClosed once Close has begun. Until the matching leave,
// Close waits before it closes the database.
func (s *Store) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return hubkit.ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.mu.RUnlock() }

// closedErr returns hubkit.ErrClosed once Close has begun.
func (s *Store) closedErr() error {
	select {
	case <-s.done:
		return hubkit.ErrClosed
	default:
		return nil
	}
}

// wait blocks until ch is closed, ctx ends, the store closes or the timer
// (when d > 0) fires.
func (s *Store) wait(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ch:
		return nil
	case <-timeout:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return hubkit.ErrClosed
	}
}

// argError reports a bad argument, wrapping hubkit.ErrArgumentInvalid.
func argError(format string, args ...any) error {
	return fmt.Errorf("queue: %s: %w", fmt.Sprintf(format, args...), hubkit.ErrArgumentInvalid)
}

func checkName(what, name string) error {
	if len(name) > codec.MaxNameLen {
		return argError("%s of %d bytes is longer than %d", what, len(name), codec.MaxNameLen)
	}
	return nil
}

// nanos returns t as Unix nanoseconds, clamped to the int64 range; the
// zero time gives 0.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(time.Unix(0, 1)):
		return 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// pebbleLogger sends Pebble's logs to slog: its chatter at Debug.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

// Fatalf is called by Pebble on invariant violations it cannot survive.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "source", "pebble")
	panic("pebble: " + msg)
}
