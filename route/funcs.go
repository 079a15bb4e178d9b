package route

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A sig is one signature of a built-in function. Exactly one of f1, f2,
// f3 and fv is set, matching the arity; fv takes a variadic list of at
// least len(args) arguments, all of type args[0].
type sig struct {
	args   []typ
	result typ
	f1     func(Value) Value
	f2     func(Value, Value) Value
	f3     func(Value, Value, Value) Value
	fv     func([]Value) Value
}

// accepts reports whether arguments of these static types fit s: a
// dynamic argument fits any type and is checked when it is evaluated.
func (s sig) accepts(args []node) bool {
	if s.fv == nil && len(args) != len(s.args) || s.fv != nil && len(args) < len(s.args) {
		return false
	}
	for i, a := range args {
		want := s.args[min(i, len(s.args)-1)]
		if want != tAny && a.t != want && a.t != tDyn {
			return false
		}
	}
	return true
}

func (s sig) compile(args []node) evalFn {
	switch {
	case s.f1 != nil:
		a, f := args[0].fn, s.f1
		return func(e *env) Value { return f(a(e)) }
	case s.f2 != nil:
		a, b, f := args[0].fn, args[1].fn, s.f2
		return func(e *env) Value { return f(a(e), b(e)) }
	case s.f3 != nil:
		a, b, c, f := args[0].fn, args[1].fn, args[2].fn, s.f3
		return func(e *env) Value { return f(a(e), b(e), c(e)) }
	}
	fns := make([]evalFn, len(args))
	for i, a := range args {
		fns[i] = a.fn
	}
	f := s.fv
	return func(e *env) Value {
		vs := make([]Value, len(fns))
		for i, fn := range fns {
			vs[i] = fn(e)
		}
		return f(vs)
	}
}

// builtin returns the signatures of the function named name (lower case),
// or nil when there is no such function.
func builtin(name string) []sig {
	math1 := func(f func(float64) float64) []sig {
		return []sig{{args: []typ{tNum}, result: tNum, f1: func(v Value) Value {
			if v.Kind != Number {
				return undef
			}
			return num(f(v.Num))
		}}}
	}
	is := func(f func(Value) bool) []sig {
		return []sig{{args: []typ{tAny}, result: tBool, f1: func(v Value) Value { return boolVal[b2i(f(v))] }}}
	}
	str1 := func(result typ, f func(string) Value) []sig {
		return []sig{{args: []typ{tStr}, result: result, f1: func(v Value) Value {
			if v.Kind != String {
				return undef
			}
			return f(v.Str)
		}}}
	}
	str2 := func(result typ, f func(s, t string) Value) []sig {
		return []sig{{args: []typ{tStr, tStr}, result: result, f2: func(a, b Value) Value {
			if a.Kind != String || b.Kind != String {
				return undef
			}
			return f(a.Str, b.Str)
		}}}
	}
	switch name {
	case "abs":
		return math1(math.Abs)
	case "exp":
		return math1(math.Exp)
	case "square":
		return math1(func(x float64) float64 { return x * x })
	case "ceiling":
		return math1(math.Ceil)
	case "floor":
		return math1(math.Floor)
	case "sqrt":
		return math1(math.Sqrt) // NaN for x < 0, hence undefined
	case "sign":
		return math1(func(x float64) float64 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return 0
		})
	case "power":
		return []sig{{args: []typ{tNum, tNum}, result: tNum, f2: func(a, b Value) Value {
			if a.Kind != Number || b.Kind != Number {
				return undef
			}
			return num(math.Pow(a.Num, b.Num))
		}}}
	case "as_number":
		f := func(v Value) Value {
			switch v.Kind {
			case Number:
				return v
			case String:
				return parseNumber(v.Str)
			}
			return undef
		}
		return []sig{{args: []typ{tStr}, result: tNum, f1: f}, {args: []typ{tNum}, result: tNum, f1: f}}
	case "is_bool":
		return is(func(v Value) bool { return v.Kind == Bool })
	case "is_number":
		return is(func(v Value) bool { return v.Kind == Number && !math.IsInf(v.Num, 0) })
	case "is_string":
		return is(func(v Value) bool { return v.Kind == String })
	case "is_null":
		return is(func(v Value) bool { return v.Kind == Null })
	case "is_defined":
		return is(func(v Value) bool { return v.Kind != Undefined })
	case "is_array":
		return is(func(v Value) bool { return v.node == '[' })
	case "is_object":
		return is(func(v Value) bool { return v.node == '{' })
	case "is_primitive":
		return is(func(v Value) bool { return v.Kind != Undefined })
	case "concat":
		return []sig{{args: []typ{tStr, tStr}, result: tStr, fv: func(vs []Value) Value {
			var b strings.Builder
			for _, v := range vs {
				s, ok := catString(v)
				if !ok {
					return undef
				}
				b.WriteString(s)
			}
			return str(b.String())
		}}}
	case "length":
		return str1(tNum, func(s string) Value { return num(float64(utf8.RuneCountInString(s))) })
	case "lower":
		return str1(tStr, func(s string) Value { return str(strings.ToLower(s)) })
	case "upper":
		return str1(tStr, func(s string) Value { return str(strings.ToUpper(s)) })
	case "index_of":
		return str2(tNum, func(s, t string) Value {
			i := strings.Index(s, t)
			if i > 0 {
				i = utf8.RuneCountInString(s[:i])
			}
			return num(float64(i))
		})
	case "starts_with":
		return str2(tBool, func(s, t string) Value { return boolVal[b2i(strings.HasPrefix(s, t))] })
	case "ends_with":
		return str2(tBool, func(s, t string) Value { return boolVal[b2i(strings.HasSuffix(s, t))] })
	case "contains":
		return str2(tBool, func(s, t string) Value { return boolVal[b2i(strings.Contains(s, t))] })
	case "substring":
		return []sig{
			{args: []typ{tStr, tNum}, result: tStr, f2: func(s, start Value) Value {
				return substring(s, start, Value{Kind: Number, Num: math.Inf(1)})
			}},
			{args: []typ{tStr, tNum, tNum}, result: tStr, f3: substring},
		}
	}
	return nil
}

// substring is substring(s, start, length); an infinite length stands for
// the two-argument form, where start may equal the length of s.
func substring(s, start, length Value) Value {
	if s.Kind != String || start.Kind != Number || length.Kind != Number {
		return undef
	}
	rs := []rune(s.Str)
	n := float64(len(rs))
	st := math.Trunc(start.Num)
	if math.IsInf(length.Num, 1) {
		if st < 0 || st > n {
			return undef
		}
		return str(string(rs[int(st):]))
	}
	ln := math.Trunc(length.Num)
	if st < 0 || st >= n || ln < 0 || ln > n-st {
		return undef
	}
	return str(string(rs[int(st) : int(st)+int(ln)]))
}

// parseNumber parses a string as .NET's invariant-culture double parsing
// does: surrounding white space, an optional sign, digits with an optional
// decimal point, an optional exponent, or Infinity. Out of range is ±∞.
func parseNumber(s string) Value {
	s = strings.Trim(s, " \t\n\v\f\r")
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return undef
	}
	if strings.EqualFold(body, "infinity") {
		f, _ := strconv.ParseFloat(s, 64)
		return num(f)
	}
	mant, exp, hasExp := strings.Cut(strings.ToLower(body), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	if whole+frac == "" || span(whole, isDigit) != len(whole) || span(frac, isDigit) != len(frac) {
		return undef
	}
	if hasExp {
		d := strings.TrimLeft(exp, "+-")
		if len(exp)-len(d) > 1 || d == "" || span(d, isDigit) != len(d) {
			return undef
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return undef
	}
	return num(f)
}
