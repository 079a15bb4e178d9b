package pebble

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/codec"
	"github.com/hubkit/hubkit/queue"
)

// FuzzValueDecoders feeds arbitrary bytes to every decoder of the store's
// own values (outcomes, locks, queue and stream heads, device-queue and
// stream record headers with the message after them): each must return a
// value or an error wrapping codec.ErrCorrupt, and never panic, whatever a
// damaged database holds.
func FuzzValueDecoders(f *testing.F) {
	msg := codec.AppendMessage(nil, &hubkit.Message{Body: []byte("body"), System: hubkit.SystemProperties{MessageID: "m-1"},
		Properties: hubkit.Properties{{Name: "k", Value: "v"}}})
	outcome := append([]byte{byte(queue.Rejected)}, binary.BigEndian.AppendUint64(nil, 1700000000)...)
	outcome, _ = codec.AppendName(outcome, "dev")
	outcome = append(outcome, msg...)
	lock := binary.BigEndian.AppendUint64(nil, 1700000000)
	lock = binary.BigEndian.AppendUint32(lock, 2)
	lock = binary.BigEndian.AppendUint32(lock, 3)
	lock = append(lock, "token"...)
	queued := append(make([]byte, msgHeader-1), flagJournal)
	for _, seed := range [][]byte{
		nil,
		outcome,
		outcome[:12],
		lock,
		lock[:lockHeader],
		binary.BigEndian.AppendUint64(nil, 42), // queue head
		make([]byte, 24),                       // stream head
		append(make([]byte, recordHeader), msg...),                          // stream record
		append(queued, msg...),                                              // device-queue message
		append(outcomeKey(nil, 7), 0xff),                                    // a key where a value belongs
		append(append([]byte{}, msg[:len(msg)-1]...), 0xff^msg[len(msg)-1]), // checksum off
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		check := func(what string, err error) bool {
			t.Helper()
			if err != nil && !errors.Is(err, codec.ErrCorrupt) {
				t.Errorf("%s of %x: %v, want nil or an error wrapping codec.ErrCorrupt", what, v, err)
			}
			return err == nil
		}
		_, err := decodeOutcome(outcomeKey(nil, 7), v)
		check("decodeOutcome", err)
		_, err = decodeOutcome(v, outcome)
		check("decodeOutcome with v as key", err)

		var m qmsg
		if check("decodeLock", decodeLock(v, &m)) && m.token != string(v[lockHeader:]) {
			t.Errorf("decodeLock of %x: token %q", v, m.token)
		}
		if _, err := decodeQueueHead(v); check("decodeQueueHead", err) != (len(v) == 8) {
			t.Errorf("decodeQueueHead of %d bytes: %v", len(v), err)
		}
		if check("decodeStreamHead", decodeStreamHead(v, &partition{})) != (len(v) == 24) {
			t.Errorf("decodeStreamHead of %d bytes accepted or refused wrongly", len(v))
		}
		if _, _, err := decodeRecordHeader(v); check("decodeRecordHeader", err) {
			var rec hubkit.Message
			check("stream record message", codec.DecodeMessage(v[recordHeader:], &rec))
		}
		if qm, err := decodeMsgHeader(1, v); check("decodeMsgHeader", err) {
			_, err := decodeQueued(v, qm)
			check("decodeQueued", err)
		}
	})
}
