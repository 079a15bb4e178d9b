package routetest

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/route"
)

// Harness tells Run how to build the router under test.
type Harness struct {
	// New returns a router configured with r. Required.
	New func(t *testing.T, r route.Routing) route.Router
}

// sample is a telemetry message with one property and a JSON body.
func sample(level string) *hubkit.Message {
	return &hubkit.Message{
		Body:       []byte(`{"temperature": 42}`),
		System:     hubkit.SystemProperties{ContentType: "application/json", ContentEncoding: "utf-8", ConnectionDeviceID: "d1"},
		Properties: hubkit.Properties{{Name: "level", Value: level}},
	}
}

// Run checks the rules every Router owes the hub: each endpoint at most
// once, routes only for their own source, disabled routes ignored, the
// fallback only for unmatched device messages, messages left untouched,
// and safe concurrent use. Each failure names the rule it broke.
func Run(t *testing.T, h Harness) {
	routes := []route.Route{
		{Name: "critical", Source: route.DeviceMessages, Condition: "level = 'critical'", Endpoint: "alerts"},
		{Name: "hot", Source: route.DeviceMessages, Condition: "$body.temperature > 40", Endpoint: "alerts"},
		{Name: "all-hot", Source: route.DeviceMessages, Condition: "$body.temperature > 40", Endpoint: "archive"},
		{Name: "disabled", Source: route.DeviceMessages, Endpoint: "disabled", Disabled: true},
		{Name: "twin", Source: route.TwinChangeEvents, Endpoint: "twins"},
	}
	cases := []struct {
		rule    string
		routing route.Routing
		source  route.Source
		m       *hubkit.Message
		want    []string
	}{
		{"an endpoint gets a message once however many routes match", route.Routing{Routes: routes}, route.DeviceMessages, sample("critical"), []string{"alerts", "archive"}},
		{"disabled routes are ignored", route.Routing{Routes: routes[3:4], Fallback: route.Fallback{Disabled: true}}, route.DeviceMessages, sample("x"), nil},
		{"routes apply only to their source", route.Routing{Routes: routes}, route.TwinChangeEvents, sample("critical"), []string{"twins"}},
		{"unmatched device messages take the fallback", route.Routing{Routes: routes[:1]}, route.DeviceMessages, &hubkit.Message{}, []string{route.BuiltinEndpoint}},
		{"the fallback may go to a custom endpoint", route.Routing{Fallback: route.Fallback{Endpoint: "custom"}}, route.DeviceMessages, sample("x"), []string{"custom"}},
		{"a disabled fallback drops unmatched messages", route.Routing{Fallback: route.Fallback{Disabled: true}}, route.DeviceMessages, sample("x"), nil},
		{"events never take the fallback", route.Routing{}, route.DeviceLifecycleEvents, sample("x"), nil},
		{"a matched message skips the fallback", route.Routing{Routes: routes[:1]}, route.DeviceMessages, sample("critical"), []string{"alerts"}},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			r := h.New(t, tc.routing)
			before := tc.m.Clone()
			got, err := r.Route(context.Background(), tc.source, tc.m)
			if err != nil {
				t.Fatalf("%s: Route: %v", tc.rule, err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.rule, got, tc.want)
			}
			if !equalMessages(before, tc.m) {
				t.Errorf("Route must not modify the message: before %+v, after %+v", before, tc.m)
			}
		})
	}
	t.Run("safe for concurrent use", func(t *testing.T) {
		r := h.New(t, route.Routing{Routes: routes})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 200 {
					got, err := r.Route(context.Background(), route.DeviceMessages, sample("critical"))
					slices.Sort(got)
					if err != nil || !slices.Equal(got, []string{"alerts", "archive"}) {
						t.Errorf("concurrent Route: got %v, %v", got, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func equalMessages(a, b *hubkit.Message) bool {
	return string(a.Body) == string(b.Body) && a.System == b.System && slices.Equal(a.Properties, b.Properties)
}
