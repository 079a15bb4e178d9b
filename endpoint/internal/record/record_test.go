package record_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/endpoint/internal/record"
)

func TestMarshal(t *testing.T) {
	enq := time.Date(2019, 5, 10, 6, 6, 32, 722000000, time.UTC)
	for _, tc := range []struct {
		name string
		m    hubkit.Message
		want string
	}{
		{
			name: "json body",
			m: hubkit.Message{Body: []byte(`{"t": 1}`), System: hubkit.SystemProperties{
				ContentType: "application/JSON", ContentEncoding: "UTF-8", ConnectionDeviceID: "d1",
				ConnectionAuthMethod: `{"scope":"device"}`, ConnectionAuthGenerationID: "636930642531278483", EnqueuedTime: enq,
			}, Properties: hubkit.Properties{{Name: "a", Value: "1"}}},
			want: `{"EnqueuedTimeUtc":"2019-05-10T06:06:32.7220000Z","Properties":{"a":"1"},"SystemProperties":{"connectionAuthMethod":"{\"scope\":\"device\"}","connectionDeviceGenerationId":"636930642531278483","connectionDeviceId":"d1","contentEncoding":"UTF-8","contentType":"application/JSON","enqueuedTime":"2019-05-10T06:06:32.7220000Z"},"Body":{"t":1}}`,
		},
		{
			name: "binary body is base64",
			m:    hubkit.Message{Body: []byte{0, 1, 2}, System: hubkit.SystemProperties{MessageID: "m1", EnqueuedTime: enq}},
			want: `{"EnqueuedTimeUtc":"2019-05-10T06:06:32.7220000Z","Properties":{},"SystemProperties":{"enqueuedTime":"2019-05-10T06:06:32.7220000Z","messageId":"m1"},"Body":"AAEC"}`,
		},
		{
			name: "json without utf-8 encoding is base64",
			m:    hubkit.Message{Body: []byte(`{}`), System: hubkit.SystemProperties{ContentType: "application/json"}},
			want: `{"EnqueuedTimeUtc":"","Properties":{},"SystemProperties":{"contentType":"application/json"},"Body":"e30="}`,
		},
		{
			name: "invalid json is base64",
			m:    hubkit.Message{Body: []byte(`{`), System: hubkit.SystemProperties{ContentType: "application/json", ContentEncoding: "utf-8"}},
			want: `{"EnqueuedTimeUtc":"","Properties":{},"SystemProperties":{"contentEncoding":"utf-8","contentType":"application/json"},"Body":"ew=="}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := record.Marshal(&tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Fatalf("got  %s\nwant %s", b, tc.want)
			}
			m, err := record.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Body, tc.m.Body) && !record.IsJSON(&tc.m) {
				t.Errorf("body %q came back as %q", tc.m.Body, m.Body)
			}
			if m.System.MessageID != tc.m.System.MessageID || !m.System.EnqueuedTime.Equal(tc.m.System.EnqueuedTime) {
				t.Errorf("system properties %+v came back as %+v", tc.m.System, m.System)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for _, in := range []string{``, `[]`, `{}`, `{"Body":"!!"}`, `{"Body":1}`, `{"EnqueuedTimeUtc":"yesterday","Body":"AA=="}`} {
		if _, err := record.Unmarshal([]byte(in)); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", in)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"EnqueuedTimeUtc":"2019-05-10T06:06:32.7220000Z","Properties":{"a":"1"},"SystemProperties":{"contentType":"application/json","contentEncoding":"utf-8"},"Body":{"t":1}}`))
	f.Add([]byte(`{"Body":"AAEC"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := record.Unmarshal(data)
		if err != nil {
			return
		}
		b, err := record.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal of a decoded record: %v", err)
		}
		m2, err := record.Unmarshal(b)
		if err != nil {
			t.Fatalf("a record we wrote does not decode: %v\n%s", err, b)
		}
		if !bytes.Equal(m.Body, m2.Body) && !record.IsJSON(m) {
			t.Fatalf("body changed on a round trip: %q -> %q", m.Body, m2.Body)
		}
	})
}
