package route

import (
	"context"
	"strings"

	"github.com/hubkit/hubkit"
)

// An env is what one evaluation sees: the message, and the body and twin
// decoded at most once however many routes look at them. envs are pooled
// so that evaluation does not allocate.
type env struct {
	m *hubkit.Message

	body      []byte // UTF-8 JSON, valid once bodyState is ready
	bodyState uint8
	bodyErr   bool // a $body reference found the body unusable
	bodyMemo  memo

	twin      []byte
	twinState uint8
	twinFn    TwinFunc        // loads the twin on first use when set
	ctx       context.Context // for twinFn, only during one Route call
	twinErr   error
	twinMemo  memo

	enqueued string // $enqueuedTime, rendered on first use
}

const (
	unread uint8 = iota
	ready
	unusable
)

// reset prepares e for evaluating m; twin is the twin document, or nil.
func (e *env) reset(m *hubkit.Message, twin []byte) {
	if m == nil {
		m = new(hubkit.Message)
	}
	*e = env{m: m, twin: twin}
}

// bodyJSON returns the message body as valid UTF-8 JSON, or nil when the
// content type is not application/json, the encoding is not utf-8,
// utf-16 or utf-32, or the body is not JSON.
func (e *env) bodyJSON() []byte {
	switch e.bodyState {
	case ready:
		return e.body
	case unusable:
		return nil
	}
	e.bodyState = unusable
	e.bodyErr = true
	media, params, _ := strings.Cut(e.m.System.ContentType, ";")
	if !strings.EqualFold(strings.TrimSpace(media), "application/json") {
		return nil
	}
	enc := e.m.System.ContentEncoding
	if enc == "" {
		enc = charset(params)
	}
	b, ok := decodeText(e.m.Body, strings.TrimSpace(enc))
	if !ok || !validJSON(b) {
		return nil
	}
	e.body, e.bodyState, e.bodyErr = b, ready, false
	return b
}

// charset returns the charset parameter of a media type's parameters.
func charset(params string) string {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "charset") {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// twinJSON returns the sender's twin as valid JSON, or nil when there is
// none or it is not JSON.
func (e *env) twinJSON() []byte {
	switch e.twinState {
	case ready:
		return e.twin
	case unusable:
		return nil
	}
	e.twinState = unusable
	if e.twinFn != nil {
		e.twin, e.twinErr = e.twinFn(e.ctx, e.m.System.ConnectionDeviceID, e.m.System.ConnectionModuleID)
	}
	b, ok := decodeText(e.twin, "utf-8")
	if e.twinErr != nil || !ok || len(b) == 0 || !validJSON(b) {
		return nil
	}
	e.twin, e.twinState = b, ready
	return b
}

// enqueuedTime renders the enqueued time as yyyy-MM-ddTHH:mm:ss.fffffffZ,
// so that comparing the strings compares the times.
func (e *env) enqueuedTime() (string, bool) {
	t := e.m.System.EnqueuedTime
	if t.IsZero() {
		return "", false
	}
	if e.enqueued == "" {
		e.enqueued = t.UTC().Format(enqueuedLayout)
	}
	return e.enqueued, true
}

const enqueuedLayout = "2006-01-02T15:04:05.0000000Z"

// sysProp returns the accessor of the system property a routing keyword
// names (without its '$', case-insensitive), or nil for names that are
// not system properties. An empty property reads as missing.
func sysProp(name string) func(*env) (string, bool) {
	field := func(f func(*hubkit.SystemProperties) string) func(*env) (string, bool) {
		return func(e *env) (string, bool) {
			s := f(&e.m.System)
			return s, s != ""
		}
	}
	switch strings.ToLower(name) {
	case "messageid":
		return field(func(s *hubkit.SystemProperties) string { return s.MessageID })
	case "correlationid":
		return field(func(s *hubkit.SystemProperties) string { return s.CorrelationID })
	case "userid":
		return field(func(s *hubkit.SystemProperties) string { return s.UserID })
	case "to":
		return field(func(s *hubkit.SystemProperties) string { return s.To })
	case "contenttype":
		return field(func(s *hubkit.SystemProperties) string { return s.ContentType })
	case "contentencoding":
		return field(func(s *hubkit.SystemProperties) string { return s.ContentEncoding })
	case "connectiondeviceid":
		return field(func(s *hubkit.SystemProperties) string { return s.ConnectionDeviceID })
	case "connectionmoduleid":
		return field(func(s *hubkit.SystemProperties) string { return s.ConnectionModuleID })
	case "connectiondevicegenerationid":
		return field(func(s *hubkit.SystemProperties) string { return s.ConnectionAuthGenerationID })
	case "connectionauthmethod":
		return field(func(s *hubkit.SystemProperties) string { return s.ConnectionAuthMethod })
	case "dt-dataschema":
		return field(func(s *hubkit.SystemProperties) string { return s.DataSchema })
	case "dt-subject":
		return field(func(s *hubkit.SystemProperties) string { return s.Subject })
	case "iothub-creation-time-utc", "creation-time-utc":
		return field(func(s *hubkit.SystemProperties) string { return s.CreationTime })
	case "enqueuedtime", "iothub-enqueuedtime":
		return (*env).enqueuedTime
	}
	return nil
}

// prop reads an application property: missing is undefined, a property
// sent without a value is null.
func prop(e *env, name string) (Value, bool) {
	p, ok := e.m.Properties.Lookup(name)
	switch {
	case !ok:
		return undef, false
	case p.Null:
		return null, true
	}
	return str(p.Value), true
}
