package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/codec"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
	"github.com/hubkit/hubkit/queue/queuetest"
)

func openStore(t *testing.T, dir string, opts pebble.Options) *pebble.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := pebble.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eventually polls cond until it returns "" or the deadline passes.
func eventually(t *testing.T, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func appendN(t *testing.T, s queue.Streams, stream string, n int) {
	t.Helper()
	entries := make([]queue.Entry, n)
	for i := range entries {
		entries[i] = queue.Entry{Stream: stream, Message: &hubkit.Message{
			Body:       fmt.Appendf(nil, "record %d with a body of some length", i),
			System:     hubkit.SystemProperties{ConnectionDeviceID: "dev-1", ContentType: "application/json"},
			Properties: hubkit.Properties{{Name: "k", Value: "v"}},
		}}
	}
	if _, err := s.Append(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
}

// TestReadReusesRecords checks the read path allocates per call, not per
// record, when the caller passes the previous records back.
func TestReadReusesRecords(t *testing.T) {
	s := openStore(t, t.TempDir(), pebble.Options{})
	const n = 200
	appendN(t, s, "events", n)
	ctx := context.Background()
	recs, err := s.Read(ctx, "events", 0, 0, n, nil)
	if err != nil || len(recs) != n {
		t.Fatalf("Read = %d records, %v; want %d", len(recs), err, n)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if recs, err = s.Read(ctx, "events", 0, 0, n, recs[:0]); err != nil || len(recs) != n {
			t.Fatalf("Read = %d records, %v", len(recs), err)
		}
	})
	limit := 0.05
	if raceEnabled {
		limit = 1
	}
	if perRecord := allocs / n; perRecord >= limit {
		t.Fatalf("Read allocated %v times for %d records (%.2f per record), want far below one per record", allocs, n, perRecord)
	}
	if got := string(recs[7].Message.Body); got != "record 7 with a body of some length" {
		t.Fatalf("record 7 body = %q", got)
	}
}

// TestBackgroundSweep checks that expiry and retention happen without
// anyone calling Sweep.
func TestBackgroundSweep(t *testing.T) {
	clock := queuetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := openStore(t, t.TempDir(), pebble.Options{Now: clock.Now, SweepInterval: 10 * time.Millisecond})
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, "dev", &hubkit.Message{System: hubkit.SystemProperties{ExpiryTime: clock.Now().Add(time.Minute)}}, queue.EnqueueOptions{Journal: true}); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "events", 10)
	if err := s.SetRetention("events", queue.Retention{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	eventually(t, func() string {
		first, next, err := s.Bounds(ctx, "events", 0)
		if err != nil || first != 10 || next != 10 {
			return fmt.Sprintf("Bounds = %d, %d, %v; want retention to trim to 10, 10", first, next, err)
		}
		return ""
	})
	outs, err := s.Outcomes(ctx, 0, 10)
	if err != nil || len(outs) != 1 || outs[0].Status != queue.Expired {
		t.Fatalf("Outcomes = %+v, %v; want one Expired outcome from the background sweep", outs, err)
	}
}

// TestBlockedReceiveSeesLockTimeout checks that a waiting Receive notices
// a lock ending, on the store's clock, without a new enqueue.
func TestBlockedReceiveSeesLockTimeout(t *testing.T) {
	clock := queuetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := openStore(t, t.TempDir(), pebble.Options{Now: clock.Now})
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, "dev", &hubkit.Message{Body: []byte("x")}, queue.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	first, err := s.Receive(ctx, "dev", queue.ReceiveOptions{Lock: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan queue.Delivery, 1)
	errc := make(chan error, 1)
	go func() {
		d, err := s.Receive(ctx, "dev", queue.ReceiveOptions{Lock: time.Minute})
		errc <- err
		got <- d
	}()
	select { // a non-event can only be checked for a while
	case err := <-errc:
		t.Fatalf("Receive returned %v while the only message was locked", err)
	case <-time.After(50 * time.Millisecond):
	}
	clock.Advance(2 * time.Minute)
	select {
	case err := <-errc:
		d := <-got
		if err != nil || d.Attempts != 2 || d.LockToken == first.LockToken {
			t.Fatalf("Receive after the lock ended = attempts %d, %v; want the message again with a new token", d.Attempts, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting Receive did not notice that the lock ended")
	}
}

// TestCorruptRecordGivesError checks that a damaged value on disk is an
// error wrapping codec.ErrCorrupt, not garbage or a panic.
func TestCorruptRecordGivesError(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir, pebble.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "events", 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := codec.AppendKey(nil, codec.Key{Space: codec.SpaceStream, Name: "events", Partition: 0, Seq: 1})
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), v...)
	closer.Close()
	damaged[len(damaged)-10] ^= 0xff
	if err := db.Set(key, damaged, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, pebble.Options{})
	recs, err := s.Read(context.Background(), "events", 0, 0, 10, nil)
	if !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("Read over a damaged record = %v, want ErrCorrupt", err)
	}
	if len(recs) != 1 {
		t.Fatalf("Read returned %d records before the damaged one, want 1", len(recs))
	}
}

// TestTwoStoresInOneProcess checks that stores share no state.
func TestTwoStoresInOneProcess(t *testing.T) {
	a := openStore(t, t.TempDir(), pebble.Options{})
	b := openStore(t, t.TempDir(), pebble.Options{})
	appendN(t, a, "events", 3)
	appendN(t, b, "events", 1)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		s    *pebble.Store
		want uint64
	}{{"a", a, 3}, {"b", b, 1}} {
		if _, next, err := tt.s.Bounds(ctx, "events", 0); err != nil || next != tt.want {
			t.Errorf("store %s: next = %d, %v; want %d", tt.name, next, err, tt.want)
		}
	}
}

// TestCountersSurviveReopen checks that sequence numbers continue without a
// gap or a repeat after reopening, for streams, queues and the journal.
func TestCountersSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := pebble.Open(dir, pebble.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "events", 5)
	for range 3 {
		if _, err := s.Enqueue(ctx, "dev", &hubkit.Message{}, queue.EnqueueOptions{Journal: true}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Purge(ctx, "dev"); err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, pebble.Options{})
	pos, err := s.Append(ctx, []queue.Entry{{Stream: "events", Message: &hubkit.Message{}}})
	if err != nil || pos[0].Sequence != 5 {
		t.Fatalf("append after reopen = %+v, %v; want sequence 5", pos, err)
	}
	seq, err := s.Enqueue(ctx, "dev", &hubkit.Message{}, queue.EnqueueOptions{Journal: true})
	if err != nil || seq != 3 {
		t.Fatalf("enqueue after reopen = %d, %v; want 3", seq, err)
	}
	if _, err := s.Purge(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	outs, err := s.Outcomes(ctx, 0, 10)
	if err != nil || len(outs) != 4 || outs[3].Seq != 3 {
		t.Fatalf("Outcomes = %+v, %v; want 4 outcomes numbered 0 to 3", outs, err)
	}
}
