package route_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/route"
)

// kilobyteBody returns a JSON telemetry body of about 1 KiB whose
// interesting members come last, so that a lookup walks all of it.
func kilobyteBody() []byte {
	var b strings.Builder
	b.WriteString(`{"readings":[`)
	for i := range 38 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"t":%d.25,"h":"s%02d"}`, i, i)
	}
	b.WriteString(`],"meta":{"fw":"1.2.3","tags":["a","b","c"],"note":"padding text for a realistic body size"},`)
	b.WriteString(`"Weather":{"Temperature":50,"Location":{"City":"Redmond","State":"WA"}}}`)
	return []byte(b.String())
}

func benchMessage() *hubkit.Message {
	m := messageM()
	m.Body = kilobyteBody()
	return m
}

func benchCondition(b *testing.B, cond string) {
	c, err := route.Compile(cond)
	if err != nil {
		b.Fatal(err)
	}
	m := benchMessage()
	if !c.Match(m, nil) {
		b.Fatalf("%s does not match the benchmark message", cond)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		c.Match(m, nil)
	}
	reportCPU(b, cpu)
	b.ReportMetric(testing.AllocsPerRun(100, func() { c.Match(m, nil) }), "allocs/match")
}

// cpuTime returns the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports CPU nanoseconds per operation since start: on a
// machine shared with other work, wall-clock ns/op counts the time other
// processes held the CPU, and CPU time does not.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkPropertyCondition(b *testing.B) {
	benchCondition(b, "processingPath = 'hot' AND $connectionDeviceId = 'thermostat1' AND {$contentType} <> 'text/plain'")
}

func BenchmarkBodyCondition(b *testing.B) {
	if n := len(kilobyteBody()); n < 1000 || n > 1100 {
		b.Fatalf("body is %d bytes, want about 1 KiB", n)
	}
	benchCondition(b, "$body.Weather.Temperature > 40 AND $body.Weather.Location.City = 'Redmond'")
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := route.Compile("as_number(severity) >= 3 AND ($body.Weather.Temperature > 40 OR lower($body.Weather.Location.City) = 'redmond')"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouteTable routes a 1 KiB JSON message through ten routes,
// six of which read the body: it is decoded and validated once.
func BenchmarkRouteTable(b *testing.B) {
	var routes []route.Route
	for i := range 10 {
		cond := fmt.Sprintf("processingPath = 'p%d'", i)
		if i%2 == 0 || i == 9 {
			cond = fmt.Sprintf("$body.Weather.Temperature = %d", 45+i)
		}
		routes = append(routes, route.Route{Name: fmt.Sprint("r", i), Source: route.DeviceMessages, Condition: cond, Endpoint: fmt.Sprint("e", i%3)})
	}
	tb, err := route.New(route.Config{Routing: route.Routing{Routes: routes}})
	if err != nil {
		b.Fatal(err)
	}
	m := benchMessage()
	ctx := context.Background()
	if eps, _ := tb.Route(ctx, route.DeviceMessages, m); len(eps) != 1 {
		b.Fatalf("routed to %v", eps)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		tb.Route(ctx, route.DeviceMessages, m)
	}
	reportCPU(b, cpu)
}
