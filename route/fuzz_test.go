package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hubkit/hubkit"
)

var fuzzConditions = []string{
	"processingPath = 'hot'",
	"as_number(severity) + 1 = 4 AND $body.Weather.Temperature > 40",
	"$body.Weather.HistoricalData[0].Month = 'Feb' OR $twin.tags.floor = '1'",
	"(missing ?? 'cold') = 'cold'",
	"NOT (a = 'b') AND is_object($body.x) AND is_array($twin.properties.reported.list)",
	"concat(lower(a), '\\u0041', \"x\\\"y\") || 'z' = substring('abc', 1, 1)",
	"{$messageId} <> $correlationId AND $enqueuedTime > '2022'",
	"0x1F * -1.5e3 / .5 % 2 >= -(3) ?? null",
	"/* comment */ a+1 = 'x' OR key!='v'",
	"'unterminated",
	"a @ b",
	"((((((a",
	"length($body.s) > index_of($body.s, 'x') AND starts_with($body.s, '') AND sign(exp(power(2, 3))) = 1",
	"$body.a[1:2]",
	"undefined OR null AND true",
}

// FuzzCompile checks that any text compiles or fails with a
// *CompileError, never panics or hangs, and that what compiles evaluates.
func FuzzCompile(f *testing.F) {
	for _, c := range fuzzConditions {
		f.Add(c)
	}
	m := &hubkit.Message{
		Body:       []byte(`{"Weather":{"Temperature":50,"HistoricalData":[{"Month":"Feb"}]},"s":"x","x":{}}`),
		System:     hubkit.SystemProperties{ContentType: "application/json", ContentEncoding: "utf-8", MessageID: "m"},
		Properties: hubkit.Properties{{Name: "processingPath", Value: "hot"}, {Name: "a", Value: "b"}, {Name: "n", Null: true}},
	}
	twin := []byte(`{"tags":{"floor":"1"},"properties":{"reported":{"list":[1]}}}`)
	f.Fuzz(func(t *testing.T, cond string) {
		c, err := Compile(cond)
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *CompileError", err)
			}
			if ce.Start.Line < 1 || ce.Start.Column < 1 || ce.End.Line != ce.Start.Line || ce.End.Column <= ce.Start.Column || ce.Message == "" {
				t.Fatalf("bad error range or message: %+v", ce)
			}
			return
		}
		v := c.Eval(m, twin)
		if v.Kind > String || v.Kind == Number && v.Num != v.Num {
			t.Fatalf("bad value %#v", v)
		}
	})
}

// FuzzEval evaluates a condition against any body and twin, and checks
// the body scanner against encoding/json.
func FuzzEval(f *testing.F) {
	f.Add("$body.a.b[1] = 2 AND $twin.tags.t = 'x'", []byte(`{"a":{"b":[1,2]}}`), []byte(`{"tags":{"T":"x"}}`))
	f.Add("is_array($body.a) OR $body.s = 'x\\u00e9'", []byte(`{"a":[], "s": "x\u00e9", "s": "y"}`), []byte(nil))
	f.Add("$body.n > 1e300", []byte(` {"n": 1e400 } `), []byte(`[`))
	f.Add("$body.x", []byte(`{"x": "\ud83d\ude00 \" \\ \/"}`), []byte(`{}`))
	f.Add("$body.x", []byte(`{"x": 01}`), []byte(`{"x":`))
	f.Fuzz(func(t *testing.T, cond string, body, twin []byte) {
		text, _ := decodeText(body, "utf-8")
		valid := validJSON(text)
		if valid && !json.Valid(body) {
			t.Fatalf("validJSON accepts what encoding/json rejects: %q", body)
		}
		if !valid && json.Valid(body) && depth(body) <= maxJSONDepth {
			t.Fatalf("validJSON rejects valid JSON: %q", body)
		}
		if valid {
			var doc map[string]any
			if json.Unmarshal(body, &doc) == nil {
				for k, want := range doc {
					i := (&memo{}).find(text, []seg{{name: k, index: -1}}, false)
					if s, ok := want.(string); ok && (i < 0 || jsonValue(text, i).Str != s) {
						t.Fatalf("member %q: got %v, want %q", k, jsonValue(text, i), s)
					}
				}
			}
		}
		c, err := Compile(cond)
		if err != nil {
			return
		}
		m := &hubkit.Message{Body: body, System: hubkit.SystemProperties{ContentType: "application/json", ContentEncoding: "utf-8"}}
		c.Eval(m, twin)
	})
}

// depth returns the deepest nesting of arrays and objects in valid JSON.
func depth(b []byte) int {
	d, deepest := 0, 0
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			d++
			deepest = max(deepest, d)
		case json.Delim('}'), json.Delim(']'):
			d--
		}
	}
}
