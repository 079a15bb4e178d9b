package route

import (
	"strings"
	"unicode/utf8"
)

// tokKind is a token type. The order of the constants is the order of the
// lexer rules: when two rules match the same length, the earlier wins.
type tokKind uint8

const (
	tEOF      tokKind = iota
	tReserved         // SELECT, FROM, WHERE, INTO: tokens of the route grammar, never valid in a condition
	tString
	tUnterminated
	tInt
	tHex
	tReal
	tTrue
	tFalse
	tNullKw
	tUndefined
	tLParen
	tRParen
	tComma
	tPlus
	tMinus
	tMul
	tDiv
	tMod
	tAnd
	tOr
	tNot
	tEq
	tNe1
	tNe2
	tLe
	tGe
	tGt
	tLt
	tConcat
	tCoalesce
	tLBrace
	tRBrace
	tSysProp
	tIdent
	tQueryPath
	tUnknown
)

// A token is one lexeme of a condition. off and end are byte offsets into
// the source; line and col are 1-based and count UTF-16 code units, as
// IoT Hub does, so that error positions match the service's.
type token struct {
	kind      tokKind
	off, end  int
	line, col int
	width     int // length in UTF-16 code units; 5 ("<EOF>") for EOF
}

// isSpace reports the characters that separate tokens.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// pathChar reports whether c may appear in a $-token (QUERY_PATH_CHARS).
// Bytes of multi-byte UTF-8 sequences always may.
func pathChar(c byte) bool {
	return !isSpace(c) && strings.IndexByte(`()<>@,;:\"/?={}`, c) < 0
}

// identChar reports whether c may appear in an identifier: a path
// character other than '[' and ']'.
func identChar(c byte) bool { return pathChar(c) && c != '[' && c != ']' }

// lexer splits a condition into tokens, one at a time.
type lexer struct {
	src       string
	pos       int
	line, col int
	unclosed  bool // no "*/" follows pos: a later "/*" is not a comment either
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1, col: 1} }

// advance moves pos to end, keeping line and col up to date.
func (l *lexer) advance(end int) {
	for l.pos < end {
		r, n := utf8.DecodeRuneInString(l.src[l.pos:])
		l.pos += n
		switch {
		case r == '\n':
			l.line++
			l.col = 1
		case r >= 0x10000:
			l.col += 2
		default:
			l.col++
		}
	}
}

// width16 is the length of s in UTF-16 code units.
func width16(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}

// next returns the next token, skipping whitespace and comments.
func (l *lexer) next() token {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if isSpace(c) {
			l.advance(l.pos + 1)
			continue
		}
		if !l.unclosed && strings.HasPrefix(l.src[l.pos:], "/*") {
			if i := strings.Index(l.src[l.pos+2:], "*/"); i >= 0 {
				l.advance(l.pos + 2 + i + 2)
				continue
			}
			l.unclosed = true
		}
		break
	}
	t := token{off: l.pos, line: l.line, col: l.col}
	if l.pos == len(l.src) {
		t.end, t.width = l.pos, 5
		return t
	}
	t.kind, t.end = l.match(l.src[l.pos:])
	t.end += l.pos
	t.width = width16(l.src[t.off:t.end])
	l.advance(t.end)
	return t
}

// match applies every lexer rule at the start of s and returns the
// longest match, the earliest rule winning a tie.
func (l *lexer) match(s string) (tokKind, int) {
	best, bestLen := tUnknown, 0
	try := func(k tokKind, n int) {
		if n > bestLen {
			best, bestLen = k, n
		}
	}
	for _, w := range [...]string{"select", "from", "where", "into"} {
		if len(s) >= len(w) && strings.EqualFold(s[:len(w)], w) {
			try(tReserved, len(w))
		}
	}
	if s[0] == '\'' || s[0] == '"' {
		closed, n := scanString(s)
		if closed {
			try(tString, n)
		} else {
			try(tUnterminated, n)
		}
	}
	try(tInt, matchInt(s))
	try(tHex, matchHex(s))
	try(tReal, matchReal(s))
	for _, lit := range [...]struct {
		k tokKind
		w string
	}{{tTrue, "true"}, {tFalse, "false"}, {tNullKw, "null"}, {tUndefined, "undefined"}} {
		if strings.HasPrefix(s, lit.w) {
			try(lit.k, len(lit.w))
		}
	}
	switch s[0] {
	case '(':
		try(tLParen, 1)
	case ')':
		try(tRParen, 1)
	case ',':
		try(tComma, 1)
	case '+':
		try(tPlus, 1)
	case '-':
		try(tMinus, 1)
	case '*':
		try(tMul, 1)
	case '/':
		try(tDiv, 1)
	case '%':
		try(tMod, 1)
	case '=':
		try(tEq, 1)
	case '>':
		try(tGt, 1)
	case '<':
		try(tLt, 1)
	case '{':
		try(tLBrace, 1)
	case '}':
		try(tRBrace, 1)
	}
	for _, kw := range [...]struct {
		k tokKind
		w string
	}{{tAnd, "and"}, {tOr, "or"}, {tNot, "not"}} {
		if len(s) >= len(kw.w) && strings.EqualFold(s[:len(kw.w)], kw.w) {
			try(kw.k, len(kw.w))
		}
	}
	for _, op := range [...]struct {
		k tokKind
		w string
	}{{tNe1, "!="}, {tNe2, "<>"}, {tLe, "<="}, {tGe, ">="}, {tConcat, "||"}, {tCoalesce, "??"}} {
		if strings.HasPrefix(s, op.w) {
			try(op.k, 2)
		}
	}
	if s[0] == '$' {
		if n := span(s[1:], pathChar); n > 0 {
			try(tSysProp, 1+n)
		}
	}
	try(tIdent, span(s, identChar))
	try(tQueryPath, span(s, pathChar))
	if bestLen == 0 {
		_, n := utf8.DecodeRuneInString(s)
		return tUnknown, n
	}
	return best, bestLen
}

// span returns the length of the prefix of s whose bytes satisfy ok.
func span(s string, ok func(byte) bool) int {
	i := 0
	for i < len(s) && ok(s[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// scanString scans a quoted string at the start of s: (ESC | ~[q\\])*
// then the closing quote. It returns whether the quote was found and the
// length of the match (the unterminated prefix when it was not).
func scanString(s string) (closed bool, n int) {
	q := s[0]
	i := 1
	for i < len(s) {
		switch c := s[i]; {
		case c == q:
			return true, i + 1
		case c == '\\':
			if n := escLen(s[i:]); n > 0 {
				i += n
				continue
			}
			return false, i
		default:
			i++
		}
	}
	return false, i
}

// escLen returns the length of a valid escape at the start of s, or 0.
func escLen(s string) int {
	if len(s) < 2 {
		return 0
	}
	switch s[1] {
	case '\'', '"', '\\':
		return 2
	case 'u':
		if len(s) >= 6 && isHex(s[2]) && isHex(s[3]) && isHex(s[4]) && isHex(s[5]) {
			return 6
		}
	}
	return 0
}

// matchInt matches '-'? [0-9]+.
func matchInt(s string) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	n := span(s[i:], isDigit)
	if n == 0 {
		return 0
	}
	return i + n
}

// matchHex matches '0' [xX] [0-9a-fA-F]+.
func matchHex(s string) int {
	if len(s) < 3 || s[0] != '0' || s[1] != 'x' && s[1] != 'X' {
		return 0
	}
	if n := span(s[2:], isHex); n > 0 {
		return 2 + n
	}
	return 0
}

// matchReal matches '-'? [0-9]* '.' [0-9]+ EXP? | '-'? [0-9]* EXP.
func matchReal(s string) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	i += span(s[i:], isDigit)
	if i < len(s) && s[i] == '.' {
		n := span(s[i+1:], isDigit)
		if n == 0 {
			return 0
		}
		j := i + 1 + n
		return j + matchExp(s[j:])
	}
	if n := matchExp(s[i:]); n > 0 {
		return i + n
	}
	return 0
}

// matchExp matches [eE] [+-]? [0-9]+.
func matchExp(s string) int {
	if len(s) < 2 || s[0] != 'e' && s[0] != 'E' {
		return 0
	}
	i := 1
	if s[i] == '+' || s[i] == '-' {
		i++
	}
	if n := span(s[i:], isDigit); n > 0 {
		return i + n
	}
	return 0
}
