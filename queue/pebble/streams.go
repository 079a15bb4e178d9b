package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/hubkit/hubkit/internal/codec"
	"github.com/hubkit/hubkit/queue"
)

// recordHeader is the size of the header before a stream record's message:
// enqueued time (Unix nanoseconds) and the partition's byte count before
// the record.
const recordHeader = 16

type partKey struct {
	stream    string
	partition uint32
}

// partition is one stream partition.
type partition struct {
	prefix []byte // SpaceStream key prefix of its records; immutable
	head   []byte // its SpaceStreamHead key; immutable

	// Owned by the committer.
	next      uint64 // sequence number of the next append
	lastTime  int64  // enqueued time of the last record, Unix nanoseconds
	cumBytes  uint64 // bytes of record values appended so far
	inBatch   bool   // listed in commitCtx.parts
	trimmed   uint64 // first record not trimmed, including this batch's trims
	trimMoved bool   // trimmed moved in this batch

	visible atomic.Uint64 // records below are durable and readable
	first   atomic.Uint64 // records below were trimmed

	mu     sync.Mutex // guards notify
	notify chan struct{}
}

// wake wakes the readers waiting for the partition.
func (p *partition) wake() {
	p.mu.Lock()
	close(p.notify)
	p.notify = make(chan struct{})
	p.mu.Unlock()
}

func (p *partition) waitChan() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.notify
}

func (p *partition) key(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, p.prefix...), seq)
}

// partition returns the partition, creating an empty one when it is new.
func (s *Store) partition(stream string, p int) (*partition, error) {
	if err := checkName("stream name", stream); err != nil {
		return nil, err
	}
	if p < 0 || p > math.MaxUint32 {
		return nil, argError("partition %d out of range", p)
	}
	k := partKey{stream, uint32(p)}
	s.partsMu.RLock()
	part := s.parts[k]
	s.partsMu.RUnlock()
	if part != nil {
		return part, nil
	}
	s.partsMu.Lock()
	defer s.partsMu.Unlock()
	if part = s.parts[k]; part == nil {
		part = newPartition(k)
		s.parts[k] = part
	}
	return part, nil
}

func newPartition(k partKey) *partition {
	prefix, _ := codec.AppendKey(nil, codec.Key{Space: codec.SpaceStreamHead, Name: k.stream, Partition: k.partition})
	head := append([]byte(nil), prefix...)
	prefix[0] = byte(codec.SpaceStream) // same layout, minus the sequence number
	return &partition{prefix: prefix, head: head, notify: make(chan struct{})}
}

// recoverStreams loads every partition's head and first retained record.
// decodeStreamHead decodes a partition head value, as commit writes it,
// into p: next sequence number, last enqueued time and byte count.
func decodeStreamHead(v []byte, p *partition) error {
	if len(v) != 24 {
		return fmt.Errorf("%w: stream head of %d bytes", codec.ErrCorrupt, len(v))
	}
	p.next = binary.BigEndian.Uint64(v)
	p.lastTime = int64(binary.BigEndian.Uint64(v[8:]))
	p.cumBytes = binary.BigEndian.Uint64(v[16:])
	return nil
}

// decodeRecordHeader decodes the header of a stream record value: its
// enqueued time (Unix nanoseconds) and the partition's byte count before it.
func decodeRecordHeader(v []byte) (enqueued int64, before uint64, err error) {
	if len(v) < recordHeader {
		return 0, 0, fmt.Errorf("%w: stream record of %d bytes", codec.ErrCorrupt, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), binary.BigEndian.Uint64(v[8:]), nil
}

func (s *Store) recoverStreams() error {
	err := s.scan(codec.SpaceStreamHead, func(k codec.Key, v []byte) error {
		p := newPartition(partKey{k.Name, k.Partition})
		if err := decodeStreamHead(v, p); err != nil {
			return err
		}
		p.visible.Store(p.next)
		s.parts[partKey{k.Name, k.Partition}] = p
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range s.parts {
		first := p.next
		it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: p.prefix, UpperBound: p.key(nil, p.next)})
		if err != nil {
			return err
		}
		if it.First() {
			first = binary.BigEndian.Uint64(it.Key()[len(p.prefix):])
		}
		if err := it.Close(); err != nil {
			return err
		}
		p.first.Store(first)
		p.trimmed = first
	}
	return nil
}

// Append implements [queue.Streams]. Messages are encoded on the caller's
// goroutine; the committer only stamps and copies them, so that it stays
// free for the next batch.
func (s *Store) Append(ctx context.Context, entries []queue.Entry) ([]queue.Position, error) {
	if len(entries) == 0 {
		return nil, s.closedErr()
	}
	apply, pos, err := s.prepareAppend(entries)
	if err != nil {
		return nil, err
	}
	if err := s.do(ctx, apply); err != nil {
		return nil, fmt.Errorf("queue: append: %w", err)
	}
	return pos, nil
}

// AppendAsync implements [queue.AsyncAppender]: the request goes to the
// committer like Append's, and the syncer calls done once the batch that
// holds it is durable. Entries that Append would refuse are refused in
// their turn, so that done calls keep the call order.
func (s *Store) AppendAsync(ctx context.Context, entries []queue.Entry, done func([]queue.Position, error)) {
	apply, pos, err := s.prepareAppend(entries)
	if err != nil {
		apply = func(*commitCtx) error { return err }
	}
	s.submit(ctx, apply, func(err error) {
		if err != nil {
			done(nil, fmt.Errorf("queue: append: %w", err))
			return
		}
		done(pos, nil)
	})
}

// prepareAppend encodes entries and returns the committer's work for them
// and the positions it fills in, or an error for bad entries.
func (s *Store) prepareAppend(entries []queue.Entry) (func(cc *commitCtx) error, []queue.Position, error) {
	parts := make([]*partition, len(entries))
	vals := make([][]byte, len(entries))
	nums := make([]int, len(entries))
	for i, e := range entries {
		if e.Message == nil {
			return nil, nil, argError("entry %d has no message", i)
		}
		p, err := s.partition(e.Stream, e.Partition)
		if err != nil {
			return nil, nil, err
		}
		parts[i], nums[i] = p, e.Partition
		vals[i] = codec.AppendMessage(make([]byte, recordHeader, recordHeader+e.Message.Size()+64), e.Message)
	}
	pos := make([]queue.Position, len(entries))
	return func(cc *commitCtx) error {
		now := nanos(cc.now(s))
		for i, p := range parts {
			t := max(now, p.lastTime)
			binary.BigEndian.PutUint64(vals[i], uint64(t))
			binary.BigEndian.PutUint64(vals[i][8:], p.cumBytes)
			cc.buf = p.key(cc.buf[:0], p.next)
			_ = cc.b.Set(cc.buf, vals[i], nil)
			pos[i] = queue.Position{Partition: nums[i], Offset: p.next, Sequence: p.next, EnqueuedTime: fromNanos(t)}
			p.next++
			p.lastTime = t
			p.cumBytes += uint64(len(vals[i]))
			cc.touch(p)
		}
		return nil
	}, pos, nil
}

// touch lists p among the partitions whose head the batch rewrites.
func (cc *commitCtx) touch(p *partition) {
	if !p.inBatch {
		p.inBatch = true
		cc.parts = append(cc.parts, p)
	}
}

// Read implements [queue.Streams]. It reuses the Body and Properties
// capacity of dst's elements beyond len(dst), so a caller that passes the
// previous result truncated to zero length reads without allocating per
// record.
func (s *Store) Read(ctx context.Context, stream string, partition int, from uint64, limit int, dst []queue.Record) ([]queue.Record, error) {
	if limit <= 0 {
		return dst, argError("read limit %d is not positive", limit)
	}
	p, err := s.partition(stream, partition)
	if err != nil {
		return dst, err
	}
	for {
		if err := s.closedErr(); err != nil {
			return dst, err
		}
		ch := p.waitChan() // before loading visible, so no wake-up is missed
		from = max(from, p.first.Load())
		if vis := p.visible.Load(); from < vis {
			end := vis
			if uint64(limit) < end-from {
				end = from + uint64(limit)
			}
			n := len(dst)
			dst, err = s.readRange(p, partition, from, end, dst)
			if err != nil || len(dst) > n {
				return dst, err
			}
			// A trim removed the range and has not published the new
			// first record yet: look again shortly.
			ch = nil
		}
		wait := time.Duration(0)
		if ch == nil {
			wait = time.Millisecond
		}
		if err := s.wait(ctx, ch, wait); err != nil {
			return dst, err
		}
	}
}

// readRange appends the records [from, end) of p to dst.
func (s *Store) readRange(p *partition, partNo int, from, end uint64, dst []queue.Record) ([]queue.Record, error) {
	if err := s.enter(); err != nil {
		return dst, err
	}
	defer s.leave()
	var lo, hi [64]byte
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: p.key(lo[:0], from), UpperBound: p.key(hi[:0], end)})
	if err != nil {
		return dst, fmt.Errorf("queue: read: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		var enqueued int64
		if enqueued, _, err = decodeRecordHeader(v); err != nil {
			break
		}
		if len(dst) < cap(dst) {
			dst = dst[:len(dst)+1]
		} else {
			dst = append(dst, queue.Record{})
		}
		r := &dst[len(dst)-1]
		if err = codec.DecodeMessage(v[recordHeader:], &r.Message); err != nil {
			dst = dst[:len(dst)-1]
			break
		}
		seq := binary.BigEndian.Uint64(it.Key()[len(p.prefix):])
		r.Position = queue.Position{Partition: partNo, Offset: seq, Sequence: seq, EnqueuedTime: fromNanos(enqueued)}
		r.Message.System.SequenceNumber = seq
		r.Message.System.EnqueuedTime = r.EnqueuedTime
	}
	if err = errors.Join(err, it.Close()); err != nil {
		return dst, fmt.Errorf("queue: read: %w", err)
	}
	return dst, nil
}

// Bounds implements [queue.Streams].
func (s *Store) Bounds(ctx context.Context, stream string, partition int) (first, next uint64, err error) {
	if err := s.closedErr(); err != nil {
		return 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	p, err := s.partition(stream, partition)
	if err != nil {
		return 0, 0, err
	}
	next = p.visible.Load()
	return min(p.first.Load(), next), next, nil
}

// SeekTime implements [queue.Streams] with a binary search over the
// records' enqueued times, which never decrease along a partition.
func (s *Store) SeekTime(ctx context.Context, stream string, partition int, t time.Time) (uint64, error) {
	first, next, err := s.Bounds(ctx, stream, partition)
	if err != nil {
		return 0, err
	}
	p, _ := s.partition(stream, partition)
	target := nanos(t)
	return s.search(p, first, next, func(v []byte) bool { return int64(binary.BigEndian.Uint64(v)) >= target })
}

// search returns the first sequence number in [lo, hi) whose record
// satisfies ok, or hi; ok must be false then true along the partition. A
// record trimmed meanwhile counts as not ok.
func (s *Store) search(p *partition, lo, hi uint64, ok func(v []byte) bool) (uint64, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	var searchErr error
	var key []byte
	i := sort.Search(int(hi-lo), func(i int) bool {
		key = p.key(key[:0], lo+uint64(i))
		v, closer, err := s.db.Get(key)
		if errors.Is(err, pebbledb.ErrNotFound) {
			return false
		}
		if err != nil {
			searchErr = err
			return true
		}
		defer closer.Close()
		if _, _, err := decodeRecordHeader(v); err != nil {
			searchErr = err
			return true
		}
		return ok(v)
	})
	if searchErr != nil {
		return 0, fmt.Errorf("queue: search stream: %w", searchErr)
	}
	return lo + uint64(i), nil
}

type cursorKey struct {
	cursor    string
	stream    string
	partition uint32
}

func (k cursorKey) encode(dst []byte) []byte {
	dst, _ = codec.AppendKey(dst, codec.Key{Space: codec.SpaceCursor, Name: k.cursor, Stream: k.stream, Partition: k.partition})
	return dst
}

func newCursorKey(cursor, stream string, partition int) (cursorKey, error) {
	if err := checkName("cursor name", cursor); err != nil {
		return cursorKey{}, err
	}
	if err := checkName("stream name", stream); err != nil {
		return cursorKey{}, err
	}
	if partition < 0 || partition > math.MaxUint32 {
		return cursorKey{}, argError("partition %d out of range", partition)
	}
	return cursorKey{cursor, stream, uint32(partition)}, nil
}

// cursorLocked returns the cursor's value from the committer's cache,
// loading it from Pebble on first use. Call it on the committer only.
func (s *Store) cursorLocked(k cursorKey) (uint64, bool, error) {
	if v, ok := s.cursors[k]; ok {
		return v, true, nil
	}
	v, err := s.get(k.encode(nil))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("%w: cursor of %d bytes", codec.ErrCorrupt, len(v))
	}
	n := binary.BigEndian.Uint64(v)
	s.cursors[k] = n
	return n, true, nil
}

// Commit implements [queue.Streams].
func (s *Store) Commit(ctx context.Context, cursor, stream string, partition int, next uint64) error {
	k, err := newCursorKey(cursor, stream, partition)
	if err != nil {
		return err
	}
	err = s.do(ctx, func(cc *commitCtx) error {
		cur, ok, err := s.cursorLocked(k)
		if err != nil || (ok && next <= cur) {
			return err
		}
		cc.buf = k.encode(cc.buf[:0])
		_ = cc.b.Set(cc.buf, binary.BigEndian.AppendUint64(nil, next), nil)
		s.cursors[k] = next
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: commit cursor %q: %w", cursor, err)
	}
	return nil
}

// Cursor implements [queue.Streams].
func (s *Store) Cursor(ctx context.Context, cursor, stream string, partition int) (uint64, error) {
	k, err := newCursorKey(cursor, stream, partition)
	if err != nil {
		return 0, err
	}
	var v uint64
	var found bool
	err = s.do(ctx, func(*commitCtx) (err error) {
		v, found, err = s.cursorLocked(k)
		return err
	})
	if err == nil && !found {
		err = queue.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("queue: cursor %q: %w", cursor, err)
	}
	return v, nil
}

// SetRetention implements [queue.Streams]. Retention is kept in memory:
// the hub sets it again each time it opens the store. The background sweep
// applies it.
func (s *Store) SetRetention(stream string, r queue.Retention) error {
	if err := s.closedErr(); err != nil {
		return err
	}
	if r.MaxAge < 0 || r.MaxBytes < 0 {
		return argError("negative retention %+v", r)
	}
	s.retMu.Lock()
	defer s.retMu.Unlock()
	if r == (queue.Retention{}) {
		delete(s.retention, stream)
	} else {
		s.retention[stream] = r
	}
	return nil
}

// trim removes, with range deletions, the records each stream's retention
// no longer keeps. The searches run on the caller's goroutine; only the
// deletion goes through the committer.
func (s *Store) trim(ctx context.Context) error {
	s.retMu.Lock()
	ret := make(map[string]queue.Retention, len(s.retention))
	for k, v := range s.retention {
		ret[k] = v
	}
	s.retMu.Unlock()
	if len(ret) == 0 {
		return nil
	}
	s.partsMu.RLock()
	var todo []*partition
	var rets []queue.Retention
	for k, p := range s.parts {
		if r, ok := ret[k.stream]; ok {
			todo = append(todo, p)
			rets = append(rets, r)
		}
	}
	s.partsMu.RUnlock()
	var errs []error
	for i, p := range todo {
		if err := s.trimPartition(ctx, p, rets[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Store) trimPartition(ctx context.Context, p *partition, r queue.Retention) error {
	first, next := p.first.Load(), p.visible.Load()
	if first >= next {
		return nil
	}
	cut := first
	if r.MaxAge > 0 {
		cutoff := nanos(s.now().Add(-r.MaxAge))
		c, err := s.search(p, first, next, func(v []byte) bool { return int64(binary.BigEndian.Uint64(v)) >= cutoff })
		if err != nil {
			return err
		}
		cut = max(cut, c)
	}
	if r.MaxBytes > 0 {
		if err := s.enter(); err != nil {
			return err
		}
		last, err := s.get(p.key(nil, next-1))
		s.leave()
		if err != nil || len(last) < recordHeader {
			return fmt.Errorf("queue: trim: last record of %d bytes: %w", len(last), errors.Join(err, codec.ErrCorrupt))
		}
		total := binary.BigEndian.Uint64(last[8:]) + uint64(len(last))
		c, err := s.search(p, first, next, func(v []byte) bool { return total-binary.BigEndian.Uint64(v[8:]) <= uint64(r.MaxBytes) })
		if err != nil {
			return err
		}
		cut = max(cut, c)
	}
	if cut <= first {
		return nil
	}
	return s.do(ctx, func(cc *commitCtx) error {
		if cut <= p.trimmed {
			return nil
		}
		if err := cc.b.DeleteRange(p.prefix, p.key(nil, cut), nil); err != nil {
			return err
		}
		p.trimmed, p.trimMoved = cut, true
		cc.touch(p)
		return nil
	})
}
