package codec

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/hubkit/hubkit"
)

// recordVersion is the first byte of every encoded message.
const recordVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendMessage appends the encoding of m to dst and returns the extended
// slice. Every field of m is kept; times keep their instant, not their
// location. The encoding ends with a CRC-32C of what precedes it.
func AppendMessage(dst []byte, m *hubkit.Message) []byte {
	start := len(dst)
	dst = append(dst, recordVersion)
	for _, s := range systemStrings(&m.System) {
		dst = appendString(dst, *s)
	}
	dst = appendTime(dst, m.System.ExpiryTime)
	dst = appendTime(dst, m.System.EnqueuedTime)
	dst = binary.AppendUvarint(dst, m.System.SequenceNumber)
	dst = binary.AppendUvarint(dst, uint64(m.System.DeliveryCount))
	dst = binary.AppendUvarint(dst, uint64(len(m.Properties)))
	for _, p := range m.Properties {
		null := byte(0)
		if p.Null {
			null = 1
		}
		dst = append(dst, null)
		dst = appendString(dst, p.Name)
		dst = appendString(dst, p.Value)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Body)))
	dst = append(dst, m.Body...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeMessage decodes b, written by AppendMessage, into m. It reuses the
// capacity of m.Body and m.Properties and keeps m's strings that are equal
// to the decoded ones, so that decoding into the same Message again and
// again allocates little or nothing. m shares no memory with b afterwards.
// Any other input gives an error wrapping ErrCorrupt and leaves m in an
// unspecified state.
func DecodeMessage(b []byte, m *hubkit.Message) error {
	if len(b) < 5 {
		return fmt.Errorf("%w: message of %d bytes is too short", ErrCorrupt, len(b))
	}
	payload, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(payload, castagnoli) != sum {
		return fmt.Errorf("%w: message checksum mismatch", ErrCorrupt)
	}
	if payload[0] != recordVersion {
		return fmt.Errorf("%w: unknown message version %d", ErrCorrupt, payload[0])
	}
	r := reader{b: payload[1:]}
	for _, s := range systemStrings(&m.System) {
		r.setString(s)
	}
	m.System.ExpiryTime = r.time()
	m.System.EnqueuedTime = r.time()
	m.System.SequenceNumber = r.uvarint()
	dc := r.uvarint()
	if dc > 1<<32-1 {
		r.fail("delivery count")
	}
	m.System.DeliveryCount = uint32(dc)
	n := r.uvarint()
	if n > uint64(len(r.b)/3) { // each property takes at least 3 bytes
		r.fail("property count")
		n = 0
	}
	ps := m.Properties[:0]
	for i := 0; i < int(n) && r.err == nil; i++ {
		if i < cap(ps) {
			ps = ps[:i+1]
		} else {
			ps = append(ps, hubkit.Property{})
		}
		p := &ps[i]
		switch flag := r.take(1, "property flag"); {
		case flag == nil:
		case flag[0] > 1:
			r.fail("property flag")
		default:
			p.Null = flag[0] == 1
		}
		r.setString(&p.Name)
		r.setString(&p.Value)
	}
	m.Properties = ps
	body := r.bytes("body")
	m.Body = append(m.Body[:0], body...)
	return r.end("message")
}

// systemStrings lists the string system properties in encoding order.
func systemStrings(s *hubkit.SystemProperties) [17]*string {
	return [...]*string{
		&s.MessageID, &s.CorrelationID, &s.UserID, &s.To, &s.ContentType,
		&s.ContentEncoding, &s.CreationTime, (*string)(&s.Ack), &s.ConnectionDeviceID,
		&s.ConnectionModuleID, &s.ConnectionAuthGenerationID, &s.ConnectionAuthMethod,
		&s.MessageSource, &s.DataSchema, &s.Subject, &s.InterfaceID, &s.MessageSchema,
	}
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendTime writes the zero time as a single 0 byte and any other time as
// 1, Unix seconds (varint) and nanoseconds (uvarint), so that every
// representable instant survives, not only those that fit int64 nanoseconds.
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(what string) []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	return r.take(int(n), what)
}

// setString sets *dst to the next string unless it already holds it, which
// saves an allocation when records repeat values.
func (r *reader) setString(dst *string) {
	b := r.bytes("string")
	if *dst != string(b) {
		*dst = string(b)
	}
}

func (r *reader) time() time.Time {
	flag := r.take(1, "time flag")
	switch {
	case flag == nil:
		return time.Time{}
	case flag[0] == 0:
		return time.Time{}
	case flag[0] != 1:
		r.fail("time flag")
		return time.Time{}
	}
	sec := r.varint()
	nsec := r.uvarint()
	if nsec >= 1e9 {
		r.fail("time nanoseconds")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() { // the zero time has its own encoding
		r.fail("time")
	}
	return t
}
