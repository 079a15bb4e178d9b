package queuetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
)

func testStreams(t *testing.T, h Harness) {
	runRules(t, h, []rule{
		{name: "AppendAssignsGaplessSequencesFrom0", run: testAppendSequences},
		{name: "ReadReturnsWhatWasAppendedInOrder", run: testReadOrder},
		{name: "ReadHonoursFromAndMax", run: testReadFromMax},
		{name: "ReadAppendsToDst", run: testReadDst},
		{name: "StreamsAndPartitionsAreIndependent", run: testStreamsIndependent},
		{name: "NamesAreOpaqueStrings", run: testStreamNames},
		{name: "NoMemorySharedWithCaller", run: testStreamsNoSharing},
		{name: "ReadWaitsForAppend", run: testReadWaits},
		{name: "ReadEndsWithContext", run: testReadContext},
		{name: "Bounds", run: testBounds},
		{name: "SeekTime", run: testSeekTime},
		{name: "CursorsNeverMoveBackwards", run: testCursors},
		{name: "RetentionByAge", run: testRetentionAge},
		{name: "RetentionBySize", run: testRetentionSize},
		{name: "TrimmingEverythingKeepsTheSequence", run: testTrimAll},
		{name: "FailedAppendStoresNothing", run: testAppendBadInput},
		{name: "ReopenKeepsRecordsAndCursors", run: testStreamsReopen, persistent: true},
	})
}

// msg returns a message with the given body and one application property.
func msg(body string) *hubkit.Message {
	return &hubkit.Message{
		Body:       []byte(body),
		System:     hubkit.SystemProperties{MessageID: "id-" + body, ContentType: "text/plain"},
		Properties: hubkit.Properties{{Name: "k", Value: "v-" + body}},
	}
}

// appendN appends n messages body0.. to stream/partition, one per call,
// and returns their positions.
func appendN(t *testing.T, e *env, stream string, part, n int) []queue.Position {
	t.Helper()
	var out []queue.Position
	for i := range n {
		pos, err := e.q.Append(e.ctx, []queue.Entry{{Stream: stream, Partition: part, Message: msg(fmt.Sprint(i))}})
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if len(pos) != 1 {
			t.Fatalf("Append of one entry returned %d positions", len(pos))
		}
		out = append(out, pos[0])
	}
	return out
}

// read reads without waiting long: the records are expected to be there.
func read(t *testing.T, e *env, stream string, part int, from uint64, max int) []queue.Record {
	t.Helper()
	recs, err := e.q.Read(e.ctx, stream, part, from, max, nil)
	if err != nil {
		t.Fatalf("Read(%s/%d from %d, max %d): %v", stream, part, from, max, err)
	}
	return recs
}

// checkRecord checks that r is the record appended as msg(body) at pos.
func checkRecord(t *testing.T, rule string, r queue.Record, pos queue.Position, body string) {
	t.Helper()
	want := msg(body)
	switch {
	case r.Sequence != pos.Sequence || r.Offset != pos.Offset || r.Partition != pos.Partition || !sameTime(r.EnqueuedTime, pos.EnqueuedTime):
		t.Errorf("%s: record position %+v, Append returned %+v", rule, r.Position, pos)
	case string(r.Message.Body) != body:
		t.Errorf("%s: record %d has body %q, want %q", rule, r.Sequence, r.Message.Body, body)
	case r.Message.System.MessageID != want.System.MessageID || r.Message.System.ContentType != want.System.ContentType:
		t.Errorf("%s: record %d system properties %+v, want those appended", rule, r.Sequence, r.Message.System)
	case len(r.Message.Properties) != 1 || r.Message.Properties[0] != want.Properties[0]:
		t.Errorf("%s: record %d properties %v, want %v", rule, r.Sequence, r.Message.Properties, want.Properties)
	case r.Message.System.SequenceNumber != pos.Sequence || !sameTime(r.Message.System.EnqueuedTime, pos.EnqueuedTime):
		t.Errorf("%s: record %d: Message.System has SequenceNumber %d, EnqueuedTime %v; want its position's %d, %v",
			rule, r.Sequence, r.Message.System.SequenceNumber, r.Message.System.EnqueuedTime, pos.Sequence, pos.EnqueuedTime)
	}
}

func testAppendSequences(t *testing.T, e *env) {
	const rule = "Append gives consecutive sequence numbers from 0 per partition, in entry order, increasing offsets and the clock's time"
	t0 := e.clock.Now()
	entries := []queue.Entry{
		{Stream: "s", Partition: 0, Message: msg("a")},
		{Stream: "s", Partition: 1, Message: msg("b")},
		{Stream: "s", Partition: 0, Message: msg("c")},
		{Stream: "s", Partition: 0, Message: msg("d")},
	}
	pos, err := e.q.Append(e.ctx, entries)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(pos) != len(entries) {
		t.Fatalf("%s: %d positions for %d entries", rule, len(pos), len(entries))
	}
	t1 := e.clock.Advance(time.Second)
	more, err := e.q.Append(e.ctx, []queue.Entry{{Stream: "s", Partition: 0, Message: msg("e")}, {Stream: "s", Partition: 1, Message: msg("f")}})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	pos = append(pos, more...)
	want := []struct {
		part int
		seq  uint64
		at   time.Time
	}{{0, 0, t0}, {1, 0, t0}, {0, 1, t0}, {0, 2, t0}, {0, 3, t1}, {1, 1, t1}}
	for i, w := range want {
		p := pos[i]
		if p.Partition != w.part || p.Sequence != w.seq || !sameTime(p.EnqueuedTime, w.at) {
			t.Errorf("%s: position %d is %+v, want partition %d, sequence %d, enqueued %v", rule, i, p, w.part, w.seq, w.at)
		}
	}
	last := map[int]uint64{}
	for i, p := range pos {
		if prev, ok := last[p.Partition]; ok && p.Offset <= prev {
			t.Errorf("%s: position %d has offset %d, not above the partition's previous %d", rule, i, p.Offset, prev)
		}
		last[p.Partition] = p.Offset
	}
}

func testReadOrder(t *testing.T, e *env) {
	const rule = "Read returns the records appended, in order, with their positions stamped on the message"
	pos := appendN(t, e, "s", 0, 5)
	recs := read(t, e, "s", 0, 0, 100)
	if len(recs) != 5 {
		t.Fatalf("%s: read %d records, want 5", rule, len(recs))
	}
	for i, r := range recs {
		checkRecord(t, rule, r, pos[i], fmt.Sprint(i))
	}
}

func testReadFromMax(t *testing.T, e *env) {
	const rule = "Read returns at most max records starting at sequence from"
	pos := appendN(t, e, "s", 3, 6)
	for _, c := range []struct {
		from uint64
		max  int
		want []int
	}{{0, 2, []int{0, 1}}, {2, 3, []int{2, 3, 4}}, {4, 10, []int{4, 5}}, {5, 1, []int{5}}} {
		recs := read(t, e, "s", 3, c.from, c.max)
		if len(recs) == 0 || len(recs) > c.max {
			t.Errorf("%s: from %d max %d read %d records", rule, c.from, c.max, len(recs))
			continue
		}
		if recs[0].Sequence != c.from {
			t.Errorf("%s: from %d read first sequence %d", rule, c.from, recs[0].Sequence)
		}
		for i, r := range recs {
			checkRecord(t, rule, r, pos[c.from+uint64(i)], fmt.Sprint(c.from+uint64(i)))
		}
	}
}

func testReadDst(t *testing.T, e *env) {
	const rule = "Read appends to dst and keeps its existing elements"
	appendN(t, e, "s", 0, 2)
	dst := make([]queue.Record, 1, 8)
	dst[0].Message.Body = []byte("mine")
	got, err := e.q.Read(e.ctx, "s", 0, 0, 10, dst)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(got) != 3 || string(got[0].Message.Body) != "mine" || string(got[1].Message.Body) != "0" || string(got[2].Message.Body) != "1" {
		t.Errorf("%s: got %d records %v", rule, len(got), got)
	}
}

func testStreamsIndependent(t *testing.T, e *env) {
	const rule = "each stream and partition has its own sequence numbers and records"
	appendN(t, e, "a", 0, 3)
	appendN(t, e, "b", 0, 1)
	appendN(t, e, "a", 7, 2)
	for _, c := range []struct {
		stream string
		part   int
		next   uint64
	}{{"a", 0, 3}, {"b", 0, 1}, {"a", 7, 2}, {"a", 1, 0}, {"c", 0, 0}} {
		first, next, err := e.q.Bounds(e.ctx, c.stream, c.part)
		if err != nil {
			t.Fatalf("Bounds: %v", err)
		}
		if first != 0 || next != c.next {
			t.Errorf("%s: Bounds(%s/%d) = %d, %d; want 0, %d", rule, c.stream, c.part, first, next, c.next)
		}
		if c.next > 0 {
			recs := read(t, e, c.stream, c.part, 0, 100)
			if uint64(len(recs)) != c.next {
				t.Errorf("%s: %s/%d holds %d records, want %d", rule, c.stream, c.part, len(recs), c.next)
			}
		}
	}
}

// names are stream, queue, cursor and key names that a store encoding them
// carelessly (prefixes, separators, 0x00 and 0xff) would mix up.
var names = []string{"a", "ab", "a/b", "a\x00", "a\x00b", "a\xff", "a\xff\xff", "\xff", "é", "b"}

func testStreamNames(t *testing.T, e *env) {
	const rule = "streams and cursors whose names share prefixes or hold any bytes are independent"
	for i, name := range names {
		appendN(t, e, name, i%3, i+1)
		appendN(t, e, name, 1000, 1)
		if err := e.q.Commit(e.ctx, name, name, i%3, uint64(i+1)); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if err := e.q.Commit(e.ctx, "c", name, 1000, uint64(100+i)); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	for i, name := range names {
		if first, next, err := e.q.Bounds(e.ctx, name, i%3); err != nil || first != 0 || next != uint64(i+1) {
			t.Errorf("%s: Bounds(%q/%d) = %d, %d, %v; want 0, %d", rule, name, i%3, first, next, err, i+1)
		}
		if recs := read(t, e, name, i%3, 0, 100); len(recs) != i+1 {
			t.Errorf("%s: %q/%d holds %d records, want %d", rule, name, i%3, len(recs), i+1)
		}
		if first, next, err := e.q.Bounds(e.ctx, name, 1000); err != nil || first != 0 || next != 1 {
			t.Errorf("%s: Bounds(%q/1000) = %d, %d, %v; want 0, 1", rule, name, first, next, err)
		}
		if got, err := e.q.Cursor(e.ctx, name, name, i%3); err != nil || got != uint64(i+1) {
			t.Errorf("%s: Cursor(%q, %q/%d) = %d, %v; want %d", rule, name, name, i%3, got, err, i+1)
		}
		if got, err := e.q.Cursor(e.ctx, "c", name, 1000); err != nil || got != uint64(100+i) {
			t.Errorf("%s: Cursor(c, %q/1000) = %d, %v; want %d", rule, name, got, err, 100+i)
		}
	}
}

func testStreamsNoSharing(t *testing.T, e *env) {
	const rule = "Append does not keep the caller's message and Read returns copies"
	m := msg("x")
	if _, err := e.q.Append(e.ctx, []queue.Entry{{Stream: "s", Message: m}}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	m.Body[0] = 'y'
	m.Properties[0].Value = "changed"
	recs := read(t, e, "s", 0, 0, 1)
	if string(recs[0].Message.Body) != "x" || recs[0].Message.Properties[0].Value != "v-x" {
		t.Fatalf("%s: changing the appended message changed the stored record: %+v", rule, recs[0].Message)
	}
	recs[0].Message.Body[0] = 'z'
	recs[0].Message.Properties[0].Value = "changed"
	again := read(t, e, "s", 0, 0, 1)
	if string(again[0].Message.Body) != "x" || again[0].Message.Properties[0].Value != "v-x" {
		t.Errorf("%s: changing a read record changed the stored record: %+v", rule, again[0].Message)
	}
}

func testReadWaits(t *testing.T, e *env) {
	const rule = "Read waits until a record at or after from is appended"
	appendN(t, e, "s", 0, 1)
	ch := goCall(func() ([]queue.Record, error) { return e.q.Read(e.ctx, "s", 0, 3, 10, nil) })
	waiting(t, e, ch, "testReadWaits.func", 1, "Read past the last record")
	appendN(t, e, "s", 0, 2)
	waiting(t, e, ch, "testReadWaits.func", 1, "Read from 3 after records 1 and 2 were appended")
	if _, err := e.q.Append(e.ctx, []queue.Entry{{Stream: "s", Message: msg("late")}}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	r := await(t, e, ch, "Read after Append")
	if r.err != nil || len(r.v) != 1 || r.v[0].Sequence != 3 || string(r.v[0].Message.Body) != "late" {
		t.Errorf("%s: Read returned %v, %v; want the record appended while it waited", rule, r.v, r.err)
	}
}

func testReadContext(t *testing.T, e *env) {
	const rule = "a waiting Read returns the context's error when it ends"
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := e.q.Read(ctx, "s", 0, 0, 10, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%s: Read on an empty partition with a deadline returned %v, want context.DeadlineExceeded", rule, err)
	}
	ctx, cancel = context.WithCancel(e.ctx)
	ch := goCall(func() ([]queue.Record, error) { return e.q.Read(ctx, "s", 0, 0, 10, nil) })
	waiting(t, e, ch, "testReadContext.func", 1, "Read on an empty partition")
	cancel()
	if r := await(t, e, ch, "Read after cancel"); !errors.Is(r.err, context.Canceled) {
		t.Errorf("%s: Read returned %v after cancel, want context.Canceled", rule, r.err)
	}
}

func testBounds(t *testing.T, e *env) {
	const rule = "Bounds returns the first retained and the next sequence number, equal when empty"
	first, next, err := e.q.Bounds(e.ctx, "s", 0)
	if err != nil || first != 0 || next != 0 {
		t.Errorf("%s: empty partition: Bounds = %d, %d, %v; want 0, 0, nil", rule, first, next, err)
	}
	appendN(t, e, "s", 0, 4)
	first, next, err = e.q.Bounds(e.ctx, "s", 0)
	if err != nil || first != 0 || next != 4 {
		t.Errorf("%s: after 4 appends: Bounds = %d, %d, %v; want 0, 4, nil", rule, first, next, err)
	}
}

func testSeekTime(t *testing.T, e *env) {
	const rule = "SeekTime returns the first record enqueued at or after t, else the next sequence number"
	t0 := e.clock.Now()
	if seq, err := e.q.SeekTime(e.ctx, "s", 0, t0); err != nil || seq != 0 {
		t.Errorf("%s: empty partition: SeekTime = %d, %v; want 0, nil", rule, seq, err)
	}
	for i := range 3 {
		appendN(t, e, "s", 0, 1)
		if i < 2 {
			e.clock.Advance(time.Minute)
		}
	}
	for _, c := range []struct {
		at   time.Time
		want uint64
	}{
		{t0.Add(-time.Hour), 0},
		{t0, 0},
		{t0.Add(time.Second), 1},
		{t0.Add(time.Minute), 1},
		{t0.Add(90 * time.Second), 2},
		{t0.Add(2 * time.Minute), 2},
		{t0.Add(3 * time.Minute), 3},
	} {
		seq, err := e.q.SeekTime(e.ctx, "s", 0, c.at)
		if err != nil || seq != c.want {
			t.Errorf("%s: SeekTime(t0+%v) = %d, %v; want %d", rule, c.at.Sub(t0), seq, err, c.want)
		}
	}
}

func testCursors(t *testing.T, e *env) {
	const rule = "Cursor returns ErrNotFound until committed, then the highest value committed, per name, stream and partition"
	if _, err := e.q.Cursor(e.ctx, "c", "s", 0); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("%s: Cursor before Commit returned %v, want queue.ErrNotFound", rule, err)
	}
	commits := []struct {
		cursor, stream string
		part           int
		next           uint64
	}{{"c", "s", 0, 5}, {"c", "s", 0, 3}, {"c", "s", 1, 2}, {"d", "s", 0, 1}, {"c", "t", 0, 9}, {"c", "s", 0, 7}}
	for i, c := range commits {
		if err := e.q.Commit(e.ctx, c.cursor, c.stream, c.part, c.next); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if i == 1 {
			if got, err := e.q.Cursor(e.ctx, "c", "s", 0); err != nil || got != 5 {
				t.Errorf("%s: after Commit 5 then 3, Cursor = %d, %v; want 5", rule, got, err)
			}
		}
	}
	for _, c := range []struct {
		cursor, stream string
		part           int
		want           uint64
	}{{"c", "s", 0, 7}, {"c", "s", 1, 2}, {"d", "s", 0, 1}, {"c", "t", 0, 9}} {
		got, err := e.q.Cursor(e.ctx, c.cursor, c.stream, c.part)
		if err != nil || got != c.want {
			t.Errorf("%s: Cursor(%s, %s/%d) = %d, %v; want %d", rule, c.cursor, c.stream, c.part, got, err, c.want)
		}
	}
	if _, err := e.q.Cursor(e.ctx, "d", "s", 1); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("%s: Cursor never committed returned %v, want queue.ErrNotFound", rule, err)
	}
}

func testRetentionAge(t *testing.T, e *env) {
	const rule = "records older than MaxAge are removed in the background, newer ones kept"
	if err := e.q.SetRetention("s", queue.Retention{MaxAge: time.Hour}); err != nil {
		t.Fatalf("SetRetention: %v", err)
	}
	appendN(t, e, "s", 0, 3)
	appendN(t, e, "kept", 0, 3)
	e.clock.Advance(90 * time.Minute)
	appendN(t, e, "s", 0, 1)
	e.eventually(t, func() string {
		first, next, err := e.q.Bounds(e.ctx, "s", 0)
		if err != nil || first != 3 || next != 4 {
			return fmt.Sprintf("%s: Bounds = %d, %d, %v; want 3, 4", rule, first, next, err)
		}
		return ""
	})
	recs := read(t, e, "s", 0, 0, 10)
	if len(recs) != 1 || recs[0].Sequence != 3 {
		t.Errorf("Read skips records before the first retained one: read %v from 0", recs)
	}
	if seq, err := e.q.SeekTime(e.ctx, "s", 0, epoch); err != nil || seq != 3 {
		t.Errorf("SeekTime before the first retained record returns it: got %d, %v; want 3", seq, err)
	}
	if first, next, err := e.q.Bounds(e.ctx, "kept", 0); err != nil || first != 0 || next != 3 {
		t.Errorf("a stream without retention keeps everything: Bounds = %d, %d, %v; want 0, 3", first, next, err)
	}
}

func testRetentionSize(t *testing.T, e *env) {
	const rule = "a record is removed once newer records of its partition exceed MaxBytes, and not before"
	if err := e.q.SetRetention("s", queue.Retention{MaxBytes: 2500}); err != nil {
		t.Fatalf("SetRetention: %v", err)
	}
	// Each record is at least 1000 bytes by any measure: records 0 to 6
	// have more than 2500 bytes of newer records, record 8 at most one
	// record, which takes far fewer than 2500 bytes.
	body := string(make([]byte, 1000))
	for range 10 {
		if _, err := e.q.Append(e.ctx, []queue.Entry{{Stream: "s", Partition: 2, Message: &hubkit.Message{Body: []byte(body)}}}); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	e.eventually(t, func() string {
		first, next, err := e.q.Bounds(e.ctx, "s", 2)
		if err != nil || first < 7 || first > 8 || next != 10 {
			return fmt.Sprintf("%s: Bounds = %d, %d, %v; want first 7 or 8, next 10", rule, first, next, err)
		}
		return ""
	})
}

func testTrimAll(t *testing.T, e *env) {
	const rule = "when retention removes every record of a partition, its sequence numbers go on from where they were"
	if err := e.q.SetRetention("s", queue.Retention{MaxAge: time.Minute}); err != nil {
		t.Fatalf("SetRetention: %v", err)
	}
	appendN(t, e, "s", 0, 3)
	e.clock.Advance(time.Hour)
	e.eventually(t, func() string {
		first, next, err := e.q.Bounds(e.ctx, "s", 0)
		if err != nil || first != 3 || next != 3 {
			return fmt.Sprintf("%s: Bounds = %d, %d, %v; want 3, 3", rule, first, next, err)
		}
		return ""
	})
	if e.h.Persistent {
		e.reopen(t)
		if first, next, err := e.q.Bounds(e.ctx, "s", 0); err != nil || first != 3 || next != 3 {
			t.Errorf("%s: after reopen Bounds = %d, %d, %v; want 3, 3", rule, first, next, err)
		}
	}
	if pos := appendN(t, e, "s", 0, 1); pos[0].Sequence != 3 {
		t.Errorf("%s: Append got sequence %d, want 3", rule, pos[0].Sequence)
	}
}

func testAppendBadInput(t *testing.T, e *env) {
	const rule = "bad input gives an error, and an Append that fails stores none of its entries"
	for _, c := range []struct {
		name    string
		entries []queue.Entry
	}{
		{"negative partition", []queue.Entry{{Stream: "s", Message: msg("a")}, {Stream: "s", Partition: -1, Message: msg("b")}}},
		{"nil message", []queue.Entry{{Stream: "s", Message: msg("a")}, {Stream: "s"}}},
	} {
		if _, err := e.q.Append(e.ctx, c.entries); err == nil {
			t.Errorf("%s: Append with a %s returned no error", rule, c.name)
		}
	}
	if first, next, err := e.q.Bounds(e.ctx, "s", 0); err != nil || first != 0 || next != 0 {
		t.Errorf("%s: after failed Appends Bounds = %d, %d, %v; want 0, 0", rule, first, next, err)
	}
	if _, err := e.q.Read(e.ctx, "s", -1, 0, 1, nil); err == nil {
		t.Errorf("%s: Read of partition -1 returned no error", rule)
	}
	appendN(t, e, "s", 0, 1)
	if _, err := e.q.Read(e.ctx, "s", 0, 0, 0, nil); err == nil {
		t.Errorf("%s: Read with max 0 returned no error", rule)
	}
}

func testStreamsReopen(t *testing.T, e *env) {
	const rule = "records, sequence numbers and cursors survive Close and reopen"
	pos := appendN(t, e, "s", 0, 3)
	appendN(t, e, "s", 4, 1)
	if err := e.q.Commit(e.ctx, "c", "s", 0, 2); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	e.reopen(t)
	recs := read(t, e, "s", 0, 0, 10)
	if len(recs) != 3 {
		t.Fatalf("%s: read %d records after reopen, want 3", rule, len(recs))
	}
	for i, r := range recs {
		checkRecord(t, rule, r, pos[i], fmt.Sprint(i))
	}
	if got, err := e.q.Cursor(e.ctx, "c", "s", 0); err != nil || got != 2 {
		t.Errorf("%s: Cursor after reopen = %d, %v; want 2", rule, got, err)
	}
	more := appendN(t, e, "s", 0, 1)
	if more[0].Sequence != 3 || more[0].Offset <= pos[2].Offset {
		t.Errorf("%s: Append after reopen got %+v, want sequence 3 and an offset above %d", rule, more[0], pos[2].Offset)
	}
	if first, next, err := e.q.Bounds(e.ctx, "s", 4); err != nil || first != 0 || next != 1 {
		t.Errorf("%s: Bounds(s/4) after reopen = %d, %d, %v; want 0, 1", rule, first, next, err)
	}
}
