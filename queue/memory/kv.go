package memory

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hubkit/hubkit/queue"
)

// Get implements [queue.KV.Get].
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.lock(ctx, "get"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	v, ok := s.kv[key]
	if !ok {
		return nil, fmt.Errorf("memory: get %q: %w", key, queue.ErrNotFound)
	}
	return append([]byte{}, v...), nil
}

// Write implements [queue.KV.Write].
func (s *Store) Write(ctx context.Context, ops ...queue.KVOp) error {
	if err := s.lock(ctx, "write"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, op := range ops {
		if op.Delete {
			delete(s.kv, op.Key)
		} else {
			s.kv[op.Key] = append([]byte{}, op.Value...)
		}
	}
	return nil
}

// List implements [queue.KV.List].
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]queue.KVPair, error) {
	if limit <= 0 {
		return nil, invalid("list", "limit %d is not positive", limit)
	}
	if err := s.lock(ctx, "list"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var keys []string
	for k := range s.kv {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]queue.KVPair, 0, min(limit, len(keys)))
	for _, k := range keys[:min(limit, len(keys))] {
		out = append(out, queue.KVPair{Key: k, Value: append([]byte{}, s.kv[k]...)})
	}
	return out, nil
}
