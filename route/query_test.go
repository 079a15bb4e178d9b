package route_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/route"
)

// The message M and twin of the worked examples (spec routing-query.md §7).
const (
	weatherBody = `{"Weather":{"Temperature":50,"IsEnabled":true,"NullValue":null,"Location":{"City":"Redmond","State":"WA"},"PrevTemperatures":[20,30,40],"HistoricalData":[{"Month":"Feb","Temperature":40},{"Month":"Jan","Temperature":30}]}}`
	weatherTwin = `{"tags":{"deploymentLocation":{"building":"43","floor":"1"}},"properties":{"reported":{"batteryLevel":55}}}`
)

func messageM() *hubkit.Message {
	return &hubkit.Message{
		Body: []byte(weatherBody),
		System: hubkit.SystemProperties{
			MessageID:          "system",
			ContentType:        "application/json",
			ContentEncoding:    "utf-8",
			ConnectionDeviceID: "thermostat1",
			EnqueuedTime:       time.Date(2022, 6, 7, 10, 0, 0, 0, time.UTC),
		},
		Properties: hubkit.Properties{
			{Name: "processingPath", Value: "hot"},
			{Name: "severity", Value: "3"},
			{Name: "$sys", Value: "app"},
			{Name: "$messageId", Value: "app"},
			{Name: "a+1", Value: "x"},
			{Name: "key!", Value: "v"},
			{Name: "x||y", Value: "z"},
			{Name: "nullp", Null: true},
			{Name: "empty", Value: ""},
		},
	}
}

// result renders what a condition gives: the value, or "error: " and the
// compile error text.
func result(cond string, m *hubkit.Message, twin []byte) string {
	c, err := route.Compile(cond)
	if err != nil {
		var ce *route.CompileError
		if !errors.As(err, &ce) {
			return "unexpected error type: " + err.Error()
		}
		return "error: " + err.Error()
	}
	return c.Eval(m, twin).String()
}

type queryCase struct {
	cond, want string
}

func runQueryCases(t *testing.T, m func() *hubkit.Message, twin string, cases []queryCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.cond, func(t *testing.T) {
			var tw []byte
			if twin != "" {
				tw = []byte(twin)
			}
			if got := result(tc.cond, m(), tw); got != tc.want {
				t.Errorf("%s\n got: %s\nwant: %s", tc.cond, got, tc.want)
			}
		})
	}
}

// TestWorkedExamples runs every example of routing-query.md §7 with its
// expected result.
func TestWorkedExamples(t *testing.T) {
	runQueryCases(t, messageM, weatherTwin, []queryCase{
		{`processingPath = 'hot'`, "true"},  // 1
		{`PROCESSINGPATH = 'hot'`, "true"},  // 2
		{`processingPath = 'HOT'`, "false"}, // 3
		{`severity > 2`, "error: Invalid operands to binary operator '>': have 'string' and 'number', expected 'string' and 'string', Location <start>:1:10, <end>:1:11"}, // 4
		{`as_number(severity) <= 3`, "true"},                                                     // 5
		{`$contentEncoding = 'utf-8' AND processingPath = 'hot'`, "true"},                        // 6
		{`$sys = 'app'`, "true"},                                                                 // 7
		{`{$sys} = 'system'`, "undefined"},                                                       // 8: hubkit has no system property "sys"
		{`{$messageId} = 'system'`, "true"},                                                      // 8, with a system property hubkit has
		{`$body.Weather.Temperature = 50 AND $body.Weather.IsEnabled`, "true"},                   // 9
		{`$body.Weather.HistoricalData[0].Month = 'Feb'`, "true"},                                // 10
		{`length($body.Weather.Location.State) = 2`, "true"},                                     // 11
		{`$body.Weather.Temperature = '50'`, "false"},                                            // 12
		{`$body.Weather.PrevTemperatures[1] * $body.Weather.PrevTemperatures[2] = 1200`, "true"}, // 13
		{`$body.Weather.Missing = 1`, "undefined"},                                               // 14
		{`is_defined($body.Weather.Missing)`, "false"},                                           // 15
		{`is_null($body.Weather.NullValue)`, "true"},                                             // 16
		{`$body.Weather.Location = null`, "undefined"},                                           // 17
		{`NOT processingPath = 'hot'`, "error: Invalid operands to unary operator 'NOT': have 'string', expected 'bool', Location <start>:1:1, <end>:1:4"}, // 18
		{`NOT (processingPath = 'hot')`, "false"}, // 19
		{`missing = 'x' OR true`, "true"},         // 20
		{`missing = 'x' AND false`, "false"},      // 21
		{`NOT (missing = 'x')`, "undefined"},      // 22
		{`(missing ?? 'cold') = 'cold'`, "true"},  // 23
		{`missing ?? 'cold' = 'cold'`, "error: Invalid operands to binary operator '??': have 'string' and 'bool', expected 'string' and 'string', Location <start>:1:9, <end>:1:11"}, // 24
		{`as_number(severity)+1 = 4`, "error: Syntax error., Location <start>:1:20, <end>:1:22"},                                                                                      // 25
		{`as_number(severity) + 1 = 4`, "true"},                                                             // 26
		{`$enqueuedTime > '2022-06-06T22:56:06Z'`, "true"},                                                  // 27
		{`$twin.properties.reported.batteryLevel > 50`, "true"},                                             // 28
		{`$twin.tags.deploymentLocation.floor = 1`, "false"},                                                // 29
		{`concat($body.Weather.Location.City, ', ', $body.Weather.Location.State) = 'Redmond, WA'`, "true"}, // 30
		{`substring('abc', 3) = ''`, "true"},                                                                // 31
		{`substring('abc', 4)`, "undefined"},                                                                // 31
		{`3 % 0 ?? 12.34 = 12.34`, "error: Invalid operands to binary operator '??': have 'number' and 'bool', expected 'number' and 'number', Location <start>:1:7, <end>:1:9"}, // 32
		{`(3 % 0 ?? 12.34) = 12.34`, "true"}, // 32
		{`TRUE`, "undefined"},                // 33: an application property, missing in M
		{`is_defined(TRUE)`, "false"},
		{`null`, "null"},     // 34: reads as false, see TestTruth
		{`not null`, "true"}, // 34
	})
	// 35: without a content type the body cannot be queried.
	noType := func() *hubkit.Message {
		m := messageM()
		m.System.ContentType = ""
		return m
	}
	runQueryCases(t, noType, "", []queryCase{
		{`$body.Weather.Temperature = 50 AND $body.Weather.IsEnabled`, "undefined"},
	})
}

func TestTruth(t *testing.T) {
	for _, tc := range []struct {
		cond string
		want route.Truth
	}{
		{"true", route.True}, {"false", route.False}, {"null", route.False}, {"undefined", route.UndefinedTruth},
		{"3", route.UndefinedTruth}, {"'a'", route.UndefinedTruth}, {"", route.True}, {"  ", route.True},
		{"missing = 'x'", route.UndefinedTruth}, {"TRUE", route.UndefinedTruth},
	} {
		got, err := route.DryRun(tc.cond, messageM(), nil)
		if err != nil || got != tc.want {
			t.Errorf("DryRun(%q) = %v, %v; want %v", tc.cond, got, err, tc.want)
		}
	}
	c, err := route.Compile("")
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Eval(messageM(), nil); v.Kind != route.Undefined {
		t.Errorf("compiled empty condition = %v, want undefined (only routes read empty as true)", v)
	}
	if _, err := route.DryRun("a =", messageM(), nil); err == nil {
		t.Error("DryRun of a broken condition: no error")
	}
}

func TestLexing(t *testing.T) {
	runQueryCases(t, messageM, "", []queryCase{
		{`a+1 = 'x'`, "true"},
		{`key!='v'`, "true"},
		{`x||y = 'z'`, "true"},
		{`TRUE = 't'`, "undefined"},
		{`x -1`, "error: Syntax error., Location <start>:1:3, <end>:1:5"},
		{`1 -1`, "error: Syntax error., Location <start>:1:3, <end>:1:5"},
		{`1 - 1 = 0`, "true"},
		{`-1 = 0 - 1`, "true"},
		{`- 1 = -1`, "true"},
		{`1. = 1`, "error: Invalid operands to binary operator '=': have 'string' and 'number', expected 'string' and 'string', Location <start>:1:4, <end>:1:5"},
		{`.5 = 0.5`, "true"},
		{`-.5 = -0.5`, "true"},
		{`1e3 = 1000`, "true"},
		{`1.5E-1 = 0.15`, "true"},
		{`e5 = 5`, "error: Invalid operands to binary operator '=': have 'undefined' and 'number', expected 'undefined' and 'undefined', Location <start>:1:4, <end>:1:5"},
		{`is_defined(e5)`, "false"},
		{`0x1F = 31`, "true"},
		{`0XfF = 255`, "true"},
		{`0xFFFFFFFFFFFFFFFF = -1`, "true"},
		{`is_defined(0x10000000000000000)`, "false"},
		{`10e1000 > 1`, "true"},
		{`is_number(10e1000)`, "false"},
		{`'a' = "a"`, "true"},
		{`'it\'s' = "it's"`, "true"},
		{`"say \"hi\"" = 'say "hi"'`, "true"},
		{`'\u0041' = 'A'`, "true"},
		{`'\uD83D\uDE00' = '😀'`, "true"},
		{`length('a\\b')`, "3"},
		{`'a\nb'`, "error: Syntax error: unterminated string, Location <start>:1:1, <end>:1:3"},
		{`'abc`, "error: Syntax error: unterminated string, Location <start>:1:1, <end>:1:5"},
		{`"abc' = 'abc`, "error: Syntax error: unterminated string, Location <start>:1:1, <end>:1:13"},
		{`/* comment */ true`, "true"},
		{`true /* open`, "error: Syntax error., Location <start>:1:7, <end>:1:8"},
		{`a @ b`, "error: Syntax error: invalid symbol '@', Location <start>:1:3, <end>:1:4"},
		{`a ; b`, "error: Syntax error: invalid symbol ';', Location <start>:1:3, <end>:1:4"},
		{`a : b`, "error: Syntax error: invalid symbol ':', Location <start>:1:3, <end>:1:4"},
		{`? = 1`, "error: Syntax error: invalid symbol '?', Location <start>:1:1, <end>:1:2"},
		{"a = 'b'\n  AND @", "error: Syntax error: invalid symbol '@', Location <start>:2:7, <end>:2:8"},
		{`[a] = 'x'`, "error: Syntax error., Location <start>:1:1, <end>:1:4"},
		{`and = 'x'`, "error: Syntax error., Location <start>:1:1, <end>:1:4"},
		{`andx = 'y'`, "undefined"},
		{`from = 'x'`, "error: Syntax error., Location <start>:1:1, <end>:1:5"},
		{`NoT true`, "false"},
		{`true aNd false`, "false"},
		{`false Or true`, "true"},
		{`true and TRUE`, "error: Invalid operands to binary operator 'and': have 'bool' and 'string', expected 'bool' and 'bool', Location <start>:1:6, <end>:1:9"},
		{`trueish = 'x'`, "undefined"},
		{`'a''b'`, "undefined"}, // one identifier: longer than the string 'a'
		{`'a' 'b'`, "error: Syntax error., Location <start>:1:5, <end>:1:8"},
		{`'a'b = 'x'`, "undefined"},
		{`café = 'x'`, "undefined"},
		{`empty = ''`, "true"},
	})
}

func TestPositions(t *testing.T) {
	runQueryCases(t, messageM, "", []queryCase{
		{"true AND\n  'x'", "error: Invalid operands to binary operator 'AND': have 'bool' and 'string', expected 'bool' and 'bool', Location <start>:1:6, <end>:1:9"},
		{"a = 'b'\n  AND @", "error: Syntax error: invalid symbol '@', Location <start>:2:7, <end>:2:8"},
		{"true\r\nAND 1", "error: Invalid operands to binary operator 'AND': have 'bool' and 'number', expected 'bool' and 'bool', Location <start>:2:1, <end>:2:4"},
		{"a =", "error: Syntax error., Location <start>:1:4, <end>:1:5"},
		{"a = \n", "error: Syntax error., Location <start>:2:1, <end>:2:2"},
		{"(a = 'b'", "error: Syntax error: missing closing ')', Location <start>:1:1, <end>:1:2"},
		{"a = 'b')", "error: Syntax error: unmatched closing ')', Location <start>:1:8, <end>:1:9"},
		{"length('a'", "error: Syntax error: missing closing ')', Location <start>:1:7, <end>:1:8"},
		{"length('a', 'b' 'c')", "error: Syntax error: missing closing ')', Location <start>:1:7, <end>:1:8"},
		{"{$messageId = 'x'", "error: Syntax error., Location <start>:1:13, <end>:1:14"},
		{"{a} = 'x'", "error: Syntax error., Location <start>:1:2, <end>:1:3"},
		{"'😀' = 1", "error: Invalid operands to binary operator '=': have 'string' and 'number', expected 'string' and 'string', Location <start>:1:6, <end>:1:7"},
		{"foo(1)", "error: Invalid built-in function 'foo', Location <start>:1:1, <end>:1:4"},
		{"1 + 'a' = 2 AND @", "error: Syntax error: invalid symbol '@', Location <start>:1:17, <end>:1:18"},
		{"1 + 'a' = 'b' + 2", "error: Invalid operands to binary operator '+': have 'number' and 'string', expected 'number' and 'number', Location <start>:1:3, <end>:1:4"},
		{"", "undefined"},
		{"   \n ", "undefined"},
		{"/* only */", "undefined"},
		{")", "error: Syntax error: unmatched closing ')', Location <start>:1:1, <end>:1:2"},
		{"()", "error: Syntax error., Location <start>:1:2, <end>:1:3"},
		{"1 2", "error: Syntax error., Location <start>:1:3, <end>:1:4"},
		{"(a = )", "error: Syntax error., Location <start>:1:6, <end>:1:7"},
		{"length(1, )", "error: Syntax error., Location <start>:1:11, <end>:1:12"},
		{"(a = 'b')) AND true", "error: Syntax error: unmatched closing ')', Location <start>:1:10, <end>:1:11"},
	})
}

func TestTypesAndSemantics(t *testing.T) {
	runQueryCases(t, messageM, weatherTwin, []queryCase{
		{`1 + 'a'`, "error: Invalid operands to binary operator '+': have 'number' and 'string', expected 'number' and 'number', Location <start>:1:3, <end>:1:4"},
		{`'a' || 1`, "error: Invalid operands to binary operator '||': have 'string' and 'number', expected 'string' and 'string', Location <start>:1:5, <end>:1:7"},
		{`'a' || 'b' = 'ab'`, "true"},
		{`true + 1`, "error: Invalid operands to binary operator '+': have 'bool' and 'number', expected 'number' and 'number', Location <start>:1:6, <end>:1:7"},
		{`- 'a'`, "error: Invalid operands to unary operator '-': have 'string', expected 'number', Location <start>:1:1, <end>:1:2"},
		{`NOT 1`, "error: Invalid operands to unary operator 'NOT': have 'number', expected 'bool', Location <start>:1:1, <end>:1:4"},
		{`NOT undefined`, "error: Invalid operands to unary operator 'NOT': have 'undefined', expected 'bool', Location <start>:1:1, <end>:1:4"},
		{`NOT $body.Weather.IsEnabled`, "false"},
		{`NOT $body.Weather.NullValue`, "true"},
		{`NOT $body.Weather.Temperature`, "undefined"},
		{`undefined = undefined`, "undefined"},
		{`1 = undefined`, "error: Invalid operands to binary operator '=': have 'number' and 'undefined', expected 'number' and 'number', Location <start>:1:3, <end>:1:4"},
		{`null = null`, "true"},
		{`null <> null`, "false"},
		{`null = 1`, "error: Invalid operands to binary operator '=': have 'null' and 'number', expected 'null' and 'null', Location <start>:1:6, <end>:1:7"},
		{`null AND true`, "null"},
		{`false AND null`, "null"},
		{`null OR true`, "true"},
		{`null OR false`, "false"},
		{`null OR null`, "null"},
		{`undefined AND false`, "false"},
		{`undefined AND true`, "undefined"},
		{`undefined OR true`, "true"},
		{`undefined OR false`, "undefined"},
		{`true AND 1`, "error: Invalid operands to binary operator 'AND': have 'bool' and 'number', expected 'bool' and 'bool', Location <start>:1:6, <end>:1:9"},
		{`$body.Weather.IsEnabled AND $body.Weather.Temperature`, "undefined"},
		{`$body.Weather.IsEnabled OR $body.Weather.Temperature`, "true"},
		{`$body.Weather.Temperature = 'x'`, "false"},
		{`$body.Weather.Temperature != 'x'`, "true"},
		{`$body.Weather.Temperature = undefined`, "error: Invalid operands to binary operator '=': have 'unknown' and 'undefined', expected 'unknown' and 'unknown', Location <start>:1:27, <end>:1:28"},
		{`$body.Weather.NullValue = null`, "true"},
		{`$body.Weather.IsEnabled < $body.Weather.Temperature`, "true"},
		{`$body.Weather.Location.City < $body.Weather.NullValue`, "true"},
		{`1 ?? 'a'`, "error: Invalid operands to binary operator '??': have 'number' and 'string', expected 'number' and 'number', Location <start>:1:3, <end>:1:5"},
		{`$body.Weather.Missing ?? 'none'`, `"none"`},
		{`$body.Weather.Temperature ?? 'none'`, "50"},
		{`undefined ?? 3`, "error: Invalid operands to binary operator '??': have 'undefined' and 'number', expected 'undefined' and 'undefined', Location <start>:1:11, <end>:1:13"},
		{`undefined ?? undefined`, "undefined"},
		{`(1 % 0) ?? 3`, "3"},
		{`$body.Weather.NullValue ?? 1`, "null"},
		{`1 / 0 > 1000`, "true"},
		{`-1 / 0 < 0`, "true"},
		{`is_defined(1 % 0)`, "false"},
		{`7 % 3 = 1`, "true"},
		{`-7 % 3 = -1`, "true"},
		{`2 * 3 + 4 = 10`, "true"},
		{`2 + 3 * 4 = 14`, "true"},
		{`10 - 2 - 3 = 5`, "true"},
		{`100 / 10 / 5 = 2`, "true"},
		{`- 2 * 3 = -6`, "true"},
		{`-(2 + 3) = -5`, "true"},
		{`- - 2 = 2`, "true"},
		{`NOT NOT true`, "true"},
		{`$body.Weather.Location.City * 2`, "undefined"},
		{`'a' < 'b'`, "true"},
		{`'B' < 'a'`, "true"},
		{`'abc' >= 'abc'`, "true"},
		{`true > false`, "true"},
		{`1 < 2 = true`, "true"},
		{`1 = 1 = true`, "true"},
		{`true OR false AND false`, "true"},
		{`(true OR false) AND false`, "false"},
		{`false AND missing = 'x' OR true`, "true"},
		{`missing || 'x'`, "undefined"},
		{`nullp || 'x' = 'x'`, "true"},
		{`nullp = 'x'`, "false"},
		{`nullp != ''`, "true"},
	})
}

func TestFunctions(t *testing.T) {
	runQueryCases(t, messageM, weatherTwin, []queryCase{
		{`abs(-2) = 2`, "true"},
		{`exp(0) = 1`, "true"},
		{`exp(1000) > 1`, "true"},
		{`power(2, 10) = 1024`, "true"},
		{`is_defined(power(-8, 0.5))`, "false"},
		{`square(3) = 9`, "true"},
		{`ceiling(1.2) = 2`, "true"},
		{`floor(-1.2) = -2`, "true"},
		{`sign(-3) = -1`, "true"},
		{`sign(0) = 0`, "true"},
		{`sign(10e1000) = 1`, "true"},
		{`sqrt(16) = 4`, "true"},
		{`is_defined(sqrt(-1))`, "false"},
		{`as_number('12.5') = 12.5`, "true"},
		{`as_number(' 12 ') = 12`, "true"},
		{`as_number('1e3') = 1000`, "true"},
		{`as_number('-.5') = -0.5`, "true"},
		{`as_number('abc')`, "undefined"},
		{`as_number('0x10')`, "undefined"},
		{`as_number('1,000')`, "undefined"},
		{`as_number('1_000')`, "undefined"},
		{`as_number('')`, "undefined"},
		{`as_number(5) = 5`, "true"},
		{`as_number('-Infinity') < 0`, "true"},
		{`as_number('1e999') > 0`, "true"},
		{`as_number(true)`, "error: Invalid arguments to built-in function 'as_number': as_number(bool), Location <start>:1:1, <end>:1:10"},
		{`as_number(null)`, "error: Invalid arguments to built-in function 'as_number': as_number(null), Location <start>:1:1, <end>:1:10"},
		{`as_number($body.Weather.IsEnabled)`, "undefined"},
		{`is_bool(true)`, "true"},
		{`is_bool('true')`, "false"},
		{`is_number(1)`, "true"},
		{`is_number('1')`, "false"},
		{`is_string('a')`, "true"},
		{`is_string(nullp)`, "false"},
		{`is_null(nullp)`, "true"},
		{`is_null(missing)`, "false"},
		{`is_null(null)`, "true"},
		{`is_defined(null)`, "true"},
		{`is_defined(missing)`, "false"},
		{`is_defined(nullp)`, "true"},
		{`is_defined(undefined)`, "false"},
		{`is_array($body.Weather.PrevTemperatures)`, "true"},
		{`is_object($body.Weather.Location)`, "true"},
		{`is_object($body.Weather.PrevTemperatures)`, "false"},
		{`is_primitive($body.Weather.Temperature)`, "true"},
		{`is_primitive($body.Weather.Location)`, "false"},
		{`is_primitive($body.Weather.NullValue)`, "true"},
		{`is_primitive($body.Weather.Missing)`, "false"},
		{`is_array(processingPath)`, "false"},
		{`is_defined($body.Weather.Location)`, "false"},
		{`IS_OBJECT($twin.tags.deploymentLocation)`, "true"},
		{`is_array($body.Weather.HistoricalData[0])`, "false"},
		{`concat('a', 'b', 'c') = 'abc'`, "true"},
		{`concat('a')`, "error: Invalid arguments to built-in function 'concat': concat(string), Location <start>:1:1, <end>:1:7"},
		{`concat('a', 1)`, "error: Invalid arguments to built-in function 'concat': concat(string, number), Location <start>:1:1, <end>:1:7"},
		{`concat('a', true)`, "error: Invalid arguments to built-in function 'concat': concat(string, bool), Location <start>:1:1, <end>:1:7"},
		{`concat('a', missing)`, "undefined"},
		{`concat('a', nullp, 'b') = 'ab'`, "true"},
		{`concat('t=', $body.Weather.Temperature)`, "undefined"},
		{`length('héllo') = 5`, "true"},
		{`length(12.34)`, "error: Invalid arguments to built-in function 'length': length(number), Location <start>:1:1, <end>:1:7"},
		{`length()`, "error: Invalid arguments to built-in function 'length': length(), Location <start>:1:1, <end>:1:7"},
		{`length(missing)`, "undefined"},
		{`length('') = 0`, "true"},
		{`lower('ABC') = 'abc'`, "true"},
		{`upper('abc') = 'ABC'`, "true"},
		{`LOWER('A') = 'a'`, "true"},
		{`substring('abc', 1) = 'bc'`, "true"},
		{`substring('abc', -1)`, "undefined"},
		{`substring('abc', 0, 2) = 'ab'`, "true"},
		{`substring('abc', 1.9, 1.9) = 'b'`, "true"},
		{`substring('abc', 3, 0)`, "undefined"},
		{`substring('abc', 1, 3)`, "undefined"},
		{`substring('abc', 1, 2) = 'bc'`, "true"},
		{`substring('héllo', 1, 1) = 'é'`, "true"},
		{`substring('abc')`, "error: Invalid arguments to built-in function 'substring': substring(string), Location <start>:1:1, <end>:1:10"},
		{`index_of('abcabc', 'c') = 2`, "true"},
		{`index_of('abc', 'x') = -1`, "true"},
		{`index_of('héllo', 'l') = 2`, "true"},
		{`starts_with('abc', 'ab')`, "true"},
		{`ends_with('abc', 'bc')`, "true"},
		{`contains('abc', 'B')`, "false"},
		{`Contains('abc', 'b')`, "true"},
		{`twin_change_includes('x')`, "error: Invalid built-in function 'twin_change_includes', Location <start>:1:1, <end>:1:21"},
		{`abs(processingPath)`, "error: Invalid arguments to built-in function 'abs': abs(string), Location <start>:1:1, <end>:1:4"},
		{`abs($body.Weather.Location.City)`, "undefined"},
		{`ABS('x')`, "error: Invalid arguments to built-in function 'ABS': ABS(string), Location <start>:1:1, <end>:1:4"},
	})
}

func TestProperties(t *testing.T) {
	runQueryCases(t, messageM, weatherTwin, []queryCase{
		{`$messageId = 'app'`, "true"},
		{`$MESSAGEID = 'app'`, "true"},
		{`{$messageId} = 'system'`, "true"},
		{`{ $messageId } = 'system'`, "true"},
		{`$contentType = 'application/json'`, "true"},
		{`$CONTENTTYPE = 'application/json'`, "true"},
		{`$connectionDeviceId = 'thermostat1'`, "true"},
		{`is_defined($connectionModuleId)`, "false"},
		{`is_defined($to)`, "false"},
		{`$iothub-enqueuedtime = '2022-06-07T10:00:00.0000000Z'`, "true"},
		{`$enqueuedTime = '2022-06-07T10:00:00.0000000Z'`, "true"},
		{`$enqueuedTime < '2022-06-07T10:00:00.0000001Z'`, "true"},
		{`$unknownProp`, "undefined"},
		{`$a[0] = 'x'`, "error: Invalid operands to binary operator '=': have 'undefined' and 'string', expected 'undefined' and 'undefined', Location <start>:1:7, <end>:1:8"},
		{`$BODY.Weather.Temperature = 50`, "true"},
		{`$body.weather.temperature`, "undefined"},
		{`$body.Weather.HistoricalData[1].Temperature = 30`, "true"},
		{`$body.Weather.HistoricalData[2].Temperature`, "undefined"},
		{`$body.Weather[0]`, "undefined"},
		{`$body.Weather.PrevTemperatures.x`, "undefined"},
		{`$twin.TAGS.DeploymentLocation.Building = '43'`, "true"},
		{`$twin.properties.desired.x`, "undefined"},
		{`$body`, "error: Invalid arguments to built-in function '$body': $body(string). Error: Error in $body query. The query path is empty., Location <start>:1:1, <end>:1:6"},
		{`$body.`, "error: Invalid arguments to built-in function '$body.': $body.(string). Error: Error in $body query. Missing member name in path '.'., Location <start>:1:1, <end>:1:7"},
		{`$body.a[]`, "error: Invalid arguments to built-in function '$body.a[]': $body.a[](string). Error: Error in $body query. Invalid array index in path '.a[]'., Location <start>:1:1, <end>:1:10"},
		{`$body[0]`, "error: Invalid arguments to built-in function '$body[0]': $body[0](string). Error: Error in $body query. Unexpected '[' in path '[0]'., Location <start>:1:1, <end>:1:9"},
		{`$body.a[1:2]`, "error: Syntax error: invalid symbol ':', Location <start>:1:10, <end>:1:11"},
		{`$body.a.`, "error: Invalid arguments to built-in function '$body.a.': $body.a.(string). Error: Error in $body query. Missing member name in path '.a.'., Location <start>:1:1, <end>:1:9"},
		{`$twin`, "error: Invalid arguments to built-in function '$twin': $twin(string). Error: Error in $twin query. The query path is empty., Location <start>:1:1, <end>:1:6"},
		{`$body.a*2`, "undefined"},
	})
	shadowed := func() *hubkit.Message {
		m := messageM()
		m.Properties.Set("$body.Weather.Temperature", "shadow")
		m.Body = []byte(`{"a*2":7,"Weather":{"Temperature":50}}`)
		return m
	}
	runQueryCases(t, shadowed, "", []queryCase{
		{`$body.Weather.Temperature = 'shadow'`, "true"},
		{`{$body.Weather.Temperature} = 50`, "true"},
		{`$body.a*2 = 7`, "true"},
		{`$twin.tags.x`, "undefined"},
	})
}

func TestBodyEncodings(t *testing.T) {
	utf16le := func(s string) []byte {
		var b []byte
		for _, r := range s { // ASCII test data only
			b = append(b, byte(r), 0)
		}
		return b
	}
	utf32le := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), 0, 0, 0)
		}
		return b
	}
	const doc = `{"t": 21.5, "s": "x\u00e9\ud83d\ude00"}`
	for _, tc := range []struct {
		name, ctype, cenc string
		body              []byte
		want              string
	}{
		{"utf-8", "application/json", "utf-8", []byte(doc), "true"},
		{"UTF-8 upper case", "APPLICATION/JSON", "UTF-8", []byte(doc), "true"},
		{"utf-8 BOM", "application/json", "utf-8", append([]byte("\xef\xbb\xbf"), doc...), "true"},
		{"charset parameter", "application/json; charset=utf-8", "", []byte(doc), "true"},
		{"quoted charset", `application/json;charset="UTF-16"`, "", utf16le(doc), "true"},
		{"parameters ignored with encoding", "application/json;odata=verbose", "utf-8", []byte(doc), "true"},
		{"utf-16", "application/json", "utf-16", utf16le(doc), "true"},
		{"utf-16 BOM", "application/json", "utf-16", append([]byte{0xff, 0xfe}, utf16le(doc)...), "true"},
		{"utf-32", "application/json", "utf-32", utf32le(doc), "true"},
		{"odd utf-16", "application/json", "utf-16", []byte(doc + "x"), "undefined"},
		{"no encoding", "application/json", "", []byte(doc), "undefined"},
		{"latin1", "application/json", "iso-8859-1", []byte(doc), "undefined"},
		{"text", "text/plain", "utf-8", []byte(doc), "undefined"},
		{"invalid JSON", "application/json", "utf-8", []byte(`{"t": 21.5,}`), "undefined"},
		{"trailing garbage", "application/json", "utf-8", []byte(doc + " x"), "undefined"},
		{"empty body", "application/json", "utf-8", nil, "undefined"},
		{"single quotes", "application/json", "utf-8", []byte(`{'t': 21.5}`), "undefined"},
		{"too deep", "application/json", "utf-8", []byte(`{"t": 21.5, "s": "x\u00e9\ud83d\ude00", "d":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`), "undefined"},
		{"deep enough", "application/json", "utf-8", []byte(`{"t": 21.5, "s": "x\u00e9\ud83d\ude00", "d":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`), "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &hubkit.Message{Body: tc.body, System: hubkit.SystemProperties{ContentType: tc.ctype, ContentEncoding: tc.cenc}}
			if got := result(`$body.t = 21.5 AND $body.s = 'xé😀'`, m, nil); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBodyValues(t *testing.T) {
	m := func() *hubkit.Message {
		return &hubkit.Message{
			Body:   []byte(` { "n" : -1.5e2 , "big": 1e400, "esc\"key": "tab\there", "dup": 1, "dup": 2, "arr": [ [1, 2], {"x": [true]} ], "u": "\u0041\/" } `),
			System: hubkit.SystemProperties{ContentType: "application/json", ContentEncoding: "utf-8"},
		}
	}
	runQueryCases(t, m, "", []queryCase{
		{`$body.n = -150`, "true"},
		{`$body.big > 1`, "true"},
		{`$body.esc"key`, "error: Syntax error: unterminated string, Location <start>:1:10, <end>:1:14"},
		{`$body.dup`, "2"},
		{`is_array($body.arr[0])`, "true"},
		{`$body.arr[1].x[0]`, "true"},
		{`$body.u = 'A/'`, "true"},
		{`$body.arr[5]`, "undefined"},
		{`$body.n.x`, "undefined"},
	})
}
