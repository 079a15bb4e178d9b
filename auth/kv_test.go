package auth_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/hubkit/hubkit/queue"
	"github.com/hubkit/hubkit/queue/memory"
)

// countingKV is the queue.KV of a queue/memory store, counting Gets so
// that tests can see the registry's cache at work.
type countingKV struct {
	queue.KV
	gets atomic.Int64
}

// newKV returns a fresh in-memory KV, closed when the test ends.
func newKV(t testing.TB) *countingKV {
	s := memory.New(memory.Options{})
	t.Cleanup(func() { s.Close() })
	return &countingKV{KV: s}
}

func (kv *countingKV) Get(ctx context.Context, key string) ([]byte, error) {
	kv.gets.Add(1)
	return kv.KV.Get(ctx, key)
}
