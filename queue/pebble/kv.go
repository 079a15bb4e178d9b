package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/hubkit/hubkit/internal/codec"
	"github.com/hubkit/hubkit/queue"
)

func kvKey(key string) []byte {
	k, _ := codec.AppendKey(make([]byte, 0, 1+len(key)), codec.Key{Space: codec.SpaceKV, Name: key})
	return k
}

// Get implements [queue.KV].
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.do(ctx, func(*commitCtx) (err error) {
		v, err = s.get(kvKey(key))
		return err
	})
	if errors.Is(err, pebbledb.ErrNotFound) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("queue: get %q: %w", key, err)
	}
	return v, nil
}

// Write implements [queue.KV].
func (s *Store) Write(ctx context.Context, ops ...queue.KVOp) error {
	err := s.do(ctx, func(cc *commitCtx) error {
		for _, op := range ops {
			if op.Delete {
				_ = cc.b.Delete(kvKey(op.Key), nil)
			} else {
				_ = cc.b.Set(kvKey(op.Key), op.Value, nil)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: write: %w", err)
	}
	return nil
}

// List implements [queue.KV].
func (s *Store) List(ctx context.Context, prefix, after string, limit int) ([]queue.KVPair, error) {
	if limit < 1 {
		return nil, argError("list limit %d is not positive", limit)
	}
	var out []queue.KVPair
	err := s.do(ctx, func(*commitCtx) error {
		lower := kvKey(prefix)
		upper := codec.PrefixEnd(lower)
		it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		valid := it.First()
		if seek := append(kvKey(after), 0); after != "" && bytes.Compare(seek, lower) > 0 {
			valid = it.SeekGE(seek) // the first key after "after"
		}
		for ; valid && len(out) < limit; valid = it.Next() {
			out = append(out, queue.KVPair{Key: string(it.Key()[1:]), Value: append([]byte(nil), it.Value()...)})
		}
		return it.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("queue: list %q: %w", prefix, err)
	}
	return out, nil
}
