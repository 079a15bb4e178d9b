package pebble_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/pebble"
)

// benchMessage is a 256-byte message: body plus the properties a hub stamps.
func benchMessage() *hubkit.Message {
	m := &hubkit.Message{System: hubkit.SystemProperties{
		MessageID: "msg-0001", ConnectionDeviceID: "device-0001", ContentType: "application/json",
		MessageSource: hubkit.SourceTelemetry,
	}}
	m.Body = make([]byte, 256-m.Size())
	return m
}

// runWriters runs b.N operations spread over n goroutines and reports
// them per second under name.
func runWriters(b *testing.B, n int, name string, op func(w, i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	b.ResetTimer()
	for w := range n {
		count := b.N / n
		if w < b.N%n {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range count {
				if err := op(w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), name)
}

func openBench(b *testing.B) *pebble.Store {
	b.Helper()
	s, err := pebble.Open(b.TempDir(), pebble.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkAppend measures durable appends of one 256-byte message per
// call from many concurrent appenders, each on its own of 8 partitions.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			s := openBench(b)
			ctx := context.Background()
			msg := benchMessage()
			runWriters(b, n, "appends/s", func(w, _ int) error {
				_, err := s.Append(ctx, []queue.Entry{{Stream: "events", Partition: w % 8, Message: msg}})
				return err
			})
		})
	}
}

// BenchmarkPebbleSyncBaseline is the floor to compare BenchmarkAppend
// with: bare Pebble Set with Sync, no store on top.
func BenchmarkPebbleSyncBaseline(b *testing.B) {
	for _, n := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) {
			db, err := pebbledb.Open(b.TempDir(), &pebbledb.Options{Logger: quietPebble{}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			val := make([]byte, 256)
			runWriters(b, n, "sets/s", func(w, i int) error {
				key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, uint32(w)), uint64(i))
				return db.Set(key, val, pebbledb.Sync)
			})
		})
	}
}

// BenchmarkC2DCycle measures enqueue, receive and complete of one message,
// each durable, from 16 devices at once.
func BenchmarkC2DCycle(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	msg := benchMessage()
	runWriters(b, 16, "cycles/s", func(w, _ int) error {
		q := fmt.Sprintf("device-%d", w)
		if _, err := s.Enqueue(ctx, q, msg, queue.EnqueueOptions{MaxDepth: 50, Journal: true}); err != nil {
			return err
		}
		d, err := s.Receive(ctx, q, queue.ReceiveOptions{Lock: time.Minute, NoWait: true})
		if err != nil {
			return err
		}
		return s.Complete(ctx, q, d.LockToken)
	})
}

// BenchmarkRead measures sequential reads of 256-byte records, 1000 per
// call, reusing the records of the previous call, from a warm block cache.
func BenchmarkRead(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	const total, batch = 20_000, 1000
	entries := make([]queue.Entry, batch)
	for i := range entries {
		entries[i] = queue.Entry{Stream: "events", Message: benchMessage()}
	}
	for range total / batch {
		if _, err := s.Append(ctx, entries); err != nil {
			b.Fatal(err)
		}
	}
	var recs []queue.Record
	for from := uint64(0); from < total; from += uint64(len(recs)) { // warm the block cache
		var err error
		if recs, err = s.Read(ctx, "events", 0, from, batch, recs[:0]); err != nil {
			b.Fatal(err)
		}
	}
	from := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for read := 0; read < b.N; {
		var err error
		recs, err = s.Read(ctx, "events", 0, from%total, min(batch, b.N-read), recs[:0])
		if err != nil {
			b.Fatal(err)
		}
		read += len(recs)
		from += uint64(len(recs))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// quietPebble keeps bare Pebble's logs out of benchmark output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
