package hubkit_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
)

func TestValidateMessageID(t *testing.T) {
	for _, c := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"one character", "a", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"129 characters", strings.Repeat("a", 129), false},
		{"empty", "", false},
		{"every special", "-:.+%_#*?!(),=@;$'", true},
		{"letters and digits", "AZaz09", true},
		{"slash", "a/b", false},
		{"space", "a b", false},
		{"non-ASCII", "é", false},
		{"quote", `a"b`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := hubkit.ValidateMessageID(c.id)
			if c.ok && err != nil {
				t.Errorf("ValidateMessageID(%q) = %v, want nil", c.id, err)
			}
			if !c.ok && !errors.Is(err, hubkit.ErrArgumentInvalid) {
				t.Errorf("ValidateMessageID(%q) = %v, want ErrArgumentInvalid", c.id, err)
			}
		})
	}
}

func TestValidateDeviceID(t *testing.T) {
	for _, c := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"plain", "device-1", true},
		{"128 characters", strings.Repeat("d", 128), true},
		{"129 characters", strings.Repeat("d", 129), false},
		{"empty", "", false},
		{"specials", "dev:1.2+3%4_5#6*7?8!9(0),=@;$'", true},
		{"slash", "dev/1", false},
		{"backslash", `dev\1`, false},
		{"space", "dev 1", false},
		{"control character", "dev\x00", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := hubkit.ValidateDeviceID(c.id)
			if c.ok && err != nil {
				t.Errorf("ValidateDeviceID(%q) = %v, want nil", c.id, err)
			}
			if !c.ok && !errors.Is(err, hubkit.ErrArgumentInvalid) {
				t.Errorf("ValidateDeviceID(%q) = %v, want ErrArgumentInvalid", c.id, err)
			}
		})
	}
}

// withSize returns a message whose Size is n: properties and a message id
// filled up with body bytes.
func withSize(t *testing.T, n int) *hubkit.Message {
	t.Helper()
	m := &hubkit.Message{
		System:     hubkit.SystemProperties{MessageID: "id-1", ContentType: "application/json"},
		Properties: hubkit.Properties{{Name: "k", Value: "v"}},
	}
	m.Body = make([]byte, n-m.Size())
	if m.Size() != n {
		t.Fatalf("Size = %d, want %d", m.Size(), n)
	}
	return m
}

func TestSizeLimits(t *testing.T) {
	for _, c := range []struct {
		name     string
		validate func(*hubkit.Message) error
		size     int
		ok       bool
	}{
		{"D2C at 262144 bytes", hubkit.ValidateD2C, 262144, true},
		{"D2C at 262145 bytes", hubkit.ValidateD2C, 262145, false},
		{"C2D at 65536 bytes", hubkit.ValidateC2D, 65536, true},
		{"C2D at 65537 bytes", hubkit.ValidateC2D, 65537, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.validate(withSize(t, c.size))
			if c.ok && err != nil {
				t.Errorf("got %v, want nil", err)
			}
			if !c.ok {
				if !errors.Is(err, hubkit.ErrMessageTooLarge) {
					t.Errorf("got %v, want ErrMessageTooLarge", err)
				}
				if got := hubkit.ErrorCode(err).HTTPStatus(); got != 413 {
					t.Errorf("HTTP status %d, want 413", got)
				}
			}
		})
	}
}

func TestSize(t *testing.T) {
	expiry := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for _, c := range []struct {
		name string
		m    hubkit.Message
		want int
	}{
		{"empty", hubkit.Message{}, 0},
		{"body", hubkit.Message{Body: []byte("hello")}, 5},
		{"string system properties", hubkit.Message{System: hubkit.SystemProperties{
			MessageID: "m", CorrelationID: "cc", UserID: "uuu", To: "tttt", ContentType: "ct", ContentEncoding: "ce",
			CreationTime: "x", Ack: hubkit.AckFull, ConnectionDeviceID: "d", ConnectionModuleID: "m",
			ConnectionAuthGenerationID: "g", ConnectionAuthMethod: "a", MessageSource: "s", DataSchema: "d",
			Subject: "s", InterfaceID: "i", MessageSchema: "m",
		}}, 1 + 2 + 3 + 4 + 2 + 2 + 1 + 4 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1},
		{"expiry counts its ISO 8601 millisecond form", hubkit.Message{System: hubkit.SystemProperties{ExpiryTime: expiry}},
			len("2026-01-02T03:04:05.123Z")},
		{"expiry without fractions counts the same", hubkit.Message{System: hubkit.SystemProperties{ExpiryTime: expiry.Truncate(time.Second)}}, 24},
		{"hub-stamped numbers and times are not counted", hubkit.Message{System: hubkit.SystemProperties{
			SequenceNumber: 1 << 40, EnqueuedTime: expiry, DeliveryCount: 7,
		}}, 0},
		{"application properties count names and values", hubkit.Message{Properties: hubkit.Properties{
			{Name: "name", Value: "value"}, {Name: "flag", Null: true},
		}}, 4 + 5 + 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.m.Size(); got != c.want {
				t.Errorf("Size = %d, want %d", got, c.want)
			}
		})
	}
}

func TestValidateC2DProperties(t *testing.T) {
	for _, c := range []struct {
		name string
		m    hubkit.Message
		ok   bool
	}{
		{"token properties", hubkit.Message{Properties: hubkit.Properties{{Name: "a-b.c", Value: "x~y|z"}}}, true},
		{"empty value", hubkit.Message{Properties: hubkit.Properties{{Name: "a", Value: ""}}}, true},
		{"empty name", hubkit.Message{Properties: hubkit.Properties{{Name: "", Value: "v"}}}, false},
		{"space in value", hubkit.Message{Properties: hubkit.Properties{{Name: "a", Value: "x y"}}}, false},
		{"colon in name", hubkit.Message{Properties: hubkit.Properties{{Name: "a:b", Value: "v"}}}, false},
		{"bad message id", hubkit.Message{System: hubkit.SystemProperties{MessageID: "a/b"}}, false},
		{"bad ack", hubkit.Message{System: hubkit.SystemProperties{Ack: "sometimes"}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := hubkit.ValidateC2D(&c.m)
			if c.ok && err != nil {
				t.Errorf("ValidateC2D = %v, want nil", err)
			}
			if !c.ok && !errors.Is(err, hubkit.ErrArgumentInvalid) {
				t.Errorf("ValidateC2D = %v, want ErrArgumentInvalid", err)
			}
		})
	}
}

func TestIsToken(t *testing.T) {
	for _, c := range []struct {
		name string
		s    string
		want bool
	}{
		{"empty", "", true},
		{"letters and digits", "abcXYZ019", true},
		{"every special", "!#$%&'*+-.^_`|~", true},
		{"space", "a b", false},
		{"colon", "a:b", false},
		{"slash", "a/b", false},
		{"double quote", `a"b`, false},
		{"comma", "a,b", false},
		{"parentheses", "a(b)", false},
		{"non-ASCII", "é", false},
		{"tab", "a\tb", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := hubkit.IsToken(c.s); got != c.want {
				t.Errorf("IsToken(%q) = %v, want %v", c.s, got, c.want)
			}
		})
	}
}

func TestParseAck(t *testing.T) {
	for _, c := range []struct {
		name               string
		in                 string
		want               hubkit.Ack
		positive, negative bool
		ok                 bool
	}{
		{"empty means none", "", hubkit.AckNone, false, false, true},
		{"none", "none", hubkit.AckNone, false, false, true},
		{"positive", "positive", hubkit.AckPositive, true, false, true},
		{"capitalised", "Negative", hubkit.AckNegative, false, true, true},
		{"upper case", "FULL", hubkit.AckFull, true, true, true},
		{"unknown", "yes", "", false, false, false},
		{"leading space", " full", "", false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := hubkit.ParseAck(c.in)
			if !c.ok {
				if !errors.Is(err, hubkit.ErrArgumentInvalid) {
					t.Errorf("ParseAck(%q) = %q, %v; want ErrArgumentInvalid", c.in, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseAck(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			if got.Positive() != c.positive || got.Negative() != c.negative {
				t.Errorf("%q: Positive, Negative = %v, %v; want %v, %v", got, got.Positive(), got.Negative(), c.positive, c.negative)
			}
		})
	}
}

func TestProperties(t *testing.T) {
	names := func(ps hubkit.Properties) string {
		var b []string
		for _, p := range ps {
			b = append(b, p.Name+"="+p.Value)
		}
		return strings.Join(b, ",")
	}
	for _, c := range []struct {
		name string
		do   func(ps *hubkit.Properties)
		want string
	}{
		{"set appends new names in order", func(ps *hubkit.Properties) { ps.Set("d", "4") }, "a=1,B=2,c=3,d=4"},
		{"set replaces a name differing in case, in place", func(ps *hubkit.Properties) { ps.Set("b", "x") }, "a=1,b=x,c=3"},
		{"delete ignores case and keeps order", func(ps *hubkit.Properties) { ps.Delete("A") }, "B=2,c=3"},
		{"delete of the middle one", func(ps *hubkit.Properties) { ps.Delete("b") }, "a=1,c=3"},
		{"delete of a missing name", func(ps *hubkit.Properties) { ps.Delete("z") }, "a=1,B=2,c=3"},
		{"set clears null", func(ps *hubkit.Properties) { ps.Set("C", "") }, "a=1,B=2,C="},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := hubkit.Properties{{Name: "a", Value: "1"}, {Name: "B", Value: "2"}, {Name: "c", Null: true, Value: "3"}}
			c.do(&ps)
			if got := names(ps); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
			for _, p := range ps {
				if p.Name == "C" && p.Null {
					t.Errorf("Set left Null on %+v", p)
				}
			}
		})
	}
	ps := hubkit.Properties{{Name: "Color", Value: "red"}, {Name: "flag", Null: true}}
	if v, ok := ps.Get("COLOR"); !ok || v != "red" {
		t.Errorf(`Get("COLOR") = %q, %v; want "red", true`, v, ok)
	}
	if v, ok := ps.Get("colour"); ok || v != "" {
		t.Errorf(`Get("colour") = %q, %v; want "", false`, v, ok)
	}
	if p, ok := ps.Lookup("FLAG"); !ok || !p.Null || p.Name != "flag" {
		t.Errorf(`Lookup("FLAG") = %+v, %v; want the null property flag`, p, ok)
	}
}

func TestClone(t *testing.T) {
	m := &hubkit.Message{Body: []byte("abc"), Properties: hubkit.Properties{{Name: "a", Value: "1"}}}
	c := m.Clone()
	c.Body[0] = 'x'
	c.Properties[0].Value = "2"
	if string(m.Body) != "abc" || m.Properties[0].Value != "1" {
		t.Errorf("changing the clone changed the original: %+v", m)
	}
}
