package route

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON scanner below walks a body in place: a message is validated
// once, then each path lookup skips the members it does not want without
// building a tree. This keeps a $body condition on a kilobyte body within
// a few microseconds and almost free of allocations.

// maxJSONDepth bounds nesting, as Json.NET's default MaxDepth of 64 does
// for IoT Hub; deeper documents count as invalid, so recursion is bounded.
const maxJSONDepth = 64

// A seg is one step of a $body or $twin path: a member name, then an
// array index when index >= 0.
type seg struct {
	name  string
	index int
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// validJSON reports whether b holds exactly one strict JSON value.
func validJSON(b []byte) bool {
	i, ok := skipValue(b, skipWS(b, 0), 0)
	return ok && skipWS(b, i) == len(b)
}

// skipValue checks the JSON value starting at b[i] and returns the index
// just after it.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return i, false
		}
		return skipContainer(b, i, depth+1)
	case c == '"':
		return skipString(b, i)
	case c == 't':
		return skipWord(b, i, "true")
	case c == 'f':
		return skipWord(b, i, "false")
	case c == 'n':
		return skipWord(b, i, "null")
	default:
		return skipNumber(b, i)
	}
}

func skipContainer(b []byte, i, depth int) (int, bool) {
	obj := b[i] == '{'
	closer := byte(']')
	if obj {
		closer = '}'
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, true
	}
	for {
		var ok bool
		if obj {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			if i, ok = skipString(b, i); !ok {
				return i, false
			}
			if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
				return i, false
			}
			i = skipWS(b, i+1)
		}
		if i, ok = skipValue(b, i, depth); !ok {
			return i, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case closer:
			return i + 1, true
		default:
			return i, false
		}
	}
}

func skipWord(b []byte, i int, w string) (int, bool) {
	if len(b)-i >= len(w) && string(b[i:i+len(w)]) == w {
		return i + len(w), true
	}
	return i, false
}

// skipString checks the string starting at the quote b[i].
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		switch {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		}
		i++
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
				return i, false
			}
			i += 4
		default:
			return i, false
		}
	}
	return i, false
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// skipNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if j := skipDigits(b, i); j > i {
		i = j
	} else {
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

// skipValid returns the index just after the value at b[i] of a document
// already known to be valid: it only counts brackets and jumps over
// strings, several times faster than skipValue.
func skipValid(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			continue
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
			continue
		default:
			continue
		}
		if depth == 0 {
			return i + 1
		}
	}
	return i
}

// stringEnd returns the index just after the valid string at b[i].
func stringEnd(b []byte, i int) int {
	for i++; ; {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		i += j
		k := i
		for k > 0 && b[k-1] == '\\' {
			k--
		}
		if (i-k)%2 == 0 {
			return i + 1
		}
		i++
	}
}

// lookup finds the value at path in the valid JSON document b, starting
// from the value at b[i], and returns the offset of its first byte, or
// -1. Member names compare exactly, or case-insensitively when fold is set
// (twins); of duplicate members the last one counts, as with Json.NET.
func lookup(b []byte, i int, path []seg, fold bool) int {
	for _, s := range path {
		if i = member(b, i, s.name, fold); i < 0 {
			return -1
		}
		if i = index(b, i, s.index); i < 0 {
			return -1
		}
	}
	return i
}

// index returns the offset of element n of the array at b[i], b[i] itself
// when n < 0, or -1.
func index(b []byte, i, n int) int {
	if n < 0 {
		return i
	}
	return element(b, i, n)
}

// A memo remembers where the first member of a path was found, so that
// several paths below one member ($body.Weather.a, $body.Weather.b) walk
// the top level of a document once per message.
type memo struct {
	name string
	off  int
	set  bool
}

// find is lookup from the top of b, through m.
func (m *memo) find(b []byte, path []seg, fold bool) int {
	if !m.set || m.name != path[0].name {
		*m = memo{path[0].name, member(b, skipWS(b, 0), path[0].name, fold), true}
	}
	if m.off < 0 {
		return -1
	}
	i := index(b, m.off, path[0].index)
	if i < 0 {
		return -1
	}
	return lookup(b, i, path[1:], fold)
}

// member returns the offset of the value of member name in the object at
// b[i], or -1.
func member(b []byte, i int, name string, fold bool) int {
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	found := -1
	i = skipWS(b, i+1)
	for i < len(b) && b[i] == '"' {
		end := stringEnd(b, i)
		key := b[i+1 : end-1]
		i = skipWS(b, skipWS(b, end)+1) // past ':'
		if keyEqual(key, name, fold) {
			found = i
		}
		if i = skipWS(b, skipValid(b, i)); i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return found
}

// element returns the offset of element n of the array at b[i], or -1.
func element(b []byte, i, n int) int {
	if i >= len(b) || b[i] != '[' {
		return -1
	}
	i = skipWS(b, i+1)
	for k := 0; i < len(b) && b[i] != ']'; k++ {
		if k == n {
			return i
		}
		if i = skipWS(b, skipValid(b, i)); i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return -1
}

// keyEqual compares the raw (still escaped) member name key with name.
func keyEqual(key []byte, name string, fold bool) bool {
	if bytes.IndexByte(key, '\\') >= 0 {
		s := unquoteJSON(key)
		if fold {
			return strings.EqualFold(s, name)
		}
		return s == name
	}
	if fold {
		return strings.EqualFold(string(key), name)
	}
	return string(key) == name
}

// jsonValue maps the JSON value at b[i] to a Value: objects and arrays
// become Undefined carrying their first byte, for is_object and is_array.
func jsonValue(b []byte, i int) Value {
	if i < 0 || i >= len(b) {
		return undef
	}
	switch c := b[i]; c {
	case '{', '[':
		return Value{node: c}
	case 't':
		return vtrue
	case 'f':
		return vfalse
	case 'n':
		return null
	case '"':
		return str(unquoteJSON(b[i+1 : stringEnd(b, i)-1]))
	}
	end, _ := skipNumber(b, i)
	f, err := strconv.ParseFloat(string(b[i:end]), 64)
	if err != nil && f == 0 {
		return undef
	}
	return num(f) // out of range parses to ±Inf, as in .NET
}

// rawText returns the JSON text at b[i]; strings are unquoted.
func rawText(b []byte, i int) string {
	if b[i] == '"' {
		return unquoteJSON(b[i+1 : stringEnd(b, i)-1])
	}
	return string(b[i:skipValid(b, i)])
}

// unquoteJSON decodes the body of a valid JSON string.
func unquoteJSON(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch b[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := rune(hex4(b[i+1 : i+5]))
			i += 4
			if utf16.IsSurrogate(r) && i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if r2 := utf16.DecodeRune(r, rune(hex4(b[i+3:i+7]))); r2 != utf8.RuneError {
					r = r2
					i += 6
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, b[i])
		}
	}
	return string(out)
}

func hex4(b []byte) uint16 {
	var v uint16
	for _, c := range b[:4] {
		switch {
		case c >= 'a':
			c -= 'a' - 10
		case c >= 'A':
			c -= 'A' - 10
		default:
			c -= '0'
		}
		v = v<<4 | uint16(c)
	}
	return v
}

// decodeText converts a body in the named encoding (utf-8, utf-16 or
// utf-32, little-endian as .NET's Encoding.Unicode and UTF32) to UTF-8
// without a byte order mark. It reports false for other encodings and for
// bodies whose length does not fit the encoding.
func decodeText(b []byte, enc string) ([]byte, bool) {
	switch {
	case strings.EqualFold(enc, "utf-8"):
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		if utf8.Valid(b) {
			return b, true
		}
		out := make([]byte, 0, len(b)+8)
		for len(b) > 0 { // as .NET decodes: U+FFFD for each invalid byte
			r, n := utf8.DecodeRune(b)
			out = utf8.AppendRune(out, r)
			b = b[n:]
		}
		return out, true
	case strings.EqualFold(enc, "utf-16"):
		if len(b)%2 != 0 {
			return nil, false
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		}
		if len(u) > 0 && u[0] == 0xfeff {
			u = u[1:]
		}
		return []byte(string(utf16.Decode(u))), true
	case strings.EqualFold(enc, "utf-32"):
		if len(b)%4 != 0 {
			return nil, false
		}
		out := make([]byte, 0, len(b)/4)
		for i := 0; i < len(b); i += 4 {
			r := rune(uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24)
			if i == 0 && r == 0xfeff {
				continue
			}
			out = utf8.AppendRune(out, r)
		}
		return out, true
	}
	return nil, false
}
