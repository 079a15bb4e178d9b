package route

import (
	"math"
	"strconv"
)

// A Kind is the runtime type of a [Value].
type Kind uint8

// The kinds of values a condition produces. The zero Kind is Undefined,
// IoT Hub's value for a missing property or a failed operation.
const (
	Undefined Kind = iota
	Null
	Bool
	Number
	String
)

var kindNames = [...]string{"undefined", "null", "bool", "number", "string"}

// String returns the kind's name as the query language spells it.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// A Value is what a condition, or any part of one, evaluates to. Only the
// field that matches Kind is meaningful. A Value never holds NaN: a
// computation that would produce NaN yields Undefined instead.
type Value struct {
	Kind Kind    // the runtime type
	Bool bool    // the value of a Bool
	Num  float64 // the value of a Number, possibly ±Inf
	Str  string  // the value of a String

	// node is the first byte of the JSON value a $body or $twin path
	// found ('{' or '[' for the undefined that objects and arrays map
	// to), or 0. It lets is_object and is_array see past the mapping.
	node byte
}

// A Truth is the three-valued result of a route condition.
type Truth int8

// The three results of a route condition. Only True routes a message.
const (
	False Truth = iota - 1
	UndefinedTruth
	True
)

// String returns "true", "false" or "undefined".
func (t Truth) String() string {
	switch t {
	case True:
		return "true"
	case False:
		return "false"
	}
	return "undefined"
}

// Truth converts v the way IoT Hub reads a whole condition: a bool is
// itself, null is false, and everything else is undefined.
func (v Value) Truth() Truth {
	switch v.Kind {
	case Bool:
		if v.Bool {
			return True
		}
		return False
	case Null:
		return False
	}
	return UndefinedTruth
}

// String renders v as a literal of the query language would: strings
// quoted, numbers in the shortest form that reads back exactly.
func (v Value) String() string {
	switch v.Kind {
	case Null:
		return "null"
	case Bool:
		return strconv.FormatBool(v.Bool)
	case Number:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case String:
		return strconv.Quote(v.Str)
	}
	return "undefined"
}

var (
	undef   = Value{}
	null    = Value{Kind: Null}
	vtrue   = Value{Kind: Bool, Bool: true}
	vfalse  = Value{Kind: Bool}
	emptyV  = Value{Kind: String}
	truths  = [3]Value{vfalse, undef, vtrue}
	boolVal = [2]Value{vfalse, vtrue}
)

func num(f float64) Value {
	if math.IsNaN(f) {
		return undef
	}
	return Value{Kind: Number, Num: f}
}

func str(s string) Value { return Value{Kind: String, Str: s} }

func truthValue(t Truth) Value { return truths[t+1] }

// toTruth reads an operand of AND, OR and NOT: null counts as false, a
// value that is not a bool as undefined (as Edge's Bool conversions do).
func toTruth(v Value) Truth {
	if v.Kind == Number || v.Kind == String {
		return UndefinedTruth
	}
	return v.Truth()
}
