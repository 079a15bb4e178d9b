package route_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hubkit/hubkit/route"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// badConditions are conditions IoT Hub rejects; their error texts are kept
// in testdata/compile_errors.golden.
var badConditions = []string{
	"severity > 2",
	"temperature > 30",
	"NOT processingPath = 'hot'",
	"p ?? 'x' = 'x'",
	"as_number(severity)+1 = 4",
	"x -1",
	"key != 1",
	"1 + 'a'",
	"- 'a'",
	"'a' || 1",
	"true AND 'x'",
	"NOT 'x'",
	"null = 1",
	"undefined = 1",
	"$body.x = undefined",
	"a = 'b' OR c",
	"(a = 'b'",
	"a = 'b')",
	"length('a'",
	"a @ b",
	"'unterminated",
	"a =",
	"a = \n",
	"AND",
	"select = 1",
	"{$x",
	"{x}",
	"foo(1)",
	"Twin_Change_Includes('x')",
	"length(1)",
	"length('a', 'b')",
	"concat('a')",
	"concat('a', null)",
	"substring('a')",
	"substring('a', '1')",
	"as_number(true)",
	"abs(undefined)",
	"is_defined()",
	"$body",
	"$body.",
	"$body.a[]",
	"$body.a[x]",
	"$body[0]",
	"$twin",
	"$twin.a..b",
	"$a[0] = 'x'",
	"e5 = 5",
	"1. = 1",
	"a = 'b'\r\n AND 3",
	"'😀' = 1 AND 'x' = 2",
	strings.Repeat("(", route.MaxNesting+1) + "1" + strings.Repeat(")", route.MaxNesting+1),
}

func TestCompileErrorsGolden(t *testing.T) {
	var b strings.Builder
	for _, c := range badConditions {
		_, err := route.Compile(c)
		if err == nil {
			t.Errorf("%q compiled", c)
			continue
		}
		fmt.Fprintf(&b, "%s\n\t%s\n", strconv.Quote(c), err)
	}
	golden := filepath.Join("testdata", "compile_errors.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("compile errors differ from %s (rerun with -update and review the diff):\n%s", golden, got)
	}
}

func TestLimits(t *testing.T) {
	long := "a = '" + strings.Repeat("x", route.MaxConditionLength) + "'"
	if _, err := route.Compile(long); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("over-long condition: err = %v", err)
	}
	deep := strings.Repeat("(", route.MaxNesting) + "true" + strings.Repeat(")", route.MaxNesting)
	if c, err := route.Compile(deep); err != nil || !c.Match(messageM(), nil) {
		t.Errorf("nesting at the limit: err = %v", err)
	}
	chain := "true" + strings.Repeat(" AND true", 5000)
	if c, err := route.Compile(chain); err != nil || !c.Match(messageM(), nil) {
		t.Errorf("long chain: err = %v", err)
	}
}
