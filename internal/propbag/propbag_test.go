package propbag_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/propbag"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		bag  string
		want hubkit.Message
	}{
		{"empty", "", hubkit.Message{}},
		{
			// Observed from the Node.js SDK (azure-sdk-wire.md §5).
			name: "node sdk telemetry",
			bag:  "%24.mid=conf-0745f0c4-d2c-1&%24.cid=conf-0745f0c4-corr-1&%24.ct=application%2Fjson&%24.ce=utf-8&temperatureAlert=true&note=a%26b%3Dc%2Fd%20%C3%BC%20%2520%2B",
			want: hubkit.Message{
				System: hubkit.SystemProperties{MessageID: "conf-0745f0c4-d2c-1", CorrelationID: "conf-0745f0c4-corr-1", ContentType: "application/json", ContentEncoding: "utf-8"},
				Properties: hubkit.Properties{
					{Name: "temperatureAlert", Value: "true"},
					{Name: "note", Value: "a&b=c/d ü %20+"},
				},
			},
		},
		{
			// The C SDK sends %24 keys and raw values; others send a raw $.
			name: "raw dollar keys",
			bag:  "$.mid=m1&$.uid=u&$.to=/x&$.ctime=2021-04-21T11:30:16Z&$.sub=comp&$.schema=s&$.ifid=i&$.exp=2017-01-06T23:37:00.669Z",
			want: hubkit.Message{System: hubkit.SystemProperties{
				MessageID: "m1", UserID: "u", To: "/x", CreationTime: "2021-04-21T11:30:16Z", Subject: "comp",
				MessageSchema: "s", InterfaceID: "i", ExpiryTime: time.Date(2017, 1, 6, 23, 37, 0, 669e6, time.UTC),
			}},
		},
		{
			name: "doc example content type",
			bag:  "$.ct=application%2Fjson%3Bcharset%3Dutf-8",
			want: hubkit.Message{System: hubkit.SystemProperties{ContentType: "application/json;charset=utf-8"}},
		},
		{
			name: "null and empty values, plus stays plus",
			bag:  "bare&empty=&plus=a+b",
			want: hubkit.Message{Properties: hubkit.Properties{
				{Name: "bare", Null: true}, {Name: "empty"}, {Name: "plus", Value: "a+b"},
			}},
		},
		{
			// Not a structural error: the message is kept without expiry.
			name: "unreadable expiry is ignored",
			bag:  "$.mid=m&$.exp=yesterday&%24.exp=2017-13-45&k=v",
			want: hubkit.Message{System: hubkit.SystemProperties{MessageID: "m"}, Properties: hubkit.Properties{{Name: "k", Value: "v"}}},
		},
		{
			name: "ignored keys and unknown system keys",
			bag:  "iothub-ack=full&IOTHUB-OPERATION=x&%24.cdid=d&%24.cmid=m&%24.on=out&%24.xyz=1",
			want: hubkit.Message{Properties: hubkit.Properties{{Name: "$.on", Value: "out"}, {Name: "$.xyz", Value: "1"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got hubkit.Message
			if err := propbag.Decode(tt.bag, &got); err != nil {
				t.Fatalf("Decode(%q): %v", tt.bag, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode(%q)\n got %+v\nwant %+v", tt.bag, got, tt.want)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, bag := range []string{
		"=v", "a=1&&b=2", "a=1&", "&a", "a=b=c", "a=%zz", "a=%4", "%=1", "a=%C3", "a=\xff",
	} {
		t.Run(bag, func(t *testing.T) {
			var m hubkit.Message
			err := propbag.Decode(bag, &m)
			if !errors.Is(err, propbag.ErrMalformed) {
				t.Fatalf("Decode(%q) = %v, want an error wrapping ErrMalformed", bag, err)
			}
			if !strings.HasPrefix(err.Error(), "propbag: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

func TestAppendC2D(t *testing.T) {
	tests := []struct {
		name string
		msg  hubkit.Message
		want string
	}{
		{"empty", hubkit.Message{}, "iothub-ack=none"},
		{
			// What the Node.js SDK parsed correctly (azure-sdk-wire.md §6).
			name: "node sdk c2d",
			msg: hubkit.Message{
				System: hubkit.SystemProperties{MessageID: "m-1", CorrelationID: "c-1", To: "/devices/dev-1/messages/deviceBound"},
				Properties: hubkit.Properties{
					{Name: "cprop1", Value: "value-1"},
					{Name: "cprop2", Value: "x&y=z/w ü %20+"},
				},
			},
			want: "iothub-ack=none&%24.mid=m-1&%24.cid=c-1&%24.to=%2Fdevices%2Fdev-1%2Fmessages%2FdeviceBound&cprop1=value-1&cprop2=x%26y%3Dz%2Fw%20%C3%BC%20%2520%2B",
		},
		{
			name: "ack, every system key, null property",
			msg: hubkit.Message{
				System: hubkit.SystemProperties{
					Ack: hubkit.AckFull, UserID: "u", ExpiryTime: time.Date(2017, 1, 6, 23, 37, 0, 669e6, time.UTC),
					ContentType: "application/json", ContentEncoding: "utf-8",
					SequenceNumber: 7, DeliveryCount: 2, // never sent
				},
				Properties: hubkit.Properties{{Name: "flag", Null: true}, {Name: "e"}},
			},
			want: "iothub-ack=full&%24.uid=u&%24.exp=2017-01-06T23%3A37%3A00.669Z&%24.ct=application%2Fjson&%24.ce=utf-8&flag&e=",
		},
		{"ack none is sent", hubkit.Message{System: hubkit.SystemProperties{Ack: hubkit.AckNone}}, "iothub-ack=none"},
		{"ack is lowercase", hubkit.Message{System: hubkit.SystemProperties{Ack: "Positive"}}, "iothub-ack=positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(propbag.AppendC2D(nil, &tt.msg)); got != tt.want {
				t.Errorf("AppendC2D\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// FuzzDecode checks that Decode never panics and that application
// properties survive an encode and decode round trip.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"", "a=1", "$.mid=x&%24.cid=y&bare&e=", "note=a%26b%3Dc%2Fd%20%C3%BC%20%2520%2B", "a=%zz", "=", "&",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, bag string) {
		var m hubkit.Message
		if err := propbag.Decode(bag, &m); err != nil {
			if !errors.Is(err, propbag.ErrMalformed) {
				t.Fatalf("Decode(%q) error %v does not wrap ErrMalformed", bag, err)
			}
			return
		}
		in := hubkit.Message{Properties: m.Properties}
		for _, p := range in.Properties {
			if strings.HasPrefix(p.Name, "$.") {
				return // would decode as a system property
			}
		}
		enc := string(propbag.AppendC2D(nil, &in))
		var out hubkit.Message
		if err := propbag.Decode(enc, &out); err != nil {
			t.Fatalf("Decode(AppendC2D(%q)) = %v", bag, err)
		}
		if len(in.Properties) != len(out.Properties) || (len(in.Properties) > 0 && !reflect.DeepEqual(in.Properties, out.Properties)) {
			t.Fatalf("round trip of %q: %+v became %+v via %q", bag, in.Properties, out.Properties, enc)
		}
	})
}
