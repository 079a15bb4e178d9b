package codec_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/codec"
)

func sampleMessage() *hubkit.Message {
	return &hubkit.Message{
		Body: []byte(`{"temp":21.5}`),
		System: hubkit.SystemProperties{
			MessageID:          "m-1",
			CorrelationID:      "c-1",
			ContentType:        "application/json",
			Ack:                hubkit.AckFull,
			ExpiryTime:         time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			EnqueuedTime:       time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			SequenceNumber:     42,
			DeliveryCount:      3,
			ConnectionDeviceID: "dev-1",
			MessageSchema:      "s",
		},
		Properties: hubkit.Properties{{Name: "a", Value: "1"}, {Name: "flag", Null: true}},
	}
}

// equalMessages compares messages by value: times by instant, nil and empty
// slices alike.
func equalMessages(a, b *hubkit.Message) bool {
	as, bs := a.System, b.System
	if !as.ExpiryTime.Equal(bs.ExpiryTime) || !as.EnqueuedTime.Equal(bs.EnqueuedTime) {
		return false
	}
	as.ExpiryTime, bs.ExpiryTime, as.EnqueuedTime, bs.EnqueuedTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if as != bs || !bytes.Equal(a.Body, b.Body) || len(a.Properties) != len(b.Properties) {
		return false
	}
	for i := range a.Properties {
		if a.Properties[i] != b.Properties[i] {
			return false
		}
	}
	return true
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msg  *hubkit.Message
	}{
		{"empty", &hubkit.Message{}},
		{"full", sampleMessage()},
		{"negative time", &hubkit.Message{System: hubkit.SystemProperties{ExpiryTime: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := codec.AppendMessage([]byte("prefix"), tt.msg)
			var got hubkit.Message
			if err := codec.DecodeMessage(enc[len("prefix"):], &got); err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			if !equalMessages(&got, tt.msg) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, *tt.msg)
			}
		})
	}
}

func TestDecodeMessageRejectsDamage(t *testing.T) {
	enc := codec.AppendMessage(nil, sampleMessage())
	for i := range enc {
		damaged := bytes.Clone(enc)
		damaged[i] ^= 0x40
		var m hubkit.Message
		if err := codec.DecodeMessage(damaged, &m); !errors.Is(err, codec.ErrCorrupt) {
			t.Fatalf("flipping byte %d: got %v, want ErrCorrupt", i, err)
		}
	}
	for n := range len(enc) {
		var m hubkit.Message
		if err := codec.DecodeMessage(enc[:n], &m); !errors.Is(err, codec.ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: got %v, want ErrCorrupt", n, err)
		}
	}
}

func TestDecodeMessageReusesMemory(t *testing.T) {
	enc := codec.AppendMessage(nil, sampleMessage())
	var m hubkit.Message
	if err := codec.DecodeMessage(enc, &m); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := codec.DecodeMessage(enc, &m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decoding into a reused message allocated %v times, want 0", allocs)
	}
	enc[len(enc)-5] ^= 1 // the decoded body must not alias the encoding
	if m.Body[len(m.Body)-1] != '}' {
		t.Fatalf("decoded body %q changed with its encoding", m.Body)
	}
}

func TestKeyRoundTripAndOrder(t *testing.T) {
	tests := []struct {
		name string
		a, b codec.Key // a sorts before b
	}{
		{"stream seq", codec.Key{Space: codec.SpaceStream, Name: "events", Partition: 3, Seq: 255}, codec.Key{Space: codec.SpaceStream, Name: "events", Partition: 3, Seq: 256}},
		{"stream partition", codec.Key{Space: codec.SpaceStream, Name: "e", Partition: 1, Seq: 1 << 60}, codec.Key{Space: codec.SpaceStream, Name: "e", Partition: 2}},
		{"queue seq", codec.Key{Space: codec.SpaceQueueMsg, Name: "dev", Seq: 9}, codec.Key{Space: codec.SpaceQueueMsg, Name: "dev", Seq: 10}},
		{"outcome", codec.Key{Space: codec.SpaceOutcome, Seq: 1}, codec.Key{Space: codec.SpaceOutcome, Seq: 1 << 8}},
		{"cursor", codec.Key{Space: codec.SpaceCursor, Name: "c", Stream: "s", Partition: 0}, codec.Key{Space: codec.SpaceCursor, Name: "c", Stream: "s", Partition: 1}},
		{"kv", codec.Key{Space: codec.SpaceKV, Name: "devices/a"}, codec.Key{Space: codec.SpaceKV, Name: "devices/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, err := codec.AppendKey(nil, tt.a)
			if err != nil {
				t.Fatal(err)
			}
			kb, err := codec.AppendKey(nil, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Compare(ka, kb) >= 0 {
				t.Fatalf("%x does not sort before %x", ka, kb)
			}
			for _, k := range []codec.Key{tt.a, tt.b} {
				enc, _ := codec.AppendKey(nil, k)
				got, err := codec.ParseKey(enc)
				if err != nil || got != k {
					t.Fatalf("ParseKey(%x) = %+v, %v; want %+v", enc, got, err, k)
				}
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	if _, err := codec.AppendKey(nil, codec.Key{Space: 0x99}); err == nil {
		t.Error("AppendKey accepted an unknown space")
	}
	if _, err := codec.AppendKey(nil, codec.Key{Space: codec.SpaceStream, Name: string(make([]byte, codec.MaxNameLen+1))}); err == nil {
		t.Error("AppendKey accepted a name longer than MaxNameLen")
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown space", []byte{0x99}},
		{"name shorter than its length", []byte{byte(codec.SpaceStream), 0, 5, 'a'}},
		{"truncated sequence", []byte{byte(codec.SpaceOutcome), 1, 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := codec.ParseKey(tt.b); !errors.Is(err, codec.ErrCorrupt) {
				t.Errorf("ParseKey(%x) = %v, want ErrCorrupt", tt.b, err)
			}
		})
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		name     string
		in, want []byte
	}{
		{"last byte incremented", []byte{1, 2}, []byte{1, 3}},
		{"trailing 0xff dropped", []byte{1, 0xff}, []byte{2}},
		{"all 0xff has no end", []byte{0xff}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codec.PrefixEnd(tt.in); !bytes.Equal(got, tt.want) {
				t.Errorf("PrefixEnd(%x) = %x, want %x", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzRecordCodec(f *testing.F) {
	f.Add(codec.AppendMessage(nil, sampleMessage()), []byte("body"), "mid", "name", "value", uint64(7), int64(1700000000), uint32(999), true)
	f.Add([]byte{1, 2, 3}, []byte{}, "", "", "", uint64(0), int64(0), uint32(0), false)
	f.Fuzz(func(t *testing.T, garbage, body []byte, mid, name, value string, seq uint64, sec int64, nsec uint32, null bool) {
		var m hubkit.Message
		if err := codec.DecodeMessage(garbage, &m); err != nil {
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Fatalf("DecodeMessage error %v does not wrap ErrCorrupt", err)
			}
		} else {
			var again hubkit.Message
			if err := codec.DecodeMessage(codec.AppendMessage(nil, &m), &again); err != nil || !equalMessages(&again, &m) {
				t.Fatalf("re-encoding a decoded message: %v, %+v != %+v", err, again, m)
			}
		}
		want := &hubkit.Message{
			Body:       body,
			System:     hubkit.SystemProperties{MessageID: mid, SequenceNumber: seq, ExpiryTime: time.Unix(sec, int64(nsec%1e9))},
			Properties: hubkit.Properties{{Name: name, Value: value, Null: null}},
		}
		var got hubkit.Message
		got.Properties = make(hubkit.Properties, 0, 4) // reused capacity must not leak old values
		if err := codec.DecodeMessage(codec.AppendMessage(nil, want), &got); err != nil {
			t.Fatalf("DecodeMessage of an encoded message: %v", err)
		}
		if !equalMessages(&got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, *want)
		}
	})
}

func FuzzKeyCodec(f *testing.F) {
	f.Add([]byte{byte(codec.SpaceStream), 0, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}, byte(codec.SpaceStream), "events", "s", uint32(1), uint64(1), uint64(2))
	f.Add([]byte{}, byte(codec.SpaceCursor), "c", "stream", uint32(0), uint64(0), uint64(0))
	f.Add([]byte{byte(codec.SpaceKV), 'x'}, byte(codec.SpaceQueueMsg), "dev", "", uint32(0), uint64(255), uint64(256))
	f.Fuzz(func(t *testing.T, garbage []byte, space byte, name, stream string, partition uint32, seq1, seq2 uint64) {
		if k, err := codec.ParseKey(garbage); err != nil {
			if !errors.Is(err, codec.ErrCorrupt) {
				t.Fatalf("ParseKey error %v does not wrap ErrCorrupt", err)
			}
		} else if enc, err := codec.AppendKey(nil, k); err != nil || !bytes.Equal(enc, garbage) {
			t.Fatalf("ParseKey(%x) = %+v, which encodes as %x, %v", garbage, k, enc, err)
		}
		k1 := codec.Key{Space: codec.Space(space), Name: name, Stream: stream, Partition: partition, Seq: seq1}
		e1, err := codec.AppendKey(nil, k1)
		if err != nil {
			return // unknown space
		}
		got, err := codec.ParseKey(e1)
		if err != nil {
			t.Fatalf("ParseKey(AppendKey(%+v)): %v", k1, err)
		}
		enc, _ := codec.AppendKey(nil, got)
		if !bytes.Equal(enc, e1) {
			t.Fatalf("key %+v does not round-trip: %x then %x", k1, e1, enc)
		}
		switch codec.Space(space) {
		case codec.SpaceStream, codec.SpaceQueueMsg, codec.SpaceQueueLock, codec.SpaceOutcome:
			k2 := k1
			k2.Seq = seq2
			e2, _ := codec.AppendKey(nil, k2)
			if c := bytes.Compare(e1, e2); (seq1 < seq2) != (c < 0) || (seq1 == seq2) != (c == 0) {
				t.Fatalf("sequence %d vs %d: keys compare %d", seq1, seq2, c)
			}
		}
	})
}
