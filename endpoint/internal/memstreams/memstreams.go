// Package memstreams is a small in-memory queue.Streams for the endpoint
// tests, so that they depend on no storage engine.
package memstreams

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

// Streams keeps streams in memory. It is safe for concurrent use.
type Streams struct {
	now func() time.Time

	mu      sync.Mutex // guards the fields below
	parts   map[string][]queue.Record
	cursors map[string]uint64
	changed chan struct{} // closed and replaced on every Append
	commits int
}

var _ queue.Streams = (*Streams)(nil)

// New returns empty Streams whose enqueued times come from now (nil: time.Now).
func New(now func() time.Time) *Streams {
	if now == nil {
		now = time.Now
	}
	return &Streams{now: now, parts: map[string][]queue.Record{}, cursors: map[string]uint64{}, changed: make(chan struct{})}
}

func key(stream string, p int) string { return fmt.Sprintf("%s/%d", stream, p) }

// Append stores the entries.
func (s *Streams) Append(ctx context.Context, entries []queue.Entry) ([]queue.Position, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := make([]queue.Position, len(entries))
	now := s.now()
	for i, e := range entries {
		k := key(e.Stream, e.Partition)
		seq := uint64(len(s.parts[k]))
		m := e.Message.Clone()
		m.System.SequenceNumber, m.System.EnqueuedTime = seq, now
		pos[i] = queue.Position{Partition: e.Partition, Offset: seq, Sequence: seq, EnqueuedTime: now}
		s.parts[k] = append(s.parts[k], queue.Record{Position: pos[i], Message: *m})
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return pos, nil
}

// AppendMessages appends msgs to one partition of stream.
func (s *Streams) AppendMessages(ctx context.Context, stream string, p int, msgs ...*hubkit.Message) error {
	entries := make([]queue.Entry, len(msgs))
	for i, m := range msgs {
		entries[i] = queue.Entry{Stream: stream, Partition: p, Message: m}
	}
	_, err := s.Append(ctx, entries)
	return err
}

// Read returns records from from on, waiting for one.
func (s *Streams) Read(ctx context.Context, stream string, p int, from uint64, max int, dst []queue.Record) ([]queue.Record, error) {
	for {
		s.mu.Lock()
		recs := s.parts[key(stream, p)]
		if from < uint64(len(recs)) {
			for _, r := range recs[from:min(uint64(len(recs)), from+uint64(max))] {
				r.Message = *r.Message.Clone()
				dst = append(dst, r)
			}
			s.mu.Unlock()
			return dst, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

// Bounds returns 0 and the next sequence number.
func (s *Streams) Bounds(ctx context.Context, stream string, p int) (uint64, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return 0, uint64(len(s.parts[key(stream, p)])), nil
}

// SeekTime returns the first record at or after t.
func (s *Streams) SeekTime(ctx context.Context, stream string, p int, t time.Time) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := s.parts[key(stream, p)]
	for _, r := range recs {
		if !r.EnqueuedTime.Before(t) {
			return r.Sequence, nil
		}
	}
	return uint64(len(recs)), nil
}

// Commit moves a cursor forward.
func (s *Streams) Commit(ctx context.Context, cursor, stream string, p int, next uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := cursor + "\x00" + key(stream, p)
	if next > s.cursors[k] {
		s.cursors[k] = next
	}
	s.commits++
	return nil
}

// Cursor returns a committed cursor or queue.ErrNotFound.
func (s *Streams) Cursor(ctx context.Context, cursor, stream string, p int) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.cursors[cursor+"\x00"+key(stream, p)]
	if !ok {
		return 0, queue.ErrNotFound
	}
	return n, nil
}

// SetRetention does nothing: these streams keep everything.
func (s *Streams) SetRetention(string, queue.Retention) error { return nil }
