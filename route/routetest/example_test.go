package routetest_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/route"
	"github.com/hubkit/hubkit/route/routetest"
)

// counting stands for a user's own Router: it counts the messages it
// routes and leaves the rules to a route.Table.
type counting struct {
	table  *route.Table
	routed atomic.Int64
}

func (c *counting) Route(ctx context.Context, source route.Source, m *hubkit.Message) ([]string, error) {
	c.routed.Add(1)
	return c.table.Route(ctx, source, m)
}

// A router runs the suite from a test of its own; the harness builds it
// with the routing configuration each check needs. Run needs the
// *testing.T that go test gives a test function, so this example is
// compiled but not run: the body of testConformance is what goes in the
// router's func TestConformance(t *testing.T).
func ExampleRun() {
	testConformance := func(t *testing.T) {
		routetest.Run(t, routetest.Harness{New: func(t *testing.T, r route.Routing) route.Router {
			tb, err := route.New(route.Config{Routing: r})
			if err != nil {
				t.Fatal(err)
			}
			return &counting{table: tb}
		}})
	}
	_ = testConformance
}
