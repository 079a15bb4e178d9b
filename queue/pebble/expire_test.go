package pebble_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/poll"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

// TestExpiryLetsAppendsThrough checks that expiring many journaled
// messages, whose values must be read back from Pebble, is done in several
// commits and that an append made meanwhile is committed before the last
// of them instead of waiting for all the expiry. The store's clock moves
// on every reading and the committer reads it once per batch, so an
// outcome's time tells its batch.
func TestExpiryLetsAppendsThrough(t *testing.T) {
	fs := &gatedFS{FS: vfs.NewMem(), blocked: make(chan struct{}, 16)}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var tick, skip atomic.Int64
	now := func() time.Time {
		return base.Add(time.Duration(skip.Load()) + time.Duration(tick.Add(1))*time.Microsecond)
	}
	s := openStore(t, "db", pebble.Options{FS: fs, Now: now, QueueMemory: -1, SweepInterval: time.Hour})
	t.Cleanup(fs.open) // before the store closes: Close syncs
	ctx := context.Background()
	const n = 1000 // several commits' worth
	for i := range n {
		msg := &hubkit.Message{Body: []byte("payload"), System: hubkit.SystemProperties{
			MessageID: fmt.Sprint("m", i), ExpiryTime: base.Add(time.Hour)}}
		if _, err := s.Enqueue(ctx, fmt.Sprint("dev", i%3), msg, queue.EnqueueOptions{Journal: true}); err != nil {
			t.Fatal(err)
		}
	}
	skip.Store(int64(2 * time.Hour))

	fs.shut()
	type result struct {
		n   int
		err error
	}
	expired := make(chan result, 1)
	go func() {
		k, err := s.Expire(ctx)
		expired <- result{k, err}
	}()
	select { // the expiry's first commit is now held in its sync
	case <-fs.blocked:
	case <-time.After(poll.Timeout):
		t.Fatal("the expiry never reached a sync")
	}
	var appended queue.Position
	appendDone := make(chan error, 1)
	s.AppendAsync(ctx, []queue.Entry{{Stream: "events", Message: &hubkit.Message{Body: []byte("x")}}}, func(pos []queue.Position, err error) {
		if err == nil && len(pos) == 1 {
			appended = pos[0]
		}
		appendDone <- err
	})
	fs.open()
	if err := <-appendDone; err != nil {
		t.Fatalf("append during expiry: %v", err)
	}
	if r := <-expired; r.err != nil || r.n != n {
		t.Fatalf("Expire = %d, %v; want %d", r.n, r.err, n)
	}

	var outs []queue.Outcome
	for len(outs) < n {
		o, err := s.Outcomes(ctx, uint64(len(outs)), n)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o...)
	}
	commits := map[time.Time]int{}
	var last time.Time
	for _, o := range outs {
		if o.Status != queue.Expired {
			t.Fatalf("outcome %+v, want Expired", o)
		}
		commits[o.Time]++
		if o.Time.After(last) {
			last = o.Time
		}
	}
	if len(commits) < 3 {
		t.Errorf("%d expired messages went into %d commits, want several", n, len(commits))
	}
	if !appended.EnqueuedTime.Before(last) {
		t.Errorf("the append made during the expiry was committed at %v, not before the expiry's last commit at %v", appended.EnqueuedTime, last)
	}
}
