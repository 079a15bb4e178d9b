package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("codec: corrupt encoding")

// A Space is the first byte of a key: which concern of the store it belongs to.
type Space byte

// The key spaces and their layouts after the space byte. "name" is a
// two-byte big-endian length and the bytes; integers are big-endian.
const (
	// SpaceMeta holds store metadata: the rest of the key is a raw name.
	SpaceMeta Space = 0x01
	// SpaceStream holds stream records: name, partition (4), sequence (8).
	SpaceStream Space = 0x10
	// SpaceStreamHead holds one record per stream partition with its next
	// sequence number: name, partition (4).
	SpaceStreamHead Space = 0x11
	// SpaceCursor holds stream cursors: cursor name, stream name, partition (4).
	SpaceCursor Space = 0x12
	// SpaceQueueMsg holds device-queue messages: queue name, sequence (8).
	SpaceQueueMsg Space = 0x20
	// SpaceQueueLock holds the delivery state of a device-queue message:
	// queue name, sequence (8).
	SpaceQueueLock Space = 0x21
	// SpaceQueueHead holds one record per device queue with its next
	// sequence number: queue name.
	SpaceQueueHead Space = 0x22
	// SpaceOutcome holds the outcome journal: sequence (8).
	SpaceOutcome Space = 0x30
	// SpaceKV holds the KV role's pairs: the rest of the key is the raw key,
	// so that a prefix of KV keys is a prefix of store keys.
	SpaceKV Space = 0x40
)

// MaxNameLen is the longest name a key can hold.
const MaxNameLen = math.MaxUint16

// A Key is a decoded key. Which fields are meaningful depends on Space; the
// others are zero.
type Key struct {
	// Space is the key space, the key's first byte.
	Space Space
	// Name is the stream, queue or cursor name, or the raw rest of a
	// SpaceMeta or SpaceKV key.
	Name string
	// Stream is the stream name of a SpaceCursor key.
	Stream string
	// Partition is the partition of a stream record, stream head or
	// cursor key.
	Partition uint32
	// Seq is the sequence number of a stream record, device-queue message,
	// lock or outcome key.
	Seq uint64
}

// AppendName appends name with its length prefix. It reports an error when
// name is longer than MaxNameLen.
func AppendName(dst []byte, name string) ([]byte, error) {
	if len(name) > MaxNameLen {
		return dst, fmt.Errorf("codec: name of %d bytes is longer than %d", len(name), MaxNameLen)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(name)))
	return append(dst, name...), nil
}

// AppendKey appends the encoding of k to dst.
func AppendKey(dst []byte, k Key) ([]byte, error) {
	var err error
	dst = append(dst, byte(k.Space))
	switch k.Space {
	case SpaceMeta, SpaceKV:
		return append(dst, k.Name...), nil
	case SpaceStream, SpaceStreamHead:
		if dst, err = AppendName(dst, k.Name); err != nil {
			return dst, err
		}
		dst = binary.BigEndian.AppendUint32(dst, k.Partition)
		if k.Space == SpaceStream {
			dst = binary.BigEndian.AppendUint64(dst, k.Seq)
		}
	case SpaceCursor:
		if dst, err = AppendName(dst, k.Name); err != nil {
			return dst, err
		}
		if dst, err = AppendName(dst, k.Stream); err != nil {
			return dst, err
		}
		dst = binary.BigEndian.AppendUint32(dst, k.Partition)
	case SpaceQueueMsg, SpaceQueueLock, SpaceQueueHead:
		if dst, err = AppendName(dst, k.Name); err != nil {
			return dst, err
		}
		if k.Space != SpaceQueueHead {
			dst = binary.BigEndian.AppendUint64(dst, k.Seq)
		}
	case SpaceOutcome:
		dst = binary.BigEndian.AppendUint64(dst, k.Seq)
	default:
		return dst, fmt.Errorf("codec: unknown key space %#x", byte(k.Space))
	}
	return dst, nil
}

// ParseKey decodes a key written by AppendKey. It returns an error wrapping
// ErrCorrupt for anything else.
func ParseKey(b []byte) (Key, error) {
	if len(b) == 0 {
		return Key{}, fmt.Errorf("%w: empty key", ErrCorrupt)
	}
	k := Key{Space: Space(b[0])}
	r := reader{b: b[1:]}
	switch k.Space {
	case SpaceMeta, SpaceKV:
		k.Name = string(r.b)
		r.b = nil
	case SpaceStream, SpaceStreamHead:
		k.Name = r.name()
		k.Partition = r.u32()
		if k.Space == SpaceStream {
			k.Seq = r.u64()
		}
	case SpaceCursor:
		k.Name = r.name()
		k.Stream = r.name()
		k.Partition = r.u32()
	case SpaceQueueMsg, SpaceQueueLock, SpaceQueueHead:
		k.Name = r.name()
		if k.Space != SpaceQueueHead {
			k.Seq = r.u64()
		}
	case SpaceOutcome:
		k.Seq = r.u64()
	default:
		return Key{}, fmt.Errorf("%w: unknown key space %#x", ErrCorrupt, b[0])
	}
	if err := r.end("key"); err != nil {
		return Key{}, err
	}
	return k, nil
}

// PrefixEnd returns the smallest key greater than every key that starts
// with prefix, or nil when there is none (prefix is all 0xff bytes).
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// reader consumes fixed-width fields; the first failure sticks in err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", ErrCorrupt, what)
	}
	r.b = nil
}

func (r *reader) take(n int, what string) []byte {
	if n < 0 || len(r.b) < n {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 {
	if v := r.take(4, "uint32"); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8, "uint64"); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) name() string {
	n := r.take(2, "name length")
	if n == nil {
		return ""
	}
	return string(r.take(int(binary.BigEndian.Uint16(n)), "name"))
}

func (r *reader) end(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes after %s", ErrCorrupt, len(r.b), what)
	}
	return r.err
}
