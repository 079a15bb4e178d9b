// Package routetest is the conformance suite for [route.Router]
// implementations that follow IoT Hub's routing rules. An implementation
// calls [Run] from its own tests:
//
//	func TestConformance(t *testing.T) {
//		routetest.Run(t, routetest.Harness{New: func(t *testing.T, r route.Routing) route.Router {
//			tb, err := route.New(route.Config{Routing: r})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return tb
//		}})
//	}
//
// The suite uses only the standard library and hubkit, so implementers
// inherit no test dependencies. Run it with -race: it checks concurrent use.
package routetest
