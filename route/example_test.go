package route_test

import (
	"context"
	"fmt"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/route"
)

func ExampleCompile() {
	m := &hubkit.Message{
		Body:       []byte(`{"temperature": 31.5}`),
		System:     hubkit.SystemProperties{ContentType: "application/json", ContentEncoding: "utf-8"},
		Properties: hubkit.Properties{{Name: "level", Value: "critical"}},
	}
	c, err := route.Compile("level = 'critical' AND $body.temperature > 30")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Match(m, nil))

	_, err = route.Compile("level > 2")
	fmt.Println(err)
	// Output:
	// true
	// Invalid operands to binary operator '>': have 'string' and 'number', expected 'string' and 'string', Location <start>:1:7, <end>:1:8
}

func ExampleTable() {
	table, err := route.New(route.Config{
		HubName: "myhub",
		Routing: route.Routing{
			Routes: []route.Route{
				{Name: "alerts", Source: route.DeviceMessages, Condition: "level = 'critical'", Endpoint: "alerts"},
				{Name: "lifecycle", Source: route.DeviceLifecycleEvents, Endpoint: "registry"},
			},
			Enrichments: []route.Enrichment{{Key: "hub", Value: "$iothubname", Endpoints: []string{"alerts"}}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for _, level := range []string{"critical", "info"} {
		m := &hubkit.Message{Properties: hubkit.Properties{{Name: "level", Value: level}}}
		endpoints, _ := table.Route(ctx, route.DeviceMessages, m)
		fmt.Println(level, endpoints)
		for _, ep := range endpoints {
			out, _ := table.Enrich(ctx, ep, m)
			fmt.Println(" ", ep, out.Properties)
		}
	}
	// Output:
	// critical [alerts]
	//   alerts [{level critical false} {hub myhub false}]
	// info [events]
	//   events [{level info false}]
}

func ExampleRouterFunc() {
	// Everything from one device goes to a quarantine endpoint.
	var r route.Router = route.RouterFunc(func(ctx context.Context, src route.Source, m *hubkit.Message) ([]string, error) {
		if m.System.ConnectionDeviceID == "suspect" {
			return []string{"quarantine"}, nil
		}
		return []string{route.BuiltinEndpoint}, nil
	})
	eps, _ := r.Route(context.Background(), route.DeviceMessages, &hubkit.Message{System: hubkit.SystemProperties{ConnectionDeviceID: "suspect"}})
	fmt.Println(eps)
	// Output: [quarantine]
}

func ExampleDryRun() {
	m := &hubkit.Message{Properties: hubkit.Properties{{Name: "severity", Value: "3"}}}
	for _, cond := range []string{"as_number(severity) > 2", "missing = 'x'", "severity > 2"} {
		result, err := route.DryRun(cond, m, nil)
		fmt.Println(result, err)
	}
	// Output:
	// true <nil>
	// undefined <nil>
	// undefined Invalid operands to binary operator '>': have 'string' and 'number', expected 'string' and 'string', Location <start>:1:10, <end>:1:11
}
