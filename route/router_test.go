package route_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/route"
	"github.com/hubkit/hubkit/route/routetest"
)

func TestConformance(t *testing.T) {
	routetest.Run(t, routetest.Harness{New: func(t *testing.T, r route.Routing) route.Router {
		return newTable(t, route.Config{Routing: r})
	}})
}

func newTable(t *testing.T, cfg route.Config) *route.Table {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tb, err := route.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tb
}

func routeOf(t *testing.T, r route.Router, src route.Source, m *hubkit.Message) []string {
	t.Helper()
	eps, err := r.Route(context.Background(), src, m)
	if err != nil {
		t.Fatalf("Route: %v", err)
	}
	slices.Sort(eps)
	return eps
}

func TestRouting(t *testing.T) {
	routes := []route.Route{
		{Name: "hot", Source: route.DeviceMessages, Condition: "processingPath = 'hot'", Endpoint: "hotstore"},
		{Name: "hot-again", Source: route.DeviceMessages, Condition: "as_number(severity) >= 3", Endpoint: "hotstore"},
		{Name: "warm", Source: route.DeviceMessages, Condition: "$body.Weather.Temperature > 40", Endpoint: "warm"},
		{Name: "off", Source: route.DeviceMessages, Condition: "", Endpoint: "off", Disabled: true},
		{Name: "twin", Source: route.TwinChangeEvents, Endpoint: "twins"},
		{Name: "life", Source: route.DeviceLifecycleEvents, Condition: "opType = 'createDeviceIdentity'", Endpoint: "life"},
		{Name: "conn", Source: route.DeviceConnectionStateEvents, Condition: "true", Endpoint: "conn"},
		{Name: "jobs", Source: route.DeviceJobLifecycleEvents, Endpoint: "jobs"},
		{Name: "dt", Source: route.DigitalTwinChangeEvents, Endpoint: "dt"},
	}
	tb := newTable(t, route.Config{Routing: route.Routing{Routes: routes}})
	cold := func() *hubkit.Message {
		m := messageM()
		m.Properties.Set("processingPath", "cold")
		m.Properties.Set("severity", "1")
		m.Body = []byte(`{"Weather":{"Temperature":10}}`)
		return m
	}
	lifecycle := &hubkit.Message{Properties: hubkit.Properties{{Name: "opType", Value: "createDeviceIdentity"}}}
	for _, tc := range []struct {
		name string
		src  route.Source
		m    *hubkit.Message
		want []string
	}{
		{"one delivery per endpoint", route.DeviceMessages, messageM(), []string{"hotstore", "warm"}},
		{"fallback when nothing matched", route.DeviceMessages, cold(), []string{"events"}},
		{"twin changes, empty condition is true", route.TwinChangeEvents, messageM(), []string{"twins"}},
		{"lifecycle", route.DeviceLifecycleEvents, lifecycle, []string{"life"}},
		{"lifecycle not matching: no fallback for events", route.DeviceLifecycleEvents, messageM(), nil},
		{"connection state", route.DeviceConnectionStateEvents, messageM(), []string{"conn"}},
		{"jobs", route.DeviceJobLifecycleEvents, messageM(), []string{"jobs"}},
		{"digital twin", route.DigitalTwinChangeEvents, messageM(), []string{"dt"}},
		{"unknown source", route.Source("Nope"), messageM(), nil},
		{"nil message", route.DeviceMessages, nil, []string{"events"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := routeOf(t, tb, tc.src, tc.m); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFallback(t *testing.T) {
	only := []route.Route{{Name: "never", Source: route.DeviceMessages, Condition: "false", Endpoint: "x"}}
	for _, tc := range []struct {
		name string
		fb   route.Fallback
		want []string
	}{
		{"default", route.Fallback{}, []string{"events"}},
		{"disabled", route.Fallback{Disabled: true}, nil},
		{"custom endpoint", route.Fallback{Endpoint: "archive"}, []string{"archive"}},
		{"condition true", route.Fallback{Condition: "processingPath = 'hot'"}, []string{"events"}},
		{"condition undefined", route.Fallback{Condition: "missing = 'x'"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(t, route.Config{Routing: route.Routing{Routes: only, Fallback: tc.fb}})
			if got := routeOf(t, tb, route.DeviceMessages, messageM()); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("no routes at all", func(t *testing.T) {
		tb := newTable(t, route.Config{})
		if got := routeOf(t, tb, route.DeviceMessages, messageM()); !slices.Equal(got, []string{"events"}) {
			t.Errorf("got %v, want [events]", got)
		}
	})
	t.Run("a match suppresses the fallback", func(t *testing.T) {
		tb := newTable(t, route.Config{Routing: route.Routing{Routes: []route.Route{
			{Name: "all", Source: route.DeviceMessages, Endpoint: "custom"}}}})
		if got := routeOf(t, tb, route.DeviceMessages, messageM()); !slices.Equal(got, []string{"custom"}) {
			t.Errorf("got %v, want [custom]", got)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	_, err := route.New(route.Config{Routing: route.Routing{
		Routes: []route.Route{
			{Name: "bad name!", Source: route.DeviceMessages, Endpoint: "e"},
			{Name: "dup", Source: route.DeviceMessages, Endpoint: "e"},
			{Name: "DUP", Source: route.DeviceMessages, Endpoint: "e"},
			{Name: "src", Source: "Telemetry", Endpoint: "e"},
			{Name: "ep", Source: route.DeviceMessages, Endpoint: ""},
			{Name: "cond", Source: route.DeviceMessages, Condition: "severity > 2", Endpoint: "e"},
			{Name: strings.Repeat("n", 65), Source: route.DeviceMessages, Endpoint: "e"},
		},
		Fallback: route.Fallback{Condition: "a = "},
		Enrichments: []route.Enrichment{
			{Key: "k k", Value: "v", Endpoints: []string{"e"}},
			{Key: "k", Value: "", Endpoints: []string{"e"}},
			{Key: "t", Value: "$twin.deviceId", Endpoints: []string{"e"}},
			{Key: "u", Value: "v"},
		},
	}})
	if err == nil {
		t.Fatal("New accepted an invalid configuration")
	}
	text := err.Error()
	for _, want := range []string{
		`route name "bad name!"`,
		`route name "DUP" is used twice`,
		`route "src": unknown source "Telemetry"`,
		`route "ep": endpoint name ""`,
		"Invalid Routing Condition, RouteName:cond, ErrorMessage:Message:Invalid operands to binary operator '>': have 'string' and 'number', expected 'string' and 'string', Location <start>:1:10, <end>:1:11, Severity:Error",
		`route name "` + strings.Repeat("n", 65) + `"`,
		"Invalid Routing Condition, RouteName:$fallback, ErrorMessage:Message:Syntax error., Location <start>:1:5, <end>:1:6, Severity:Error",
		`enrichment key "k k"`,
		`enrichment "k": empty value`,
		`enrichment "t": twin path "$twin.deviceId"`,
		`enrichment "u": no endpoint`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("error lacks %q:\n%s", want, text)
		}
	}
	if !errors.Is(err, route.ErrInvalidRoutingCondition) || !errors.Is(err, hubkit.ErrArgumentInvalid) {
		t.Errorf("error does not wrap both ErrInvalidRoutingCondition and ErrArgumentInvalid: %v", err)
	}
	var ce *route.CompileError
	if !errors.As(err, &ce) || ce.Start != (route.Position{Line: 1, Column: 10}) {
		t.Errorf("errors.As CompileError = %+v", ce)
	}
	if hubkit.ErrorCode(err).HTTPStatus() != 400 {
		t.Errorf("HTTP status %d, want 400", hubkit.ErrorCode(err).HTTPStatus())
	}
}

func TestKnownEndpoints(t *testing.T) {
	routing := func(ep, fallback, enriched string) route.Routing {
		return route.Routing{
			Routes:      []route.Route{{Name: "r", Source: route.DeviceMessages, Endpoint: ep}},
			Fallback:    route.Fallback{Endpoint: fallback},
			Enrichments: []route.Enrichment{{Key: "k", Value: "v", Endpoints: []string{route.BuiltinEndpoint, enriched}}},
		}
	}
	for _, tc := range []struct {
		name      string
		endpoints []string
		routing   route.Routing
		want      []string // parts of the error; none means valid
	}{
		{"nil accepts any name", nil, routing("a", "b", "c"), nil},
		{"known names", []string{"a", "b"}, routing("a", "b", "a"), nil},
		{"builtin always known", []string{}, routing(route.BuiltinEndpoint, "", route.BuiltinEndpoint), nil},
		{"unknown names", []string{"a"}, routing("x", "y", "z"), []string{
			`route "r": unknown endpoint "x"`, `fallback route: unknown endpoint "y"`, `enrichment "k": unknown endpoint "z"`}},
		{"names match exactly", []string{"alerts"}, routing("Alerts", "", "alerts"), []string{`route "r": unknown endpoint "Alerts"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := route.New(route.Config{Endpoints: tc.endpoints, Routing: tc.routing, Logger: slog.New(slog.DiscardHandler)})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, hubkit.ErrArgumentInvalid) {
				t.Fatalf("New = %v, want an error wrapping ErrArgumentInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// Replace checks against the same names and keeps the old routing on error.
	tb := newTable(t, route.Config{Endpoints: []string{"a"}, Routing: routing("a", "", "a")})
	if err := tb.Replace(routing("b", "", "a")); err == nil || !strings.Contains(err.Error(), `unknown endpoint "b"`) {
		t.Errorf("Replace with an unknown endpoint = %v", err)
	}
	if got := tb.Routing().Routes[0].Endpoint; got != "a" {
		t.Errorf("after a failed Replace the route goes to %q, want a", got)
	}
}

func TestReplaceKeepsOldOnError(t *testing.T) {
	tb := newTable(t, route.Config{Routing: route.Routing{Routes: []route.Route{
		{Name: "a", Source: route.DeviceMessages, Endpoint: "a"}}}})
	err := tb.Replace(route.Routing{Routes: []route.Route{{Name: "b", Source: route.DeviceMessages, Condition: "(", Endpoint: "b"}}})
	if err == nil {
		t.Fatal("Replace accepted a broken condition")
	}
	if got := routeOf(t, tb, route.DeviceMessages, messageM()); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after failed Replace got %v, want [a]", got)
	}
	cfg := tb.Routing()
	if len(cfg.Routes) != 1 || cfg.Routes[0].Name != "a" {
		t.Errorf("Routing() = %+v", cfg)
	}
	cfg.Routes[0].Name = "changed"
	if tb.Routing().Routes[0].Name != "a" {
		t.Error("Routing() shares its slice with the table")
	}
}

// TestHotReplace routes from several goroutines while the configuration
// is replaced; run with -race. Every answer must come from one of the two
// configurations, never a mix.
func TestHotReplace(t *testing.T) {
	cfgA := route.Routing{Routes: []route.Route{
		{Name: "a1", Source: route.DeviceMessages, Condition: "processingPath = 'hot'", Endpoint: "a1"},
		{Name: "a2", Source: route.DeviceMessages, Condition: "$body.Weather.Temperature = 50", Endpoint: "a2"}}}
	cfgB := route.Routing{Routes: []route.Route{
		{Name: "b", Source: route.DeviceMessages, Condition: "$connectionDeviceId = 'thermostat1'", Endpoint: "b"}}}
	tb := newTable(t, route.Config{Routing: cfgA})
	var seenA, seenB atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := messageM()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := tb.Route(context.Background(), route.DeviceMessages, m)
				slices.Sort(got)
				switch {
				case err != nil:
					errs <- err.Error()
					return
				case slices.Equal(got, []string{"a1", "a2"}):
					seenA.Add(1)
				case slices.Equal(got, []string{"b"}):
					seenB.Add(1)
				default:
					errs <- fmt.Sprintf("mixed result %v", got)
					return
				}
			}
		}()
	}
	for i := 0; i < 200 || seenA.Load() == 0 || seenB.Load() == 0; i++ {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgB
		}
		if err := tb.Replace(cfg); err != nil {
			t.Fatal(err)
		}
		if i > 1_000_000 {
			break
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if seenA.Load() == 0 || seenB.Load() == 0 {
		t.Errorf("saw config A %d times, B %d times; want both", seenA.Load(), seenB.Load())
	}
}

func TestTwinProvider(t *testing.T) {
	var calls atomic.Int64
	var gotID, gotModule string
	twins := func(ctx context.Context, deviceID, moduleID string) ([]byte, error) {
		calls.Add(1)
		gotID, gotModule = deviceID, moduleID
		return []byte(weatherTwin), nil
	}
	tb := newTable(t, route.Config{Twins: twins, Routing: route.Routing{Routes: []route.Route{
		{Name: "battery", Source: route.DeviceMessages, Condition: "$twin.properties.reported.batteryLevel > 50", Endpoint: "battery"},
		{Name: "building", Source: route.DeviceMessages, Condition: "$twin.tags.deploymentLocation.building = '43'", Endpoint: "building"},
		{Name: "plain", Source: route.TwinChangeEvents, Condition: "true", Endpoint: "plain"},
	}}})
	m := messageM()
	m.System.ConnectionModuleID = "mod"
	if got := routeOf(t, tb, route.DeviceMessages, m); !slices.Equal(got, []string{"battery", "building"}) {
		t.Errorf("got %v", got)
	}
	if calls.Load() != 1 || gotID != "thermostat1" || gotModule != "mod" {
		t.Errorf("twin fetched %d times for %q/%q; want once for thermostat1/mod", calls.Load(), gotID, gotModule)
	}
	routeOf(t, tb, route.TwinChangeEvents, m)
	if calls.Load() != 1 {
		t.Errorf("twin fetched for a route that does not read it")
	}

	failing := newTable(t, route.Config{
		Twins: func(ctx context.Context, _, _ string) ([]byte, error) { return nil, ctx.Err() },
		Routing: route.Routing{Routes: []route.Route{
			{Name: "battery", Source: route.DeviceMessages, Condition: "$twin.properties.reported.batteryLevel > 50", Endpoint: "battery"}}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := failing.Route(ctx, route.DeviceMessages, m); !errors.Is(err, context.Canceled) {
		t.Errorf("Route with a cancelled twin fetch: err = %v, want context.Canceled", err)
	}
	if got := routeOf(t, newTable(t, route.Config{Routing: failing.Routing()}), route.DeviceMessages, m); !slices.Equal(got, []string{"events"}) {
		t.Errorf("without twins got %v, want the fallback", got)
	}
}

func TestEnrich(t *testing.T) {
	twins := func(ctx context.Context, deviceID, _ string) ([]byte, error) {
		if deviceID != "thermostat1" {
			return nil, nil
		}
		return []byte(weatherTwin), nil
	}
	tb := newTable(t, route.Config{HubName: "myhub", Twins: twins, Routing: route.Routing{Enrichments: []route.Enrichment{
		{Key: "hub", Value: "$iothubname", Endpoints: []string{"events", "store"}},
		{Key: "building", Value: "$twin.tags.deploymentLocation.building", Endpoints: []string{"store"}},
		{Key: "loc", Value: "$twin.tags.deploymentLocation", Endpoints: []string{"store"}},
		{Key: "battery", Value: "$twin.properties.reported.BATTERYLEVEL", Endpoints: []string{"store"}},
		{Key: "missing", Value: "$twin.properties.desired.x", Endpoints: []string{"store"}},
		{Key: "processingPath", Value: "overwritten", Endpoints: []string{"store"}},
		{Key: "static", Value: "v1", Endpoints: []string{"store"}},
	}}})
	m := messageM()
	out, err := tb.Enrich(context.Background(), "store", m)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"hub": "myhub", "building": "43", "loc": `{"building":"43","floor":"1"}`, "battery": "55",
		"missing": "$twin.properties.desired.x", "processingPath": "overwritten", "static": "v1",
	} {
		if got, _ := out.Properties.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if v, _ := m.Properties.Get("processingPath"); v != "hot" || len(m.Properties) != len(messageM().Properties) {
		t.Error("Enrich modified its input")
	}
	if out, _ := tb.Enrich(context.Background(), "other", m); out != m {
		t.Error("Enrich copied a message for an endpoint without enrichments")
	}
	stranger := messageM()
	stranger.System.ConnectionDeviceID = "other"
	out, _ = tb.Enrich(context.Background(), "store", stranger)
	if got, _ := out.Properties.Get("building"); got != "$twin.tags.deploymentLocation.building" {
		t.Errorf("no twin: building = %q, want the literal path", got)
	}
	dt := messageM()
	dt.System.MessageSource = hubkit.SourceDigitalTwinEvent
	if out, _ := tb.Enrich(context.Background(), "store", dt); out != dt {
		t.Error("digital twin change event enriched")
	}
	big := messageM()
	big.Body = make([]byte, hubkit.MaxD2CSize-big.Size()+len(big.Body)-3)
	if big.Size() > hubkit.MaxD2CSize {
		t.Fatal("test message too big already")
	}
	if _, err := tb.Enrich(context.Background(), "store", big); !errors.Is(err, hubkit.ErrMessageTooLarge) {
		t.Errorf("oversized enrichment: err = %v, want ErrMessageTooLarge", err)
	}
	if _, err := tb.Enrich(context.Background(), "store", nil); !errors.Is(err, hubkit.ErrArgumentInvalid) {
		t.Errorf("Enrich(nil): err = %v, want ErrArgumentInvalid", err)
	}
	if _, err := tb.Enrich(context.Background(), "other", big); err != nil {
		t.Errorf("no enrichment, same message: %v", err)
	}
}

// TestEnrichEmptyHubName checks what Config.HubName documents for its
// zero value: $iothubname stamps an empty property.
func TestEnrichEmptyHubName(t *testing.T) {
	tb := newTable(t, route.Config{Routing: route.Routing{Enrichments: []route.Enrichment{
		{Key: "hub", Value: "$iothubname", Endpoints: []string{"store"}},
	}}})
	out, err := tb.Enrich(context.Background(), "store", messageM())
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := out.Properties.Lookup("hub"); !ok || p.Value != "" || p.Null {
		t.Errorf("hub = %+v, %v; want an empty, non-null property", p, ok)
	}
}

func TestDryRun(t *testing.T) {
	provider := func(context.Context, string, string) ([]byte, error) {
		t.Error("DryRun fetched a twin from the provider")
		return nil, nil
	}
	tb := newTable(t, route.Config{Twins: provider, Routing: route.Routing{Routes: []route.Route{
		{Name: "hot", Source: route.DeviceMessages, Condition: "processingPath = 'hot'", Endpoint: "a"},
		{Name: "nope", Source: route.DeviceMessages, Condition: "missing = 'x'", Endpoint: "b"},
		{Name: "twin", Source: route.DeviceMessages, Condition: "$twin.tags.deploymentLocation.floor = '1'", Endpoint: "a"},
	}}})
	results, eps := tb.DryRun(route.DeviceMessages, messageM(), []byte(weatherTwin))
	want := []route.RouteResult{{"hot", "a", route.True}, {"nope", "b", route.UndefinedTruth}, {"twin", "a", route.True}}
	if !slices.Equal(results, want) || !slices.Equal(eps, []string{"a"}) {
		t.Errorf("DryRun = %v, %v; want %v, [a]", results, eps, want)
	}
	cold := messageM()
	cold.Properties.Set("processingPath", "cold")
	results, eps = tb.DryRun(route.DeviceMessages, cold, nil)
	want = []route.RouteResult{{"hot", "a", route.False}, {"nope", "b", route.UndefinedTruth}, {"twin", "a", route.UndefinedTruth}, {"$fallback", "events", route.True}}
	if !slices.Equal(results, want) || !slices.Equal(eps, []string{"events"}) {
		t.Errorf("DryRun = %v, %v; want %v, [events]", results, eps, want)
	}
}

func TestRouterFunc(t *testing.T) {
	var r route.Router = route.RouterFunc(func(ctx context.Context, src route.Source, m *hubkit.Message) ([]string, error) {
		return []string{string(src) + ":" + m.System.ConnectionDeviceID}, nil
	})
	if got := routeOf(t, r, route.DeviceMessages, messageM()); !slices.Equal(got, []string{"DeviceMessages:thermostat1"}) {
		t.Errorf("got %v", got)
	}
}

// recorder is a slog.Handler keeping the messages it gets.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func TestEvaluationLogsThrottled(t *testing.T) {
	rec := &recorder{}
	tb := newTable(t, route.Config{Logger: slog.New(rec), Routing: route.Routing{Routes: []route.Route{
		{Name: "undef", Source: route.DeviceMessages, Condition: "missing = 'x'", Endpoint: "a"},
		{Name: "body", Source: route.DeviceMessages, Condition: "$body.x = 1", Endpoint: "b"},
	}}})
	m := messageM()
	m.System.ContentType = "text/plain"
	for range 3 {
		routeOf(t, tb, route.DeviceMessages, m)
	}
	var undefined, bodyErrs int
	for _, msg := range rec.msgs {
		undefined += strings.Count(msg, "UndefinedRouteEvaluation")
		bodyErrs += strings.Count(msg, "RouteEvaluationError")
	}
	if undefined != 1 || bodyErrs != 1 {
		t.Errorf("logged %d UndefinedRouteEvaluation and %d RouteEvaluationError in 3 messages, want 1 each: %q", undefined, bodyErrs, rec.msgs)
	}

	rec = &recorder{}
	twinOnly := newTable(t, route.Config{Logger: slog.New(rec), Routing: route.Routing{Routes: []route.Route{
		{Name: "twin", Source: route.DeviceMessages, Condition: "is_defined($twin.tags.x) OR true", Endpoint: "a"},
	}}})
	routeOf(t, twinOnly, route.DeviceMessages, m)
	if len(rec.msgs) != 0 {
		t.Errorf("a $twin condition on a plain-text message logged %q", rec.msgs)
	}
}
