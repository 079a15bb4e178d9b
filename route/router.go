package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubkit/hubkit"
	"github.com/hubkit/hubkit/internal/throttle"
)

// A Source is what a route listens to: device telemetry or one kind of
// event the hub raises.
type Source string

// The routing sources of IoT Hub.
const (
	DeviceMessages              Source = "DeviceMessages"
	TwinChangeEvents            Source = "TwinChangeEvents"
	DeviceLifecycleEvents       Source = "DeviceLifecycleEvents"
	DeviceConnectionStateEvents Source = "DeviceConnectionStateEvents"
	DeviceJobLifecycleEvents    Source = "DeviceJobLifecycleEvents"
	DigitalTwinChangeEvents     Source = "DigitalTwinChangeEvents"
)

var sources = [...]Source{DeviceMessages, TwinChangeEvents, DeviceLifecycleEvents,
	DeviceConnectionStateEvents, DeviceJobLifecycleEvents, DigitalTwinChangeEvents}

const (
	// BuiltinEndpoint is the name routes use for the built-in events endpoint.
	BuiltinEndpoint = "events"
	// FallbackName is the name of the fallback route in errors and dry runs.
	FallbackName = "$fallback"
)

// ErrInvalidRoutingCondition is wrapped by the error of every route whose
// condition does not compile (IoT Hub's 400104).
var ErrInvalidRoutingCondition = &hubkit.Error{Code: 400104, Name: "InvalidRoutingCondition"}

// A Router decides which endpoints get a message. The hub calls Route once
// per message, before storing it, from the ingesting goroutine; many calls
// run at once, so implementations must be safe for concurrent use.
//
// Route returns the names of the endpoints that get m, each once, in no
// particular order; none means the message is dropped. source says what
// kind of message m is. Route must not modify or keep m; the caller owns
// the returned slice. It may block only as long as ctx allows (for
// example to fetch a device twin) and returns an error only when it
// cannot decide, such as when ctx ends.
type Router interface {
	Route(ctx context.Context, source Source, m *hubkit.Message) ([]string, error)
}

// RouterFunc adapts a function to a Router.
type RouterFunc func(ctx context.Context, source Source, m *hubkit.Message) ([]string, error)

// Route calls f.
func (f RouterFunc) Route(ctx context.Context, source Source, m *hubkit.Message) ([]string, error) {
	return f(ctx, source, m)
}

// An Enricher adds an endpoint's message enrichments. A Router may also be
// an Enricher; the hub checks with a type assertion and then calls Enrich
// for each endpoint a message goes to, just before that endpoint gets it.
// Enrich never modifies m: it returns m itself when there is nothing to
// add, and otherwise a copy. It returns an error wrapping
// hubkit.ErrMessageTooLarge when the enriched copy exceeds
// hubkit.MaxD2CSize; the hub then drops the message for that endpoint
// only. Safe for concurrent use.
type Enricher interface {
	Enrich(ctx context.Context, endpoint string, m *hubkit.Message) (*hubkit.Message, error)
}

// A TwinFunc returns the twin of a device (moduleID empty) or module as
// JSON, e.g. {"tags":{...},"properties":{"desired":{...},"reported":{...}}},
// or nil when it has none. A [Table] calls it at most once per message,
// only when a condition or enrichment reads $twin, from the goroutine
// calling Route or Enrich; it must honour ctx and be safe for concurrent
// use. The Table does not keep the returned slice.
type TwinFunc func(ctx context.Context, deviceID, moduleID string) ([]byte, error)

// A Route sends the messages of one source that match its condition to
// one endpoint.
type Route struct {
	// Name identifies the route: 1 to 64 ASCII letters, digits, '.', '_'
	// or '-', unique (case-insensitively) in a table.
	Name string
	// Source is the kind of message the route applies to. Required.
	Source Source
	// Condition is a routing query. Empty means true: every message.
	Condition string
	// Endpoint names the endpoint that gets matching messages
	// (BuiltinEndpoint for the built-in one); same character rules as Name.
	Endpoint string
	// Disabled routes are kept but ignored.
	Disabled bool
}

// Fallback is the fallback route: it sends device messages that matched
// no route to its endpoint. Its zero value is IoT Hub's default: enabled,
// to the built-in endpoint, for every such message.
type Fallback struct {
	// Condition is a routing query. Empty means true.
	Condition string
	// Endpoint gets the messages. Empty means BuiltinEndpoint.
	Endpoint string
	// Disabled turns the fallback off: unmatched messages are dropped.
	Disabled bool
}

// An Enrichment stamps an application property on the messages sent to
// some endpoints.
type Enrichment struct {
	// Key is the property name: 1 to 64 ASCII letters, digits, '-', '_' or
	// '.'. It replaces a property of the same name.
	Key string
	// Value is the property value: a fixed string, "$iothubname" for the
	// hub's name, or a twin path starting "$twin.tags.",
	// "$twin.properties.desired." or "$twin.properties.reported.". When the
	// sender has no twin or the path is missing, Value itself is stamped.
	// Objects and arrays are stamped as JSON text.
	Value string
	// Endpoints are the endpoints whose messages get the property. At
	// least one.
	Endpoints []string
}

// Routing is a complete routing configuration.
type Routing struct {
	Routes      []Route
	Fallback    Fallback
	Enrichments []Enrichment
}

// Config configures a [Table].
type Config struct {
	// Routing is the initial configuration. The zero value has no routes
	// and the default fallback: all telemetry goes to the built-in endpoint.
	Routing Routing
	// HubName is the value of the $iothubname enrichment: the hub's name,
	// the first label of its host name (hub.New passes "myhub" for
	// myhub.azure-devices.net). Empty means such enrichments stamp their
	// property with an empty value; nothing else reads HubName.
	HubName string
	// Twins supplies device twins for $twin conditions and enrichments.
	// Nil means no device has a twin: $twin reads as undefined.
	Twins TwinFunc
	// Logger receives the throttled UndefinedRouteEvaluation and
	// RouteEvaluationError reports. Nil means slog.Default().
	Logger *slog.Logger
	// Endpoints are the names of the endpoints that exist, matched
	// exactly; BuiltinEndpoint always exists. When non-nil, New and
	// Replace reject a route, fallback route or enrichment naming any
	// other endpoint, so that a typo fails at configuration time instead
	// of dropping messages. Nil means any valid name is accepted.
	Endpoints []string
}

// A Table is the default [Router] and [Enricher]: IoT Hub's routes,
// fallback route and enrichments. Its configuration can be replaced while
// messages flow: each call works on the immutable compiled configuration
// current when it started, and takes no lock. A Table is safe for
// concurrent use and owns no goroutines, so it needs no Close. Create
// Tables with [New]; the zero Table is not usable.
type Table struct {
	hubName string
	twins   TwinFunc
	known   map[string]bool // nil: every endpoint name is accepted
	log     *slog.Logger
	now     func() time.Time // tests may set it

	cur  atomic.Pointer[compiled]
	envs sync.Pool // of *env

	undefinedLog throttle.Gate // reports of routes whose query read undefined
	errorLog     throttle.Gate // reports of $body or $twin read errors
}

var (
	_ Router   = (*Table)(nil)
	_ Enricher = (*Table)(nil)
)

// compiled is an immutable, checked routing configuration.
type compiled struct {
	cfg      Routing
	bySource map[Source][]compiledRoute // enabled routes only
	fallback *compiledRoute             // nil when disabled
	enrich   map[string][]compiledEnrichment
}

type compiledRoute struct {
	name, endpoint string
	cond           *Condition // nil means true
}

func (r *compiledRoute) eval(e *env) Truth {
	if r.cond == nil {
		return True
	}
	return r.cond.fn(e).Truth()
}

type compiledEnrichment struct {
	key, value string
	hubName    bool
	twinPath   []seg // nil for a fixed value
}

// New checks and compiles cfg.Routing and returns a Table routing by it.
// It reports every problem of the configuration at once; see [Table.Replace].
func New(cfg Config) (*Table, error) {
	t := &Table{hubName: cfg.HubName, twins: cfg.Twins, log: cfg.Logger, now: time.Now}
	if cfg.Endpoints != nil {
		t.known = map[string]bool{BuiltinEndpoint: true}
		for _, name := range cfg.Endpoints {
			t.known[name] = true
		}
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.log = t.log.With("component", "route")
	if err := t.Replace(cfg.Routing); err != nil {
		return nil, err
	}
	return t, nil
}

// Replace checks and compiles r and, if it is valid, makes it the
// configuration for every Route and Enrich call that starts afterwards;
// calls already running finish with the old one. When r is invalid the
// table keeps its configuration and Replace returns an error joining every
// problem: for each condition that does not compile, a *RouteError
// wrapping ErrInvalidRoutingCondition and the *CompileError; for other
// problems, errors wrapping hubkit.ErrArgumentInvalid, among them one
// for each endpoint name that [Config.Endpoints] does not list.
func (t *Table) Replace(r Routing) error {
	c, err := compile(r, t.known)
	if err != nil {
		return err
	}
	t.cur.Store(c)
	return nil
}

// Routing returns a copy of the current configuration.
func (t *Table) Routing() Routing { return cloneRouting(t.cur.Load().cfg) }

func cloneRouting(r Routing) Routing {
	r.Routes = append([]Route(nil), r.Routes...)
	r.Enrichments = append([]Enrichment(nil), r.Enrichments...)
	for i := range r.Enrichments {
		r.Enrichments[i].Endpoints = append([]string(nil), r.Enrichments[i].Endpoints...)
	}
	return r
}

// A RouteError reports a route whose condition does not compile, in IoT
// Hub's words.
type RouteError struct {
	Route string
	Err   *CompileError
}

// Error returns IoT Hub's text, e.g. "Invalid Routing Condition,
// RouteName:hot, ErrorMessage:Message:Syntax error., Location
// <start>:1:5, <end>:1:6, Severity:Error".
func (e *RouteError) Error() string {
	return fmt.Sprintf("Invalid Routing Condition, RouteName:%s, ErrorMessage:Message:%s, Severity:Error", e.Route, e.Err)
}

// Unwrap returns ErrInvalidRoutingCondition and the compile error.
func (e *RouteError) Unwrap() []error { return []error{ErrInvalidRoutingCondition, e.Err} }

// validName reports the name rules of routes and endpoints.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func compileCondition(name, cond string) (*Condition, error) {
	if strings.TrimSpace(cond) == "" {
		return nil, nil
	}
	c, err := Compile(cond)
	if err != nil {
		return nil, &RouteError{Route: name, Err: err.(*CompileError)}
	}
	return c, nil
}

// compile checks and compiles r; known, when non-nil, holds the endpoint
// names r may use.
func compile(r Routing, known map[string]bool) (*compiled, error) {
	c := &compiled{cfg: cloneRouting(r), bySource: map[Source][]compiledRoute{}, enrich: map[string][]compiledEnrichment{}}
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("%w: "+format, append([]any{hubkit.ErrArgumentInvalid}, args...)...))
	}
	// checkEndpoint reports a bad or unknown endpoint name of what.
	checkEndpoint := func(what, name string) {
		switch {
		case !validName(name):
			bad("%s: endpoint name %q: use 1 to 64 ASCII letters, digits, '.', '_' or '-'", what, name)
		case known != nil && !known[name]:
			bad("%s: unknown endpoint %q", what, name)
		}
	}
	seen := map[string]bool{}
	for _, rt := range r.Routes {
		switch {
		case !validName(rt.Name):
			bad("route name %q: use 1 to 64 ASCII letters, digits, '.', '_' or '-'", rt.Name)
		case seen[strings.ToLower(rt.Name)]:
			bad("route name %q is used twice", rt.Name)
		}
		seen[strings.ToLower(rt.Name)] = true
		if !contains(sources[:], rt.Source) {
			bad("route %q: unknown source %q", rt.Name, rt.Source)
		}
		checkEndpoint(fmt.Sprintf("route %q", rt.Name), rt.Endpoint)
		cond, err := compileCondition(rt.Name, rt.Condition)
		if err != nil {
			problems = append(problems, err)
		}
		if !rt.Disabled {
			c.bySource[rt.Source] = append(c.bySource[rt.Source], compiledRoute{rt.Name, rt.Endpoint, cond})
		}
	}
	fb := r.Fallback
	if fb.Endpoint == "" {
		fb.Endpoint = BuiltinEndpoint
	}
	checkEndpoint("fallback route", fb.Endpoint)
	cond, err := compileCondition(FallbackName, fb.Condition)
	if err != nil {
		problems = append(problems, err)
	}
	if !fb.Disabled {
		c.fallback = &compiledRoute{FallbackName, fb.Endpoint, cond}
	}
	for _, en := range r.Enrichments {
		ce := compiledEnrichment{key: en.Key, value: en.Value, hubName: strings.EqualFold(en.Value, "$iothubname")}
		if !validName(en.Key) {
			bad("enrichment key %q: use 1 to 64 ASCII letters, digits, '-', '_' or '.'", en.Key)
		}
		if en.Value == "" {
			bad("enrichment %q: empty value", en.Key)
		}
		if lv := strings.ToLower(en.Value); strings.HasPrefix(lv, "$twin") {
			path, msg := parsePath(en.Value[len("$twin"):])
			ok := false
			for _, pre := range [...]string{"$twin.tags.", "$twin.properties.desired.", "$twin.properties.reported."} {
				ok = ok || strings.HasPrefix(lv, pre)
			}
			if msg != "" || !ok {
				bad("enrichment %q: twin path %q: use $twin.tags., $twin.properties.desired. or $twin.properties.reported. and a path", en.Key, en.Value)
			}
			ce.twinPath = path
		}
		if len(en.Endpoints) == 0 {
			bad("enrichment %q: no endpoint", en.Key)
		}
		for _, ep := range en.Endpoints {
			checkEndpoint(fmt.Sprintf("enrichment %q", en.Key), ep)
			c.enrich[ep] = append(c.enrich[ep], ce)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("route: invalid routing configuration: %w", errors.Join(problems...))
	}
	return c, nil
}

// env returns a pooled env for m that fetches the twin through t.twins.
func (t *Table) env(ctx context.Context, m *hubkit.Message) *env {
	e, _ := t.envs.Get().(*env)
	if e == nil {
		e = new(env)
	}
	e.reset(m, nil)
	e.twinFn, e.ctx = t.twins, ctx
	return e
}

func (t *Table) release(e *env) {
	*e = env{}
	t.envs.Put(e)
}

// Route returns the endpoints of the enabled routes for source whose
// condition is true for m, each once; for device messages that matched
// none, the fallback's endpoint when it is enabled and its condition is
// true. It fails only when fetching the twin fails because ctx ended.
func (t *Table) Route(ctx context.Context, source Source, m *hubkit.Message) ([]string, error) {
	c := t.cur.Load()
	e := t.env(ctx, m)
	defer t.release(e)
	var out []string
	undefined := ""
	routes := c.bySource[source]
	for i := range routes {
		r := &routes[i]
		if contains(out, r.endpoint) {
			continue // one delivery per endpoint: no need to evaluate
		}
		switch r.eval(e) {
		case True:
			out = append(out, r.endpoint)
		case UndefinedTruth:
			undefined = r.name
		}
	}
	if source == DeviceMessages && len(out) == 0 && c.fallback != nil && c.fallback.eval(e) == True {
		out = append(out, c.fallback.endpoint)
	}
	if e.twinErr != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("route: fetch twin of %q: %w", e.m.System.ConnectionDeviceID, e.twinErr)
	}
	t.report(ctx, e, undefined)
	return out, nil
}

// report logs, at most once a minute each, a condition that evaluated to
// undefined and a body or twin that could not be read, as IoT Hub's
// UndefinedRouteEvaluation and RouteEvaluationError.
func (t *Table) report(ctx context.Context, e *env, undefinedRoute string) {
	if undefinedRoute != "" && t.undefinedLog.Allow(t.now(), time.Minute) {
		t.log.LogAttrs(ctx, slog.LevelInfo, "UndefinedRouteEvaluation: condition is undefined, message not routed by it",
			slog.String("route", undefinedRoute), slog.String("device_id", e.m.System.ConnectionDeviceID))
	}
	if (e.bodyErr || e.twinErr != nil) && t.errorLog.Allow(t.now(), time.Minute) {
		attrs := []slog.Attr{slog.String("device_id", e.m.System.ConnectionDeviceID)}
		if e.twinErr != nil {
			attrs = append(attrs, slog.Any("err", e.twinErr))
		} else {
			attrs = append(attrs, slog.String("err", "body is not JSON with content type application/json and encoding utf-8, utf-16 or utf-32"))
		}
		t.log.LogAttrs(ctx, slog.LevelWarn, "RouteEvaluationError: $body or $twin read as undefined", attrs...)
	}
}

// Enrich returns m with the enrichments of endpoint applied, as a copy
// (m itself when endpoint has none, and for digital twin change events,
// which IoT Hub never enriches). It fails with an error wrapping
// hubkit.ErrMessageTooLarge when the result exceeds hubkit.MaxD2CSize,
// and when fetching the twin fails because ctx ended.
func (t *Table) Enrich(ctx context.Context, endpoint string, m *hubkit.Message) (*hubkit.Message, error) {
	if m == nil {
		return nil, fmt.Errorf("route: enrich for endpoint %q: %w: nil message", endpoint, hubkit.ErrArgumentInvalid)
	}
	list := t.cur.Load().enrich[endpoint]
	if len(list) == 0 || m.System.MessageSource == hubkit.SourceDigitalTwinEvent {
		return m, nil
	}
	e := t.env(ctx, m)
	defer t.release(e)
	out := m.Clone()
	for _, en := range list {
		v := en.value
		switch {
		case en.hubName:
			v = t.hubName
		case en.twinPath != nil:
			if b := e.twinJSON(); b != nil {
				if i := e.twinMemo.find(b, en.twinPath, true); i >= 0 {
					v = rawText(b, i)
				}
			}
		}
		out.Properties.Set(en.key, v)
	}
	if e.twinErr != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("route: fetch twin of %q: %w", m.System.ConnectionDeviceID, e.twinErr)
	}
	if n := out.Size(); n > hubkit.MaxD2CSize {
		return nil, fmt.Errorf("route: enriched message for endpoint %q is %d bytes, the limit is %d: %w", endpoint, n, hubkit.MaxD2CSize, hubkit.ErrMessageTooLarge)
	}
	return out, nil
}

// A RouteResult is the outcome of one route in a dry run.
type RouteResult struct {
	Route    string
	Endpoint string
	Result   Truth
}

// DryRun evaluates the current routes for source against a sample message
// and twin (nil for none) without delivering anything. It returns the
// result of each enabled route of that source in configuration order,
// then the fallback's when the fallback would be consulted, and the
// endpoints Route would return.
func (t *Table) DryRun(source Source, m *hubkit.Message, twin []byte) (results []RouteResult, endpoints []string) {
	c := t.cur.Load()
	e := t.env(context.Background(), m)
	defer t.release(e)
	e.twin, e.twinFn = twin, nil // the sample twin, never the provider's
	routes := c.bySource[source]
	for i := range routes {
		r := &routes[i]
		res := r.eval(e)
		results = append(results, RouteResult{r.name, r.endpoint, res})
		if res == True && !contains(endpoints, r.endpoint) {
			endpoints = append(endpoints, r.endpoint)
		}
	}
	if source == DeviceMessages && len(endpoints) == 0 && c.fallback != nil {
		res := c.fallback.eval(e)
		results = append(results, RouteResult{FallbackName, c.fallback.endpoint, res})
		if res == True {
			endpoints = append(endpoints, c.fallback.endpoint)
		}
	}
	return results, endpoints
}

// DryRun compiles condition and evaluates it against a sample message and
// twin (nil for none), as a route would: an empty condition is true. The
// error is a *CompileError when the condition does not compile.
func DryRun(condition string, m *hubkit.Message, twin []byte) (Truth, error) {
	if strings.TrimSpace(condition) == "" {
		return True, nil
	}
	c, err := Compile(condition)
	if err != nil {
		return UndefinedTruth, err
	}
	return c.Eval(m, twin).Truth(), nil
}
