package record

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/hubkit/hubkit"
)

// AvroSchema is the schema of the Avro records: the JSON record's fields,
// with Body as raw bytes.
const AvroSchema = `{"type":"record","name":"Message","namespace":"Microsoft.Azure.Devices","fields":[` +
	`{"name":"EnqueuedTimeUtc","type":"string"},` +
	`{"name":"Properties","type":{"type":"map","values":"string"}},` +
	`{"name":"SystemProperties","type":{"type":"map","values":"string"}},` +
	`{"name":"Body","type":["null","bytes"]}]}`

var avroMagic = []byte{'O', 'b', 'j', 1}

// AppendAvro appends the Avro binary encoding of m's record to dst.
func AppendAvro(dst []byte, m *hubkit.Message) []byte {
	r := New(m)
	dst = appendString(dst, r.EnqueuedTimeUtc)
	dst = appendMap(dst, r.Properties)
	dst = appendMap(dst, r.SystemProperties)
	dst = binary.AppendVarint(dst, 1) // union branch 1: bytes
	dst = binary.AppendVarint(dst, int64(len(m.Body)))
	return append(dst, m.Body...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendVarint(dst, int64(len(s)))
	return append(dst, s...)
}

// appendMap writes one block holding every entry, in key order, then the
// empty block that ends a map.
func appendMap(dst []byte, m map[string]string) []byte {
	if len(m) > 0 {
		dst = binary.AppendVarint(dst, int64(len(m)))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			dst = appendString(appendString(dst, k), m[k])
		}
	}
	return binary.AppendVarint(dst, 0)
}

// AvroFile returns an Avro object container file holding one block: count
// records whose encodings are concatenated in records, compressed with
// deflate when asked (IoT Hub's avroDeflate).
func AvroFile(records []byte, count int, deflate bool) ([]byte, error) {
	codec := "null"
	if deflate {
		codec = "deflate"
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.DefaultCompression) // the level is valid
		w.Write(records)
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		records = buf.Bytes()
	}
	sync := make([]byte, 16)
	rand.Read(sync)
	out := append([]byte(nil), avroMagic...)
	out = binary.AppendVarint(out, 2)
	out = appendString(appendString(out, "avro.codec"), codec)
	out = appendString(appendString(out, "avro.schema"), AvroSchema)
	out = binary.AppendVarint(out, 0)
	out = append(out, sync...)
	out = binary.AppendVarint(out, int64(count))
	out = binary.AppendVarint(out, int64(len(records)))
	out = append(out, records...)
	return append(out, sync...), nil
}

// avroReader decodes Avro binary data with bounds checks.
type avroReader struct{ b []byte }

var errShort = errors.New("record: avro: truncated data")

func (r *avroReader) long() (int64, error) {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		return 0, errShort
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *avroReader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(len(r.b)) {
		return nil, errShort
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b, nil
}

func (r *avroReader) stringMap() (map[string]string, error) {
	m := map[string]string{}
	for {
		n, err := r.long()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return m, nil
		}
		if n < 0 { // a negative count is followed by the block's size in bytes
			n = -n
			if _, err := r.long(); err != nil {
				return nil, err
			}
		}
		if n > int64(len(r.b)) {
			return nil, errShort
		}
		for range n {
			k, err := r.bytes()
			if err != nil {
				return nil, err
			}
			v, err := r.bytes()
			if err != nil {
				return nil, err
			}
			m[string(k)] = string(v)
		}
	}
}

// ReadAvroFile decodes an Avro object container file of records in
// [AvroSchema], with codec null or deflate, into messages.
func ReadAvroFile(data []byte) ([]*hubkit.Message, error) {
	if !bytes.HasPrefix(data, avroMagic) {
		return nil, errors.New("record: avro: not an object container file")
	}
	r := &avroReader{b: data[len(avroMagic):]}
	meta, err := r.stringMap()
	if err != nil {
		return nil, err
	}
	var schema any
	if err := json.Unmarshal([]byte(meta["avro.schema"]), &schema); err != nil {
		return nil, fmt.Errorf("record: avro: schema: %w", err)
	}
	codec := meta["avro.codec"]
	if codec != "" && codec != "null" && codec != "deflate" {
		return nil, fmt.Errorf("record: avro: codec %q not supported", codec)
	}
	if len(r.b) < 16 {
		return nil, errShort
	}
	sync := r.b[:16]
	r.b = r.b[16:]
	var msgs []*hubkit.Message
	for len(r.b) > 0 {
		count, err := r.long()
		if err != nil {
			return nil, err
		}
		block, err := r.bytes()
		if err != nil {
			return nil, err
		}
		if len(r.b) < 16 || !bytes.Equal(r.b[:16], sync) {
			return nil, errors.New("record: avro: bad sync marker")
		}
		r.b = r.b[16:]
		if codec == "deflate" {
			if block, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(block)), 1<<28)); err != nil {
				return nil, fmt.Errorf("record: avro: %w", err)
			}
		}
		if count < 0 || count > int64(len(block)) {
			return nil, errors.New("record: avro: bad block count")
		}
		br := &avroReader{b: block}
		for range count {
			m, err := br.record()
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}

func (r *avroReader) record() (*hubkit.Message, error) {
	enq, err := r.bytes()
	if err != nil {
		return nil, err
	}
	props, err := r.stringMap()
	if err != nil {
		return nil, err
	}
	sys, err := r.stringMap()
	if err != nil {
		return nil, err
	}
	m, err := fromMaps(string(enq), props, sys)
	if err != nil {
		return nil, err
	}
	branch, err := r.long()
	if err != nil {
		return nil, err
	}
	switch branch {
	case 0:
	case 1:
		body, err := r.bytes()
		if err != nil {
			return nil, err
		}
		m.Body = append([]byte(nil), body...)
	default:
		return nil, fmt.Errorf("record: avro: Body union branch %d", branch)
	}
	return m, nil
}
