package propbag

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hubkit/hubkit"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("propbag: malformed property bag")

// Decode parses bag, the text after events/ (or devicebound/) up to the next
// '/', and adds its properties to msg: system keys set msg.System, every
// other key is appended to msg.Properties. iothub-ack, iothub-operation,
// $.cdid and $.cmid are ignored, as IoT Hub ignores them on
// device-to-cloud messages, and so is a $.exp that is not an ISO 8601
// time: only the bag's structure and encoding can make it malformed. An
// empty bag adds nothing. Errors wrap ErrMalformed and say which pair is
// at fault; msg may then hold some of the bag's properties.
func Decode(bag string, msg *hubkit.Message) error {
	if bag == "" {
		return nil
	}
	for i := 0; bag != ""; i++ {
		var pair string
		var more bool
		pair, bag, more = strings.Cut(bag, "&")
		if more && bag == "" {
			return fmt.Errorf("%w: '&' at the end", ErrMalformed)
		}
		rawKey, rawValue, hasValue := strings.Cut(pair, "=")
		if rawKey == "" {
			return fmt.Errorf("%w: pair %d has an empty key", ErrMalformed, i)
		}
		if strings.IndexByte(rawValue, '=') >= 0 {
			return fmt.Errorf("%w: value of pair %d contains '='", ErrMalformed, i)
		}
		key, err := unescape(rawKey)
		if err != nil {
			return fmt.Errorf("%w: key of pair %d: %w", ErrMalformed, i, err)
		}
		value, err := unescape(rawValue)
		if err != nil {
			return fmt.Errorf("%w: value of %q: %w", ErrMalformed, key, err)
		}
		if err := set(msg, key, value, !hasValue); err != nil {
			return err
		}
	}
	return nil
}

// set stores one decoded pair in msg.
func set(msg *hubkit.Message, key, value string, null bool) error {
	s := &msg.System
	switch key {
	case "$.mid":
		s.MessageID = value
	case "$.cid":
		s.CorrelationID = value
	case "$.uid":
		s.UserID = value
	case "$.to":
		s.To = value
	case "$.ct":
		s.ContentType = value
	case "$.ce":
		s.ContentEncoding = value
	case "$.ctime":
		s.CreationTime = value
	case "$.sub":
		s.Subject = value
	case "$.schema":
		s.MessageSchema = value
	case "$.ifid":
		s.InterfaceID = value
	case "$.exp":
		if value == "" {
			s.ExpiryTime = time.Time{}
			return nil
		}
		// A time we cannot read is not a structural error (mqtt.md §4
		// rule 5): the message is kept, without an expiry, as IoT Hub
		// accepts a device-to-cloud expiry but does not act on it.
		if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
			s.ExpiryTime = t.UTC()
		}
	case "$.cdid", "$.cmid":
	default:
		if strings.EqualFold(key, "iothub-ack") || strings.EqualFold(key, "iothub-operation") {
			return nil
		}
		msg.Properties = append(msg.Properties, hubkit.Property{Name: key, Value: value, Null: null})
	}
	return nil
}

// unescape percent-decodes s like decodeURIComponent: every '%' must start
// a two-digit hex escape, '+' is kept, and the result must be UTF-8.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		if !utf8.ValidString(s) {
			return "", errors.New("not UTF-8")
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("bad percent escape at byte %d", i)
		}
		b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	if !utf8.Valid(b) {
		return "", errors.New("percent escapes are not UTF-8")
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// AppendC2D appends the cloud-to-device property bag of msg to dst and
// returns the extended slice: iothub-ack (lowercase; none when msg asks
// for no feedback), the set system properties among $.mid, $.cid, $.uid,
// $.to, $.exp, $.ct and $.ce, then the application properties in order (a
// null one as a bare key). iothub-ack is always there because mqtt.md §4
// lists it among what the hub includes, with none as one of its values,
// and IoT Hub's own topics carry it.
func AppendC2D(dst []byte, msg *hubkit.Message) []byte {
	first := true
	pair := func(key, value string, null bool) {
		if !first {
			dst = append(dst, '&')
		}
		first = false
		dst = appendEscaped(dst, key)
		if !null {
			dst = append(dst, '=')
			dst = appendEscaped(dst, value)
		}
	}
	s := &msg.System
	ack := strings.ToLower(string(s.Ack))
	if ack == "" {
		ack = string(hubkit.AckNone)
	}
	pair("iothub-ack", ack, false)
	for _, p := range [...]struct{ k, v string }{
		{"$.mid", s.MessageID}, {"$.cid", s.CorrelationID}, {"$.uid", s.UserID}, {"$.to", s.To},
		{"$.exp", expiry(s.ExpiryTime)}, {"$.ct", s.ContentType}, {"$.ce", s.ContentEncoding},
	} {
		if p.v != "" {
			pair(p.k, p.v, false)
		}
	}
	for _, p := range msg.Properties {
		pair(p.Name, p.Value, p.Null)
	}
	return dst
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// appendEscaped percent-encodes s like encodeURIComponent: letters,
// digits and - _ . ! ~ * ' ( ) stay, every other byte becomes %XX.
func appendEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}
