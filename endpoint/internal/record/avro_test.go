package record_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint/internal/record"
)

func TestAvroRoundTrip(t *testing.T) {
	enq := time.Date(2019, 5, 10, 6, 6, 32, 722000000, time.UTC)
	var msgs []*hubkit.Message
	var data []byte
	for i := range 50 {
		m := &hubkit.Message{
			Body:       bytes.Repeat([]byte{byte(i)}, i),
			System:     hubkit.SystemProperties{MessageID: fmt.Sprint(i), ConnectionDeviceID: "d", EnqueuedTime: enq},
			Properties: hubkit.Properties{{Name: "k", Value: fmt.Sprint(i)}},
		}
		msgs = append(msgs, m)
		data = record.AppendAvro(data, m)
	}
	for _, deflate := range []bool{false, true} {
		file, err := record.AvroFile(data, len(msgs), deflate)
		if err != nil {
			t.Fatal(err)
		}
		got, err := record.ReadAvroFile(file)
		if err != nil {
			t.Fatalf("deflate=%v: %v", deflate, err)
		}
		if len(got) != len(msgs) {
			t.Fatalf("deflate=%v: %d messages, want %d", deflate, len(got), len(msgs))
		}
		for i, g := range got {
			w := msgs[i]
			if !bytes.Equal(g.Body, w.Body) || g.System.MessageID != w.System.MessageID || !g.System.EnqueuedTime.Equal(enq) {
				t.Fatalf("deflate=%v: message %d = %+v, want %+v", deflate, i, g, w)
			}
			if v, _ := g.Properties.Get("k"); v != fmt.Sprint(i) {
				t.Fatalf("message %d property k = %q", i, v)
			}
		}
	}
}

func FuzzReadAvroFile(f *testing.F) {
	m := &hubkit.Message{Body: []byte("x"), System: hubkit.SystemProperties{MessageID: "1"}, Properties: hubkit.Properties{{Name: "a", Value: "b"}}}
	for _, deflate := range []bool{false, true} {
		file, _ := record.AvroFile(record.AppendAvro(nil, m), 1, deflate)
		f.Add(file)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := record.ReadAvroFile(data)
		if err != nil {
			return
		}
		var enc []byte
		for _, m := range msgs {
			enc = record.AppendAvro(enc, m)
		}
		file, err := record.AvroFile(enc, len(msgs), false)
		if err != nil {
			t.Fatal(err)
		}
		again, err := record.ReadAvroFile(file)
		if err != nil || len(again) != len(msgs) {
			t.Fatalf("a file we wrote does not read back: %v (%d of %d)", err, len(again), len(msgs))
		}
	})
}
