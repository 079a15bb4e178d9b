package auth_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hubkit/hubkit/queue"
)

// mapKV is a queue.KV in a map, standing in for queue/memory until that
// package is committed. It counts Gets so that tests can see the cache work.
type mapKV struct {
	gets atomic.Int64

	mu sync.Mutex // guards m
	m  map[string][]byte
}

func newMapKV() *mapKV { return &mapKV{m: map[string][]byte{}} }

func (kv *mapKV) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	kv.gets.Add(1)
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.m[key]
	if !ok {
		return nil, queue.ErrNotFound
	}
	return slices.Clone(v), nil
}

func (kv *mapKV) Write(ctx context.Context, ops ...queue.KVOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for _, op := range ops {
		if op.Delete {
			delete(kv.m, op.Key)
		} else {
			kv.m[op.Key] = slices.Clone(op.Value)
		}
	}
	return nil
}

func (kv *mapKV) List(ctx context.Context, prefix, after string, limit int) ([]queue.KVPair, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var keys []string
	for k := range kv.m {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []queue.KVPair
	for _, k := range keys[:min(limit, len(keys))] {
		out = append(out, queue.KVPair{Key: k, Value: slices.Clone(kv.m[k])})
	}
	return out, nil
}
