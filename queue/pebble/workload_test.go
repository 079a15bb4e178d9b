package pebble_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

// The crash and power-loss tests run one workload against the store and
// record every acknowledged change in an ackLog, then check a reopened
// (or crash-cloned) store against it.

const (
	wlStream     = "s"
	wlPartitions = 4
	wlCursor     = "c"
	wlQueues     = 2
)

type qseq struct {
	queue string
	seq   uint64
}

type pseq struct {
	partition int
	seq       uint64
}

// ackLog is what the workload was told is durable, and what it started.
type ackLog struct {
	mu         sync.Mutex
	appends    map[pseq]uint32 // acknowledged records and their body checksums
	cursor     uint64          // highest acknowledged cursor commit
	enqueued   map[qseq]bool   // acknowledged enqueues
	completing map[qseq]bool   // completes started
	completed  map[qseq]bool   // acknowledged completes
	rejecting  map[qseq]bool   // rejects started
	rejected   map[qseq]bool   // acknowledged rejects
	abandoned  map[qseq]uint32 // highest delivery count an acknowledged abandon reported
}

func newAckLog() *ackLog {
	return &ackLog{appends: map[pseq]uint32{}, enqueued: map[qseq]bool{}, completing: map[qseq]bool{}, completed: map[qseq]bool{},
		rejecting: map[qseq]bool{}, rejected: map[qseq]bool{}, abandoned: map[qseq]uint32{}}
}

// settling reports whether a complete or a reject of k began: k may then
// be gone.
func (l *ackLog) settling(k qseq) bool { return l.completing[k] || l.rejecting[k] }

// apply records one event; it is also how the crash test parses the
// child's output, one event per line.
func (l *ackLog) apply(kind byte, q string, p int, seq uint64, sum uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch kind {
	case 'A':
		l.appends[pseq{p, seq}] = sum
	case 'C':
		l.cursor = max(l.cursor, seq)
	case 'E':
		l.enqueued[qseq{q, seq}] = true
	case 'd':
		l.completing[qseq{q, seq}] = true
	case 'D':
		l.completed[qseq{q, seq}] = true
	case 'r':
		l.rejecting[qseq{q, seq}] = true
	case 'R':
		l.rejected[qseq{q, seq}] = true
	case 'B':
		k := qseq{q, seq}
		l.abandoned[k] = max(l.abandoned[k], sum)
	}
}

func (l *ackLog) clone() *ackLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := newAckLog()
	c.cursor = l.cursor
	for k, v := range l.appends {
		c.appends[k] = v
	}
	for k, v := range l.abandoned {
		c.abandoned[k] = v
	}
	for _, m := range []struct{ dst, src map[qseq]bool }{
		{c.enqueued, l.enqueued}, {c.completing, l.completing}, {c.completed, l.completed},
		{c.rejecting, l.rejecting}, {c.rejected, l.rejected},
	} {
		for k := range m.src {
			m.dst[k] = true
		}
	}
	return c
}

// checkedBody returns a random body that carries a CRC-32 of itself, so a
// damaged record is recognised without knowing what was written.
func checkedBody(r *rand.Rand) []byte {
	b := make([]byte, 4+16+r.IntN(200))
	for i := 4; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	binary.BigEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
	return b
}

func bodyOK(b []byte) bool {
	return len(b) >= 4 && binary.BigEndian.Uint32(b) == crc32.ChecksumIEEE(b[4:])
}

// runWorkload drives s from several goroutines until ctx ends, reporting
// each event through note: 'A' appended, 'C' cursor committed, 'E'
// enqueued, 'd' complete started, 'D' completed, 'r' reject started, 'R'
// rejected, 'B' abandoned (sum is then the delivery count the abandon
// gave). It returns once every goroutine has stopped.
func runWorkload(ctx context.Context, s queue.DurableQueue, seed uint64, note func(kind byte, q string, p int, seq uint64, sum uint32)) {
	var wg sync.WaitGroup
	for g := range 3 { // appenders: two wait in Append, one pipelines with AppendAsync
		async, _ := s.(queue.AsyncAppender)
		if g < 2 {
			async = nil
		}
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			slots := make(chan struct{}, 8) // AppendAsync calls not yet done
			var failed atomic.Bool
			for ctx.Err() == nil && !failed.Load() {
				entries := make([]queue.Entry, 1+r.IntN(4))
				sums := make([]uint32, len(entries))
				for i := range entries {
					entries[i] = queue.Entry{Stream: wlStream, Partition: r.IntN(wlPartitions), Message: &hubkit.Message{Body: checkedBody(r)}}
					sums[i] = crc32.ChecksumIEEE(entries[i].Message.Body)
				}
				done := func(pos []queue.Position, err error) {
					if err != nil {
						failed.Store(true)
					}
					for i, p := range pos {
						note('A', "", p.Partition, p.Sequence, sums[i])
					}
				}
				if async == nil {
					done(s.Append(ctx, entries))
					continue
				}
				slots <- struct{}{}
				async.AppendAsync(ctx, entries, func(pos []queue.Position, err error) {
					done(pos, err)
					<-slots
				})
			}
			for range cap(slots) { // wait for the calls still in flight
				slots <- struct{}{}
			}
		})
	}
	wg.Go(func() { // cursor
		r := rand.New(rand.NewPCG(seed, 100))
		v := uint64(0)
		if cur, err := s.Cursor(ctx, wlCursor, wlStream, 0); err == nil {
			v = cur
		}
		for ctx.Err() == nil {
			v += 1 + uint64(r.IntN(5))
			if s.Commit(ctx, wlCursor, wlStream, 0, v) != nil {
				return
			}
			note('C', "", 0, v, 0)
		}
	})
	for g := range wlQueues { // device queues
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, 200+uint64(g)))
			q := fmt.Sprintf("dev-%d", g)
			for ctx.Err() == nil {
				seq, err := s.Enqueue(ctx, q, &hubkit.Message{Body: checkedBody(r)}, queue.EnqueueOptions{Journal: true})
				if err != nil {
					return
				}
				note('E', q, 0, seq, 0)
				if r.IntN(3) == 0 {
					continue // let the queue grow a little
				}
				d, err := s.Receive(ctx, q, queue.ReceiveOptions{Lock: 2 * time.Second, NoWait: true})
				if errors.Is(err, queue.ErrEmpty) {
					continue
				}
				if err != nil {
					return
				}
				seq = d.Message.System.SequenceNumber
				switch r.IntN(4) {
				case 0: // abandon: it stays, delivered again with a higher count
					if _, err := s.Abandon(ctx, q, d.LockToken); err == nil {
						note('B', q, 0, seq, d.Message.System.DeliveryCount+1)
					} else if !errors.Is(err, queue.ErrLockLost) {
						return
					}
				case 1: // reject: dead-lettered and journaled
					note('r', q, 0, seq, 0)
					if err := s.Reject(ctx, q, d.LockToken); err == nil {
						note('R', q, 0, seq, 0)
					} else if !errors.Is(err, queue.ErrLockLost) {
						return
					}
				default:
					note('d', q, 0, seq, 0)
					if err := s.Complete(ctx, q, d.LockToken); err == nil {
						note('D', q, 0, seq, 0)
					} else if !errors.Is(err, queue.ErrLockLost) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// verify checks s against what log says was acknowledged, and prevCursor,
// the cursor value seen at the previous check. It returns the cursor value
// and every broken rule.
func verify(s queue.DurableQueue, log *ackLog, prevCursor uint64) (uint64, []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Streams: gapless, intact, every acknowledged record there unchanged.
	sums := map[pseq]uint32{}
	for p := range wlPartitions {
		first, next, err := s.Bounds(ctx, wlStream, p)
		if err != nil {
			bad("bounds of partition %d: %v", p, err)
			continue
		}
		if first != 0 {
			bad("partition %d starts at %d without retention", p, first)
		}
		var recs []queue.Record
		for seq := first; seq < next; seq += uint64(len(recs)) {
			if recs, err = s.Read(ctx, wlStream, p, seq, 500, recs[:0]); err != nil {
				bad("read partition %d at %d: %v", p, seq, err)
				break
			}
			for i, r := range recs {
				if r.Sequence != seq+uint64(i) {
					bad("partition %d: record %d has sequence %d", p, seq+uint64(i), r.Sequence)
				}
				if !bodyOK(r.Message.Body) {
					bad("partition %d: record %d is damaged", p, r.Sequence)
				}
				sums[pseq{p, r.Sequence}] = crc32.ChecksumIEEE(r.Message.Body)
			}
		}
	}
	lost := 0
	for k, sum := range log.appends {
		got, ok := sums[k]
		switch {
		case !ok:
			lost++
		case got != sum:
			bad("partition %d record %d differs from what was acknowledged", k.partition, k.seq)
		}
	}
	if lost > 0 {
		bad("%d acknowledged records are missing", lost)
	}

	// Cursor: never behind an acknowledged commit, never backwards.
	cur, err := s.Cursor(ctx, wlCursor, wlStream, 0)
	if err != nil && !(errors.Is(err, queue.ErrNotFound) && log.cursor == 0) {
		bad("cursor: %v", err)
	}
	if cur < log.cursor {
		bad("cursor is %d, below the acknowledged %d", cur, log.cursor)
	}
	if cur < prevCursor {
		bad("cursor moved backwards from %d to %d", prevCursor, cur)
	}

	// Device queues: acknowledged enqueues stay unless a complete or reject
	// began, acknowledged completes and rejects never come back, and an
	// abandoned message keeps at least the delivery count acknowledged.
	present := map[qseq]uint32{} // delivery counts
	for g := range wlQueues {
		q := fmt.Sprintf("dev-%d", g)
		msgs, err := s.Peek(ctx, q, 1<<20)
		if err != nil {
			bad("peek %s: %v", q, err)
		}
		for i, m := range msgs {
			if !bodyOK(m.Body) {
				bad("%s: message %d is damaged", q, m.System.SequenceNumber)
			}
			if i > 0 && m.System.SequenceNumber <= msgs[i-1].System.SequenceNumber {
				bad("%s: message %d after %d", q, m.System.SequenceNumber, msgs[i-1].System.SequenceNumber)
			}
			present[qseq{q, m.System.SequenceNumber}] = m.System.DeliveryCount
		}
	}
	vanished := 0
	for k := range log.enqueued {
		if _, ok := present[k]; !ok && !log.settling(k) {
			vanished++
		}
	}
	if vanished > 0 {
		bad("%d acknowledged enqueues vanished without a complete or reject", vanished)
	}
	for _, c := range []struct {
		what string
		done map[qseq]bool
	}{{"completed", log.completed}, {"rejected", log.rejected}} {
		var back []qseq
		for k := range c.done {
			if _, ok := present[k]; ok {
				back = append(back, k)
			}
		}
		if len(back) > 0 {
			sort.Slice(back, func(i, j int) bool { return back[i].seq < back[j].seq })
			bad("%d %s messages reappeared, e.g. %v", len(back), c.what, back[0])
		}
	}
	for k, count := range log.abandoned {
		got, ok := present[k]
		switch {
		case !ok && !log.settling(k):
			bad("abandoned message %v vanished without a complete or reject", k)
		case ok && got < count:
			bad("abandoned message %v has delivery count %d, below the acknowledged %d", k, got, count)
		}
	}

	// Outcome journal: one Completed outcome per acknowledged complete, one
	// Rejected per acknowledged reject.
	want := map[queue.Status]map[qseq]bool{queue.Completed: log.completed, queue.Rejected: log.rejected}
	if len(log.completed)+len(log.rejected) > 0 {
		journaled := map[queue.Status]map[qseq]bool{queue.Completed: {}, queue.Rejected: {}}
		found := 0
		for from := uint64(0); found < len(log.completed)+len(log.rejected); {
			octx, ocancel := context.WithTimeout(ctx, 200*time.Millisecond)
			outs, err := s.Outcomes(octx, from, 1000)
			ocancel()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				break // no more outcomes
			}
			if err != nil { // a damaged outcome (codec.ErrCorrupt) among them
				bad("outcomes from %d: %v", from, err)
				break
			}
			for _, o := range outs {
				k := qseq{o.Queue, o.Message.System.SequenceNumber}
				if j := journaled[o.Status]; j != nil && !j[k] {
					j[k] = true
					if want[o.Status][k] {
						found++
					}
				}
				from = o.Seq + 1
			}
		}
		for status, acked := range want {
			missing := 0
			for k := range acked {
				if !journaled[status][k] {
					missing++
				}
			}
			if missing > 0 {
				bad("%d acknowledged %v outcomes are missing from the journal (no outcome)", missing, status)
			}
		}
	}
	return cur, problems
}

// TestVerifyCatchesBrokenSettlements feeds verify an ackLog that claims
// more than the store did, and requires it to notice: proof that the
// settlement checks of the crash tests can fail.
func TestVerifyCatchesBrokenSettlements(t *testing.T) {
	s := openStore(t, t.TempDir(), pebble.Options{})
	ctx := context.Background()
	for range 2 {
		if _, err := s.Enqueue(ctx, "dev-0", &hubkit.Message{Body: checkedBody(rand.New(rand.NewPCG(1, 2)))}, queue.EnqueueOptions{Journal: true}); err != nil {
			t.Fatal(err)
		}
	}
	log := newAckLog()
	log.apply('E', "dev-0", 0, 0, 0)
	log.apply('E', "dev-0", 0, 1, 0)
	log.apply('R', "dev-0", 0, 0, 0) // claimed rejected, still there
	log.apply('B', "dev-0", 0, 1, 3) // claimed abandoned three times, never delivered
	_, problems := verify(s, log, 0)
	for _, want := range []string{"rejected messages reappeared", "below the acknowledged 3", "Rejected outcomes are missing"} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("verify found %q, want a problem saying %q", problems, want)
		}
	}
}
