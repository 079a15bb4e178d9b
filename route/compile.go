package route

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/hubkit/hubkit"
)

// Limits that keep compiling and evaluating any input bounded in time and
// stack. IoT Hub documents none; real conditions are far below both.
const (
	// MaxConditionLength is the longest condition Compile accepts, in bytes.
	MaxConditionLength = 64 * 1024
	// MaxNesting is the deepest nesting of parentheses, unary operators and
	// function calls Compile accepts.
	MaxNesting = 128
)

// A Position is a place in a condition: 1-based line and column, columns
// counted in UTF-16 code units as IoT Hub counts them.
type Position struct {
	Line, Column int
}

// A CompileError reports a condition that does not compile: a syntax
// error, an operand of the wrong type, or an unknown function. Message is
// IoT Hub's text, such as "Invalid operands to binary operator '=': have
// 'string' and 'number', expected 'string' and 'string'"; Start and End
// delimit the offending token, End exclusive.
type CompileError struct {
	Message    string
	Start, End Position
}

// Error returns the message and location exactly as IoT Hub prints them
// (and without a "route:" prefix, so that the text matches the service's):
// "Syntax error., Location <start>:1:5, <end>:1:6".
func (e *CompileError) Error() string {
	return fmt.Sprintf("%s, Location <start>:%d:%d, <end>:%d:%d",
		e.Message, e.Start.Line, e.Start.Column, e.End.Line, e.End.Column)
}

// A Condition is a compiled routing query. It is immutable and safe for
// concurrent use by many goroutines.
type Condition struct {
	src  string
	fn   evalFn
	envs sync.Pool // of *env
}

// Compile compiles a routing query (see the package documentation for the
// language). On failure the error is a *CompileError. The empty condition
// compiles and evaluates to undefined; a route with an empty condition
// matches everything because [Table] treats it as true.
func Compile(condition string) (*Condition, error) {
	if len(condition) > MaxConditionLength {
		return nil, &CompileError{
			Message: fmt.Sprintf("Syntax error: condition longer than %d bytes", MaxConditionLength),
			Start:   Position{1, 1}, End: Position{1, 2},
		}
	}
	p := &parser{src: condition, lx: newLexer(condition)}
	n, err := p.parse()
	if err != nil {
		return nil, err
	}
	return &Condition{src: condition, fn: n.fn}, nil
}

// String returns the condition's source text.
func (c *Condition) String() string { return c.src }

// Eval evaluates the condition against m and the sender's twin (a JSON
// document with tags and properties; nil when there is none) and returns
// the value of the whole expression. Eval keeps neither m nor twin.
func (c *Condition) Eval(m *hubkit.Message, twin []byte) Value {
	e, _ := c.envs.Get().(*env)
	if e == nil {
		e = new(env)
	}
	e.reset(m, twin)
	v := c.fn(e)
	*e = env{}
	c.envs.Put(e)
	return v
}

// Match reports whether the condition is exactly true for m, the only
// result that routes a message: false, null and undefined do not.
func (c *Condition) Match(m *hubkit.Message, twin []byte) bool {
	return c.Eval(m, twin).Truth() == True
}

// evalFn computes one node of a compiled condition.
type evalFn func(*env) Value

// typ is a static type. tDyn is the type of $body and $twin references,
// whose runtime type is only known per message.
type typ uint8

const (
	tUndef typ = iota
	tNull
	tBool
	tNum
	tStr
	tDyn
	tAny // in function signatures only: any argument
)

var typNames = [...]string{"undefined", "null", "bool", "number", "string", "unknown", "any"}

func (t typ) String() string { return typNames[t] }

// A node is a compiled, type-checked expression.
type node struct {
	t  typ
	fn evalFn
}

func constant(t typ, v Value) node { return node{t, func(*env) Value { return v }} }

// parser is a recursive-descent parser that type-checks and compiles in
// one pass. A syntax error stops it (bail); of the type errors, the first
// is kept and parsing goes on, so that a later syntax error still wins as
// it does in IoT Hub, whose parser runs before its type checker.
type parser struct {
	src     string
	lx      *lexer
	tok     token
	depth   int // nesting of parentheses, calls and unary operators
	open    int // parentheses and calls not yet closed
	typeErr *CompileError
}

type bail struct{ err *CompileError }

func (p *parser) parse() (n node, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bail)
			if !ok {
				panic(r)
			}
			err = b.err
		}
	}()
	p.next()
	if p.tok.kind == tEOF {
		return constant(tUndef, undef), nil
	}
	n = p.expr()
	if p.tok.kind != tEOF {
		p.syntaxErr(p.tok, "")
	}
	if p.typeErr != nil {
		return n, p.typeErr
	}
	return n, nil
}

func (p *parser) next() token {
	t := p.tok
	p.tok = p.lx.next()
	return t
}

func (p *parser) text(t token) string { return p.src[t.off:t.end] }

// errAt builds an error at token t the way IoT Hub computes ranges: the
// end column is the token's end, but at most one past the end of its line.
func (p *parser) errAt(t token, msg string) *CompileError {
	line := p.src
	for i := 1; i < t.line; i++ {
		_, line, _ = strings.Cut(line, "\n")
	}
	if l, _, ended := strings.Cut(line, "\n"); ended {
		line = strings.TrimSuffix(l, "\r") // lines end at "\n" or "\r\n"
	}
	end := min(t.col+t.width, width16(line)+2)
	return &CompileError{Message: msg, Start: Position{t.line, t.col}, End: Position{t.line, end}}
}

// syntaxErr stops the parse with a syntax error at t. An unknown
// character or an unterminated string gets its own message wherever it
// appears, a ')' that closes nothing too.
func (p *parser) syntaxErr(t token, msg string) {
	switch {
	case t.kind == tUnknown:
		msg = "Syntax error: invalid symbol '" + p.text(t) + "'"
	case t.kind == tUnterminated:
		msg = "Syntax error: unterminated string"
	case msg != "":
		msg = "Syntax error: " + msg
	case t.kind == tRParen && p.open == 0:
		msg = "Syntax error: unmatched closing ')'"
	default:
		msg = "Syntax error."
	}
	panic(bail{p.errAt(t, msg)})
}

func (p *parser) typeError(t token, msg string) {
	if p.typeErr == nil {
		p.typeErr = p.errAt(t, msg)
	}
}

func (p *parser) nest(t token) {
	if p.depth++; p.depth > MaxNesting {
		p.syntaxErr(t, "expression nested too deeply")
	}
}

// binary parses a left-associative chain of operators in ops over
// operands parsed by sub, combining them with build.
func (p *parser) binary(sub func() node, build func(op token, l, r node) node, ops ...tokKind) node {
	l := sub()
	for contains(ops, p.tok.kind) {
		op := p.next()
		l = build(op, l, sub())
	}
	return l
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (p *parser) expr() node { return p.binary(p.or, p.coalesce, tCoalesce) }
func (p *parser) or() node   { return p.binary(p.and, p.logic, tOr) }
func (p *parser) and() node  { return p.binary(p.eq, p.logic, tAnd) }
func (p *parser) eq() node   { return p.binary(p.cmp, p.compare, tEq, tNe1, tNe2) }
func (p *parser) cmp() node  { return p.binary(p.add, p.compare, tLt, tLe, tGt, tGe) }
func (p *parser) add() node  { return p.binary(p.mul, p.arith, tPlus, tMinus, tConcat) }
func (p *parser) mul() node  { return p.binary(p.unary, p.arith, tMul, tDiv, tMod) }

func (p *parser) unary() node {
	switch p.tok.kind {
	case tMinus, tNot:
		op := p.next()
		p.nest(op)
		x := p.unary()
		p.depth--
		if op.kind == tMinus {
			return p.negate(op, x)
		}
		return p.not(op, x)
	}
	return p.primary()
}

func (p *parser) primary() node {
	t := p.tok
	switch t.kind {
	case tString:
		p.next()
		return constant(tStr, str(unescape(p.text(t)[1:t.end-t.off-1])))
	case tInt, tReal:
		p.next()
		f, err := strconv.ParseFloat(p.text(t), 64)
		if err != nil && !math.IsInf(f, 0) {
			return constant(tUndef, undef) // e.g. "e5": a real token .NET cannot parse
		}
		return constant(tNum, num(f))
	case tHex:
		p.next()
		u, err := strconv.ParseUint(p.text(t)[2:], 16, 64)
		if err != nil {
			return constant(tUndef, undef)
		}
		return constant(tNum, num(float64(int64(u)))) // .NET parses 16 hex digits as a signed long
	case tTrue, tFalse:
		p.next()
		return constant(tBool, boolVal[b2i(t.kind == tTrue)])
	case tNullKw:
		p.next()
		return constant(tNull, null)
	case tUndefined:
		p.next()
		return constant(tUndef, undef)
	case tSysProp:
		p.next()
		return p.sysRef(t, false)
	case tLBrace:
		p.next()
		st := p.tok
		if st.kind != tSysProp {
			p.syntaxErr(st, "")
		}
		p.next()
		if p.tok.kind != tRBrace {
			p.syntaxErr(p.tok, "")
		}
		p.next()
		return p.sysRef(st, true)
	case tIdent:
		p.next()
		if p.tok.kind == tLParen {
			return p.call(t)
		}
		name := p.text(t)
		return node{tStr, func(e *env) Value {
			v, _ := prop(e, name)
			return v
		}}
	case tLParen:
		p.next()
		p.nest(t)
		p.open++
		x := p.expr()
		p.depth--
		p.open--
		if p.tok.kind != tRParen {
			p.syntaxErr(t, "missing closing ')'")
		}
		p.next()
		return x
	}
	p.syntaxErr(t, "")
	return node{}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// unescape decodes a string literal's escapes as IoT Hub does: first every
// \uXXXX (or \UXXXX), then \' \" and \\, in two passes over UTF-16 text.
// The two passes are a faithful copy of a quirk: '\\u0041' reads as \A.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	u := utf16.Encode([]rune(s))
	out := u[:0:0]
	for i := 0; i < len(u); i++ {
		if u[i] == '\\' && i+5 < len(u) && (u[i+1] == 'u' || u[i+1] == 'U') &&
			isHex16(u[i+2]) && isHex16(u[i+3]) && isHex16(u[i+4]) && isHex16(u[i+5]) {
			v, _ := strconv.ParseUint(string(utf16.Decode(u[i+2:i+6])), 16, 16)
			out = append(out, uint16(v))
			i += 5
			continue
		}
		out = append(out, u[i])
	}
	u, out = out, nil
	for i := 0; i < len(u); i++ {
		if u[i] == '\\' && i+1 < len(u) && (u[i+1] == '\'' || u[i+1] == '"' || u[i+1] == '\\') {
			i++
		}
		out = append(out, u[i])
	}
	return string(utf16.Decode(out))
}

func isHex16(c uint16) bool { return c < utf8.RuneSelf && isHex(byte(c)) }

// sysRef compiles a $-token: $body.path, $twin.path or $name. Unless
// escaped ({$name}), an application property literally named like the
// token wins, as in IoT Hub.
func (p *parser) sysRef(t token, escaped bool) node {
	text := p.text(t)
	lower := strings.ToLower(text)
	shadow := !escaped && !strings.ContainsAny(text, "[]")
	for _, doc := range [...]string{"$body", "$twin"} {
		if lower != doc && !strings.HasPrefix(lower, doc+".") && !strings.HasPrefix(lower, doc+"[") {
			continue
		}
		path, err := parsePath(text[len(doc):])
		if err != "" {
			p.typeError(t, fmt.Sprintf("Invalid arguments to built-in function '%s': %s(string). Error: Error in %s query. %s", text, text, doc, err))
			return constant(tDyn, undef)
		}
		isTwin := doc == "$twin"
		return node{tDyn, func(e *env) Value {
			if shadow {
				if v, ok := prop(e, text); ok {
					return v
				}
			}
			var b []byte
			m := &e.bodyMemo
			if isTwin {
				b, m = e.twinJSON(), &e.twinMemo
			} else {
				b = e.bodyJSON()
			}
			if b == nil {
				return undef
			}
			return jsonValue(b, m.find(b, path, isTwin))
		}}
	}
	if strings.ContainsAny(text, "[]") {
		return constant(tUndef, undef) // no property name has brackets
	}
	sys := sysProp(text[1:])
	return node{tStr, func(e *env) Value {
		if shadow {
			if v, ok := prop(e, text); ok {
				return v
			}
		}
		if sys != nil {
			if s, ok := sys(e); ok {
				return str(s)
			}
		}
		return undef
	}}
}

// parsePath parses ".name[index].name..." after $body or $twin. It
// returns a description of the problem when the path is invalid.
func parsePath(s string) ([]seg, string) {
	if s == "" {
		return nil, "The query path is empty."
	}
	var path []seg
	for rest := s; rest != ""; {
		if rest[0] != '.' {
			return nil, fmt.Sprintf("Unexpected '%c' in path '%s'.", rest[0], s)
		}
		rest = rest[1:]
		n := span(rest, func(c byte) bool { return identChar(c) && c != '.' })
		if n == 0 {
			return nil, fmt.Sprintf("Missing member name in path '%s'.", s)
		}
		sg := seg{name: rest[:n], index: -1}
		rest = rest[n:]
		if rest != "" && rest[0] == '[' {
			d := span(rest[1:], isDigit)
			if d == 0 || len(rest) < d+2 || rest[d+1] != ']' {
				return nil, fmt.Sprintf("Invalid array index in path '%s'.", s)
			}
			i, err := strconv.Atoi(rest[1 : d+1])
			if err != nil {
				return nil, fmt.Sprintf("Invalid array index in path '%s'.", s)
			}
			sg.index = i
			rest = rest[d+2:]
		}
		path = append(path, sg)
	}
	return path, ""
}

func operandErr(op string, l, r, want typ) string {
	return fmt.Sprintf("Invalid operands to binary operator '%s': have '%s' and '%s', expected '%s' and '%s'", op, l, r, want, want)
}

func isNum(t typ) bool   { return t == tNum || t == tDyn }
func isStr(t typ) bool   { return t == tStr || t == tDyn }
func isLogic(t typ) bool { return t == tBool || t == tNull || t == tUndef || t == tDyn }

// compatible reports whether two static types may be compared or
// coalesced: equal types, or a dynamic one against anything but the
// undefined literal.
func compatible(a, b typ) bool {
	return a == b || a == tDyn && b != tUndef || b == tDyn && a != tUndef
}

func (p *parser) arith(op token, l, r node) node {
	if op.kind == tConcat {
		if !isStr(l.t) || !isStr(r.t) {
			p.typeError(op, operandErr(p.text(op), l.t, r.t, tStr))
			return constant(tStr, undef)
		}
		lf, rf := l.fn, r.fn
		return node{tStr, func(e *env) Value {
			a, ok := catString(lf(e))
			if !ok {
				return undef
			}
			b, ok := catString(rf(e))
			if !ok {
				return undef
			}
			return str(a + b)
		}}
	}
	if !isNum(l.t) || !isNum(r.t) {
		p.typeError(op, operandErr(p.text(op), l.t, r.t, tNum))
		return constant(tNum, undef)
	}
	var f func(a, b float64) float64
	switch op.kind {
	case tPlus:
		f = func(a, b float64) float64 { return a + b }
	case tMinus:
		f = func(a, b float64) float64 { return a - b }
	case tMul:
		f = func(a, b float64) float64 { return a * b }
	case tDiv:
		f = func(a, b float64) float64 { return a / b }
	default:
		f = math.Mod
	}
	lf, rf := l.fn, r.fn
	return node{tNum, func(e *env) Value {
		a := lf(e)
		if a.Kind != Number {
			return undef
		}
		b := rf(e)
		if b.Kind != Number {
			return undef
		}
		return num(f(a.Num, b.Num))
	}}
}

// catString reads an operand of || and concat: a null-valued property
// counts as the empty string.
func catString(v Value) (string, bool) {
	switch v.Kind {
	case String:
		return v.Str, true
	case Null:
		return "", true
	}
	return "", false
}

func (p *parser) compare(op token, l, r node) node {
	if !compatible(l.t, r.t) {
		p.typeError(op, operandErr(p.text(op), l.t, r.t, l.t))
		return constant(tBool, undef)
	}
	var want func(c int) bool
	switch op.kind {
	case tEq:
		want = func(c int) bool { return c == 0 }
	case tNe1, tNe2:
		want = func(c int) bool { return c != 0 }
	case tLt:
		want = func(c int) bool { return c < 0 }
	case tLe:
		want = func(c int) bool { return c <= 0 }
	case tGt:
		want = func(c int) bool { return c > 0 }
	default:
		want = func(c int) bool { return c >= 0 }
	}
	lf, rf := l.fn, r.fn
	return node{tBool, func(e *env) Value {
		c, ok := compareValues(lf(e), rf(e))
		if !ok {
			return undef
		}
		return boolVal[b2i(want(c))]
	}}
}

// compareValues orders two values: naturally within a type, and by the
// type rank bool < number < string < null across types (IoT Hub's
// ordering for dynamic values). It fails when either is undefined.
func compareValues(a, b Value) (int, bool) {
	if a.Kind == Undefined || b.Kind == Undefined {
		return 0, false
	}
	if a.Kind != b.Kind {
		return rank(a.Kind) - rank(b.Kind), true
	}
	switch a.Kind {
	case Bool:
		return b2i(a.Bool) - b2i(b.Bool), true
	case Number:
		switch {
		case a.Num < b.Num:
			return -1, true
		case a.Num > b.Num:
			return 1, true
		}
		return 0, true
	case String:
		return strings.Compare(a.Str, b.Str), true
	}
	return 0, true // null = null
}

func rank(k Kind) int {
	switch k {
	case Bool:
		return 0
	case Number:
		return 1
	case String:
		return 2
	}
	return 3
}

// logic compiles AND and OR with IoT Hub's three-valued logic. A null
// operand counts as false; AND with a null-typed operand, and OR of two,
// are null-typed and evaluate to null, as in IoT Hub.
func (p *parser) logic(op token, l, r node) node {
	if !isLogic(l.t) || !isLogic(r.t) {
		p.typeError(op, operandErr(p.text(op), l.t, r.t, tBool))
		return constant(tBool, undef)
	}
	isAnd := op.kind == tAnd
	if isAnd && (l.t == tNull || r.t == tNull) || !isAnd && l.t == tNull && r.t == tNull {
		return constant(tNull, null)
	}
	lf, rf := l.fn, r.fn
	if isAnd {
		return node{tBool, func(e *env) Value {
			a := toTruth(lf(e))
			if a == False {
				return vfalse
			}
			return truthValue(min(a, toTruth(rf(e))))
		}}
	}
	return node{tBool, func(e *env) Value {
		a := toTruth(lf(e))
		if a == True {
			return vtrue
		}
		return truthValue(max(a, toTruth(rf(e))))
	}}
}

func (p *parser) not(op token, x node) node {
	if x.t != tBool && x.t != tNull && x.t != tDyn {
		p.typeError(op, fmt.Sprintf("Invalid operands to unary operator '%s': have '%s', expected 'bool'", p.text(op), x.t))
		return constant(tBool, undef)
	}
	f := x.fn
	return node{tBool, func(e *env) Value { return truthValue(-toTruth(f(e))) }}
}

func (p *parser) negate(op token, x node) node {
	if !isNum(x.t) {
		p.typeError(op, fmt.Sprintf("Invalid operands to unary operator '%s': have '%s', expected 'number'", p.text(op), x.t))
		return constant(tNum, undef)
	}
	f := x.fn
	return node{tNum, func(e *env) Value {
		v := f(e)
		if v.Kind != Number {
			return undef
		}
		return num(-v.Num)
	}}
}

func (p *parser) coalesce(op token, l, r node) node {
	if !compatible(l.t, r.t) {
		p.typeError(op, operandErr(p.text(op), l.t, r.t, l.t))
		return constant(l.t, undef)
	}
	if l.t == tUndef {
		return r
	}
	t := l.t
	if r.t != t {
		t = tDyn
	}
	lf, rf := l.fn, r.fn
	return node{t, func(e *env) Value {
		if v := lf(e); v.Kind != Undefined {
			return v
		}
		return rf(e)
	}}
}

// call parses the arguments of the function named by t and compiles the call.
func (p *parser) call(t token) node {
	open := p.next()
	p.nest(open)
	p.open++
	var args []node
	if p.tok.kind != tRParen {
		args = append(args, p.expr())
		for p.tok.kind == tComma {
			p.next()
			args = append(args, p.expr())
		}
	}
	if p.tok.kind != tRParen {
		p.syntaxErr(open, "missing closing ')'")
	}
	p.next()
	p.depth--
	p.open--
	name := p.text(t)
	sigs := builtin(strings.ToLower(name))
	if sigs == nil {
		p.typeError(t, fmt.Sprintf("Invalid built-in function '%s'", name))
		return constant(tUndef, undef)
	}
	for _, s := range sigs {
		if s.accepts(args) {
			return node{s.result, s.compile(args)}
		}
	}
	types := make([]string, len(args))
	for i, a := range args {
		types[i] = a.t.String()
	}
	p.typeError(t, fmt.Sprintf("Invalid arguments to built-in function '%s': %s(%s)", name, name, strings.Join(types, ", ")))
	return constant(sigs[0].result, undef)
}
