package queuetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hubkit/hubkit/queue"
)

func testKV(t *testing.T, h Harness) {
	runRules(t, h, []rule{
		{name: "GetReturnsWhatWasWritten", run: testKVGet},
		{name: "WriteAppliesOpsInOrder", run: testKVOrder},
		{name: "NoMemorySharedWithCaller", run: testKVNoSharing},
		{name: "ListByPrefixAfterAndLimit", run: testKVList},
		{name: "ReopenKeepsPairs", run: testKVReopen, persistent: true},
	})
}

func put(k, v string) queue.KVOp { return queue.KVOp{Key: k, Value: []byte(v)} }
func del(k string) queue.KVOp    { return queue.KVOp{Key: k, Delete: true} }

func write(t *testing.T, e *env, ops ...queue.KVOp) {
	t.Helper()
	if err := e.q.Write(e.ctx, ops...); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// wantKV checks that key holds want, or is missing when want is nil.
func wantKV(t *testing.T, e *env, rule, key string, want *string) {
	t.Helper()
	v, err := e.q.Get(e.ctx, key)
	switch {
	case want == nil && !errors.Is(err, queue.ErrNotFound):
		t.Errorf("%s: Get(%q) = %q, %v; want queue.ErrNotFound", rule, key, v, err)
	case want != nil && (err != nil || string(v) != *want):
		t.Errorf("%s: Get(%q) = %q, %v; want %q", rule, key, v, err, *want)
	}
}

func ptr(s string) *string { return &s }

func testKVGet(t *testing.T, e *env) {
	const rule = "Get returns the value last written, ErrNotFound when missing or deleted"
	wantKV(t, e, rule, "a", nil)
	write(t, e, put("a", "1"), put("b", ""))
	wantKV(t, e, rule, "a", ptr("1"))
	wantKV(t, e, rule, "b", ptr(""))
	write(t, e, put("a", "2"))
	wantKV(t, e, rule, "a", ptr("2"))
	write(t, e, del("a"), del("never-written"))
	wantKV(t, e, rule, "a", nil)
	wantKV(t, e, rule, "b", ptr(""))
}

func testKVOrder(t *testing.T, e *env) {
	const rule = "Write applies all its ops, in order"
	write(t, e, put("x", "1"), put("y", "1"))
	write(t, e, put("x", "2"), del("x"), del("y"), put("y", "2"), put("z", "1"), put("z", "3"))
	wantKV(t, e, rule, "x", nil)
	wantKV(t, e, rule, "y", ptr("2"))
	wantKV(t, e, rule, "z", ptr("3"))
}

func testKVNoSharing(t *testing.T, e *env) {
	const rule = "Write does not keep the caller's value and Get and List return copies"
	v := []byte("abc")
	write(t, e, queue.KVOp{Key: "k", Value: v})
	v[0] = 'x'
	got, err := e.q.Get(e.ctx, "k")
	if err != nil || string(got) != "abc" {
		t.Fatalf("%s: Get = %q, %v; want %q", rule, got, err, "abc")
	}
	got[0] = 'y'
	ps, err := e.q.List(e.ctx, "", "", 10)
	if err != nil || len(ps) != 1 || string(ps[0].Value) != "abc" {
		t.Fatalf("%s: List = %v, %v; want k=abc", rule, ps, err)
	}
	ps[0].Value[0] = 'z'
	wantKV(t, e, rule, "k", ptr("abc"))
}

func testKVList(t *testing.T, e *env) {
	const rule = "List returns pairs with the prefix, after the given key, in key order, at most limit"
	write(t, e, put("dev/b", "2"), put("dev/a", "1"), put("de", "x"), put("dev/c", "3"), put("dew", "y"), put("dev/", "0"), put("e", "z"))
	write(t, e, put("\xff", "1"), put("\xff\x00", "2"), put("\xff\xff", "3"), put("a\x00", "4"), put("a\x00b", "5"))
	for _, c := range []struct {
		prefix, after string
		limit         int
		want          string
	}{
		{"dev/", "", 10, "dev/=0 dev/a=1 dev/b=2 dev/c=3"},
		{"dev/", "", 2, "dev/=0 dev/a=1"},
		{"dev/", "dev/a", 10, "dev/b=2 dev/c=3"},
		{"dev/", "dev/aa", 1, "dev/b=2"},
		{"dev/", "dev/c", 10, ""},
		{"de", "", 3, "de=x dev/=0 dev/a=1"},
		{"", "dev/c", 3, "dew=y e=z \xff=1"},
		{"nothing", "", 10, ""},
		{"\xff", "", 10, "\xff=1 \xff\x00=2 \xff\xff=3"},
		{"\xff\xff", "", 10, "\xff\xff=3"},
		{"a\x00", "", 10, "a\x00=4 a\x00b=5"},
		{"a", "a\x00", 10, "a\x00b=5"},
	} {
		ps, err := e.q.List(e.ctx, c.prefix, c.after, c.limit)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got := ""
		for i, p := range ps {
			if i > 0 {
				got += " "
			}
			got += fmt.Sprintf("%s=%s", p.Key, p.Value)
		}
		if got != c.want {
			t.Errorf("%s: List(%q, %q, %d) = %q, want %q", rule, c.prefix, c.after, c.limit, got, c.want)
		}
	}
}

func testKVReopen(t *testing.T, e *env) {
	const rule = "pairs survive Close and reopen"
	write(t, e, put("a", "1"), put("b", "2"))
	write(t, e, del("b"))
	e.reopen(t)
	wantKV(t, e, rule, "a", ptr("1"))
	wantKV(t, e, rule, "b", nil)
}
